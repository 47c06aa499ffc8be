"""The live view's tone map (station.capture.livetone) against a camera whose live view is not at
the RAW's level: each live-view frame drawn at a known level (flicker of the light, the camera's
exposure simulation) through the emulated camera's own rendering (livescene.camera_tone), so the
truth is known: the table's shape, each pair's level, each frame's level.  No camera, no timing."""
from __future__ import annotations

import io

import numpy as np
import pytest

from station.capture.livescene import LiveScene, camera_tone
from station.capture.livetone import ToneMap, decode_jpeg, frame_level



def _true_table(tone=camera_tone) -> np.ndarray:
    """The camera's rendering inverted: code -> RAW linear (at level 1)."""
    x = np.linspace(0, 1.2, 20000, dtype=np.float32)[:, None] * np.ones(3, np.float32)
    y = tone(x) * 255
    return np.stack([np.interp(np.arange(256), y[:, c], x[:, c]) for c in range(3)]).astype(np.float32)


def _shot(scene: LiveScene, k: int, level: float, tone=camera_tone, seed: int = 0, pos: float | None = None):
    """Picture k in place: (live-view frame at `level` x the RAW's exposure, JPEG q80; the RAW's linear RGB)."""
    w, h = scene.lv_size
    view = scene.render(w, h, float(k) if pos is None else pos) * np.float32(0.85)
    noise = np.random.default_rng(seed).normal(0, 2.0, view.shape)
    lv = np.clip(np.round(tone(view * level) * 255 + noise), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    from PIL import Image

    Image.fromarray(lv).save(buf, "JPEG", quality=80)
    return decode_jpeg(buf.getvalue()), scene.render(w, h, float(k)) * np.float32(0.85)


def _shape_error(table: np.ndarray, truth: np.ndarray, tm: ToneMap) -> float:
    """How far the table's shape is from the truth, whatever its scale: the spread (std) of
    ln(table / truth) over the codes of the pairs' samples (below 232: above, the blue channel's
    codes are the sprocket holes' clipped light, which JPEG pulled below 255), worst channel."""
    grid = np.arange(256)
    err = []
    for c in range(3):
        codes = np.concatenate([s[c][0] for s in tm._samples])
        codes = codes[codes < 232]
        err.append(np.std(np.log(np.interp(codes, grid, table[c]) / np.interp(codes, grid, truth[c]))))
    return float(max(err))


def test_the_table_and_each_pairs_level_are_learnt_together():
    """Four pairs whose live views ran 10 % over, 10 % under, 6 % over, 6 % under the RAW's
    exposure: the table keeps the camera's curve (the levels are not baked into it) and each
    pair's level is found (the table's scale is their geometric middle).  (Learnt without the
    levels, the table takes them in: shape error 0.075.)"""
    scene = LiveScene(seed=21, shake=0)
    truth = _true_table()
    levels = np.array([1.10, 0.90, 1.06, 0.94])
    tm = ToneMap()
    for k, g in enumerate(levels):
        assert tm.learn(*_shot(scene, k, g, seed=k)) > 100
    err = _shape_error(tm.table, truth, tm)
    print(f"\n[tone] shape error {err:.4f}; levels learnt {np.round(tm.levels, 4)} (true {levels})")
    assert err < 0.012
    # within 2 %: where a pair's codes are its own (no other pair's picture used them) the table
    # can take up a little of its level, the rest of the pairs cannot tell
    assert tm.levels / tm.levels[0] == pytest.approx(levels / levels[0], abs=0.02)
    assert np.all(np.diff(tm.table, axis=1) >= 0)  # monotone


@pytest.mark.parametrize("level", [0.88, 1.0, 1.12])
def test_frame_level_reads_the_film_base(level):
    """A frame's level against the roll's base, read on the rebate and the gaps between pictures."""
    scene = LiveScene(seed=22, shake=0)
    lv, _ = _shot(scene, 3, level)
    base = np.asarray([0.80, 0.48, 0.28], np.float32) * 0.85  # the strip's film base, as the RAW sees it
    got = frame_level(lv, _true_table(), base)
    assert got == pytest.approx(np.log10(level), abs=0.006)


def test_frame_level_is_none_without_a_rebate_in_view():
    scene = LiveScene(seed=22, shake=0)
    lv, _ = _shot(scene, 3, 1.0)
    crop = np.ascontiguousarray(lv[200:440, 300:660])  # inside the picture
    assert frame_level(crop, _true_table(), np.asarray([0.68, 0.408, 0.238], np.float32)) is None


def test_a_pair_of_another_moment_is_left_out_and_a_changed_camera_is_followed():
    """A live-view frame of the strip mid-slide paired with the RAW of the settled picture departs
    from the table learnt so far: left out, the table untouched.  Three pairs in a row from a
    camera whose rendering changed (another picture style) agree with each other: learnt again."""
    scene = LiveScene(seed=23, shake=0)
    tm = ToneMap()
    for k in range(3):
        tm.learn(*_shot(scene, k, 1.0, seed=k))
    before = tm.table.copy()
    lv, _ = _shot(scene, 3, 1.0, pos=3.35)  # the live view a third of a pitch along
    _, raw = _shot(scene, 3, 1.0)
    assert tm.learn(lv, raw) == 0
    assert tm.rejected == 1 and tm.pairs == 3 and not tm.last["accepted"]
    assert np.array_equal(tm.table, before)

    def flatter(x):  # another picture style: a gentler curve
        return np.clip(camera_tone(x), 0, 1) ** 1.3

    for k in range(4, 7):
        tm.learn(*_shot(scene, k, 1.0, tone=flatter, seed=k))
    assert tm.rejected == 3  # the first two of them, then the third restarts the table
    assert _shape_error(tm.table, _true_table(flatter), tm) < 0.015 < 0.05 < _shape_error(before, _true_table(flatter), tm)


def test_live_positive_reads_each_frame_at_its_own_level(tmp_path):
    """With the roll's rendering, a live-view frame running 10 % over or under the RAW's exposure
    gives the same positive as one at the RAW's (the frame's film base tells its level): each
    within median ΔE00 2 of the captured preview."""
    from station.capture.live import LivePositive, _raw_linear
    from station.io.dng import mosaic, write_bayer_dng
    from station.model.metrics import ciede2000
    from station.pipeline.classic import ClassicInverter
    from station.pipeline.convert import ConvertOptions, convert_file
    from station.pipeline.fastdecode import area_resize
    from station.pipeline.roll import analyse, sample_file

    inv = ClassicInverter()
    scene = LiveScene(seed=24, shake=0)
    small = lambda a: area_resize(np.ascontiguousarray(a, np.float32), (96, 64))  # noqa: E731
    paths = []
    for k in range(5):
        _, raw = _shot(scene, k, 1.0)
        paths.append(write_bayer_dng(tmp_path / f"{k}.dng", mosaic(np.round(raw * 65535).astype(np.uint16), "RGGB"),
                                     "RGGB", black=0, white=65535))
    rendering = analyse([sample_file(p) for p in paths], inv)
    pos = LivePositive(None, lambda: (inv, None, None, rendering))
    for k, g in zip(range(3), (1.08, 0.93, 1.0)):
        lv, _ = _shot(scene, k, g, seed=k)
        pos.tone.learn(lv, _raw_linear(str(paths[k]), (lv.shape[1], lv.shape[0])))
    out = tmp_path / "4.jpg"
    convert_file(paths[4], {"preview": out}, ConvertOptions(inverter=inv, half_size=True, preview_size=960,
                                                            rendering=rendering))
    prev = small(decode_jpeg(out.read_bytes()).astype(np.float32) / 255)
    figures = {}
    for g in (0.9, 1.0, 1.1):
        lv, _ = _shot(scene, 4, g, seed=40)
        figures[g] = float(np.median(ciede2000(small(pos.convert(lv)), prev)))
    print(f"\n[live] median dE00 against the preview, by the live view's level: {figures}")
    assert max(figures.values()) <= 2.0


def test_a_camera_that_mixes_its_channels_is_still_learnt_from():
    """A live view through a colour matrix departs from any per-channel table a little on every
    pair (here 0.03-0.07): those pairs are learnt from (the limit follows what the accepted pairs
    departed), while a live frame of the strip mid-slide (0.15) is still left out."""
    mix = np.array([[1.25, -0.2, -0.05], [-0.15, 1.3, -0.15], [-0.05, -0.3, 1.35]], np.float32)

    def tone(x):
        return camera_tone(np.clip(x @ mix.T, 0, None))

    scene = LiveScene(seed=31, shake=0)
    tm = ToneMap()
    for k in range(8):
        assert tm.learn(*_shot(scene, k, 1 + 0.05 * np.sin(k), tone=tone, seed=k)) > 0, tm.last
    assert tm.rejected == 0 and tm.pairs == 8
    lv, _ = _shot(scene, 8, 1.0, tone=tone, pos=8.35)
    _, raw = _shot(scene, 8, 1.0, tone=tone)
    assert tm.learn(lv, raw) == 0 and tm.rejected == 1
