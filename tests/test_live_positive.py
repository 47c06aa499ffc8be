"""The live positive's parts on the scripted strip (station.capture.livescene): the tone map
learnt from (live view, RAW) pairs, the conversion against the daemon's own preview of the
RAW, the aids (focus, picture edges, tilt).  No camera: the scene renders both images of one
moment directly (the camera path is tested in test_live_autocapture / test_live_browser)."""
from __future__ import annotations

import numpy as np
import pytest

from station.capture.live import LivePositive, ToneMap, default_table
from station.capture.liveaids import focus_score, measure, picture_edges
from station.capture.livescene import LiveScene, camera_tone


def _true_table() -> np.ndarray:
    """The emulated camera's tone curve inverted: code -> RAW linear (no flicker)."""
    x = np.linspace(0, 1.2, 20000, dtype=np.float32)[:, None] * np.ones(3, np.float32)
    y = camera_tone(x * 0.85) * 255
    return np.stack([np.interp(np.arange(256), y[:, c], x[:, c] * 0.85) for c in range(3)])


def test_tone_map_learns_the_cameras_curve_from_pairs():
    scene = LiveScene(seed=11, flicker=0.0)
    truth = _true_table()
    tm = ToneMap()
    codes = np.arange(40, 200)
    err_default = np.abs(np.log(tm.table[:, codes] / truth[:, codes])).mean()
    for k in range(3):
        t = scene.clock()
        assert tm.learn(scene.live_frame(t), scene.raw_linear(t)) > 100
        scene._moves.append((t - 10.0, k + 1))  # the next picture, already in place
    err = np.abs(np.log(tm.table[:, codes] / truth[:, codes])).mean()
    print(f"\n[tone] mean |log error| codes 40-199: default {err_default:.3f}, after 3 pairs {err:.3f}")
    assert tm.pairs == 3
    assert err < 0.05 < err_default
    assert np.all(np.diff(tm.table, axis=1) >= 0)  # monotone


def test_flat_or_tiny_pairs_change_nothing():
    tm = ToneMap()
    lv = np.full((64, 96, 3), 255, np.uint8)  # clipped: no usable block
    assert tm.learn(lv, np.ones((64, 96, 3), np.float32)) == 0
    assert tm.pairs == 0 and np.array_equal(tm.table, default_table())


@pytest.mark.parametrize("method", ["classic", None])  # None: the station's default (the shipped MLP)
def test_live_positive_converges_on_the_captured_preview(tmp_path, method):
    from station.capture.live import decode_jpeg
    from station.io.dng import mosaic, write_bayer_dng
    from station.model.metrics import ciede2000
    from station.pipeline.invert import get_inverter
    from station.pipeline.convert import ConvertOptions, convert_file
    from station.pipeline.fastdecode import area_resize

    inv = get_inverter(method)
    ticks = iter(np.arange(1000.0, 2000.0, 0.37))
    scene = LiveScene(seed=12, clock=lambda: float(next(ticks)))  # deterministic flicker
    pos = LivePositive(None, lambda: (inv, None))
    small = lambda a: area_resize(np.ascontiguousarray(a, np.float32), (96, 64))  # noqa: E731
    figures = []
    for k in range(4):
        t = scene.clock()
        lv = decode_jpeg(scene.live_jpeg(t))
        raw = scene.raw_linear(t)
        path = write_bayer_dng(tmp_path / f"{k}.dng", mosaic(np.round(raw * 65535).astype(np.uint16), "RGGB"),
                               "RGGB", black=0, white=65535)
        live = pos.convert(lv)
        out = tmp_path / f"{k}.jpg"
        convert_file(path, {"preview": out}, ConvertOptions(inverter=inv, half_size=True, preview_size=960))
        prev = decode_jpeg(out.read_bytes()).astype(np.float32) / 255
        figures.append(float(np.median(ciede2000(small(live), small(prev)))))
        from station.capture.live import _raw_linear

        pos.tone.learn(lv, _raw_linear(str(path), (lv.shape[1], lv.shape[0])))
        scene._moves.append((t - 10.0, k + 1))  # the next picture, already in place
    print(f"\n[live] {inv.name}: median dE00 live positive vs captured preview per frame: {[round(f, 2) for f in figures]}")
    assert figures[-1] < figures[0]
    assert max(figures[1:]) <= 3.0


def test_focus_score_prefers_sharp_grain():
    from scipy.ndimage import gaussian_filter

    lv = LiveScene(seed=13).live_frame()
    sharp = focus_score(lv[..., 1], (0.5, 0.5))
    soft = focus_score(gaussian_filter(lv[..., 1].astype(np.float32), 1.5), (0.5, 0.5))
    assert sharp > 2 * soft


@pytest.mark.parametrize("angle", [1.5, -1.5])
def test_picture_edges_and_tilt(angle):
    from scipy.ndimage import rotate

    scene = LiveScene(seed=14, shake=0)
    lin = scene.render(960, 640, 0.0)
    rect, tilt = picture_edges(lin)
    # the picture is 36 of 44 mm wide, 24 of 29.3 mm high, centred
    assert rect == pytest.approx((4 / 44, (29.33 - 24) / 2 / 29.33, 40 / 44, 1 - (29.33 - 24) / 2 / 29.33), abs=0.01)
    assert tilt == pytest.approx(0.0, abs=0.2)
    _, tilted = picture_edges(rotate(lin, angle, reshape=False, order=1, mode="nearest"))
    assert abs(tilted) == pytest.approx(1.5, abs=0.35)
    assert np.sign(tilted) == -np.sign(angle)  # ndimage turns counter-clockwise for a positive angle


def test_measure_keeps_the_best_focus():
    lv = LiveScene(seed=15).live_frame()
    a = measure(lv, lv.astype(np.float32) / 255)
    b = measure(np.full_like(lv, 128), np.full(lv.shape, 0.5, np.float32), prev=a)
    assert b["focus"] < a["focus"] and b["focus_best"] == a["focus_best"]


def test_live_positive_carries_the_rolls_print(tmp_path):
    """With a print (here +1 EV, warmer), the live positive matches the daemon's preview made
    with the same print, as closely as without one."""
    from station.capture.live import _raw_linear, decode_jpeg
    from station.io.dng import mosaic, write_bayer_dng
    from station.model.metrics import ciede2000
    from station.pipeline.classic import ClassicInverter
    from station.pipeline.convert import ConvertOptions, convert_file
    from station.pipeline.fastdecode import area_resize
    from station.pipeline.printing import PrintSettings

    inv, ps = ClassicInverter(), PrintSettings(exposure=1.0, temperature=5000.0)
    ticks = iter(np.arange(1000.0, 2000.0, 0.37))
    scene = LiveScene(seed=16, clock=lambda: float(next(ticks)))
    plain, printed = LivePositive(None, lambda: (inv, None)), LivePositive(None, lambda: (inv, None, ps))
    small = lambda a: area_resize(np.ascontiguousarray(a, np.float32), (96, 64))  # noqa: E731
    for k in range(3):
        t = scene.clock()
        lv = decode_jpeg(scene.live_jpeg(t))
        path = write_bayer_dng(tmp_path / f"{k}.dng", mosaic(np.round(scene.raw_linear(t) * 65535).astype(np.uint16), "RGGB"),
                               "RGGB", black=0, white=65535)
        raw = _raw_linear(str(path), (lv.shape[1], lv.shape[0]))
        plain.tone.learn(lv, raw)
        printed.tone.learn(lv, raw)
        scene._moves.append((t - 10.0, k + 1))
    out = tmp_path / "p.jpg"
    convert_file(path, {"preview": out}, ConvertOptions(inverter=inv, half_size=True, preview_size=960, print=ps))
    prev = decode_jpeg(out.read_bytes()).astype(np.float32) / 255
    live_printed, live_plain = printed.convert(lv), plain.convert(lv)
    de_printed = float(np.median(ciede2000(small(live_printed), small(prev))))
    de_plain = float(np.median(ciede2000(small(live_plain), small(prev))))
    print(f"\n[live] with the print: median dE00 {de_printed:.2f} (without it: {de_plain:.2f})")
    assert live_printed.mean() > live_plain.mean()  # +1 EV
    assert de_printed <= 3.0 < de_plain


def test_live_settings_take_the_rolls_blank_else_the_base_its_analysis_locked(tmp_path):
    """The live positive's base: the roll's calibrated blank; without one, the base the daemon's
    roll analysis locked (the median of the frames' rebates), not the live view's own estimate
    of the moment (which swings with the strip and the sprocket holes).  Its rendering: the
    locked one, else the analysis' estimate so far."""
    import json

    from station.boundary import CameraState, RollState
    from station.capture.live import _Settings

    class Cam:  # what the camera service's snapshot() is (station.boundary; a dict before, never a roll)
        def snapshot(self):
            return CameraState(state="ready", roll=RollState("r1", 3, 4))

    class App:
        cfg = {"paths": {"state": str(tmp_path)}, "inversion": {"method": "classic"}}
        prints = None

        def service(self, name):
            return Cam() if name == "camera" else None

    settings = _Settings(App())
    assert settings()[1] is None and settings()[3] is None  # nothing yet: the live view estimates its own
    (tmp_path / "renderings").mkdir()
    # before the analysis locks: its estimate so far renders the live view (the daemon's rolls.py)
    prov = {"id": "p", "base": [0.5, 0.3, 0.1], "A": [2, 2, 2], "b": [0, 0, 0], "base_source": "roll rebate",
            "frames": 2, "locked": False}
    (tmp_path / "renderings" / "r1.provisional.json").write_text(json.dumps(prov))
    assert settings()[3] is None  # from two frames: one picture's normaliser; the live view meters itself
    (tmp_path / "renderings" / "r1.provisional.json").write_text(json.dumps({**prov, "frames": 3}))
    assert settings()[3].A == (2, 2, 2) and not settings()[3].locked
    (tmp_path / "renderings" / "r1.json").write_text(json.dumps(
        {"id": "x", "base": [0.6, 0.4, 0.2], "A": [1, 1, 1], "b": [0, 0, 0], "base_source": "roll rebate",
         "frames": 3, "locked": True}))
    assert settings()[1] == [0.6, 0.4, 0.2]
    assert settings()[3].A == (1, 1, 1) and settings()[3].locked  # the locked one wins
    (tmp_path / "rolls" / "r1").mkdir(parents=True)
    (tmp_path / "rolls" / "r1" / "manifest.json").write_text(json.dumps({"base": {"rgb": [0.7, 0.45, 0.25]}}))
    assert settings()[1] == [0.7, 0.45, 0.25]  # the blank wins


def test_live_positive_uses_the_rolls_locked_rendering(tmp_path):
    """Once the roll's analysis has locked its rendering, the daemon converts every frame with its
    base and normaliser: the live positive does too (settings' 4th item: it does not meter the
    live view), and matches that preview (median ΔE00 1.38 and 1.51 here, each frame read at its
    own level; 1.9 and 3.25 before it was; metering the live view instead gave 2.2 and 2.2 on
    these similar pictures -- the rendering is for the frame of one dominant colour, which
    metering casts: docs/RIGS.md)."""
    from station.capture.live import _raw_linear, decode_jpeg
    from station.io.dng import mosaic, write_bayer_dng
    from station.model.metrics import ciede2000
    from station.pipeline.classic import ClassicInverter
    from station.pipeline.convert import ConvertOptions, convert_file
    from station.pipeline.fastdecode import area_resize
    from station.pipeline.roll import analyse, sample_file

    inv = ClassicInverter()
    ticks = iter(np.arange(1000.0, 2000.0, 0.37))
    scene = LiveScene(seed=17, clock=lambda: float(next(ticks)))
    small = lambda a: area_resize(np.ascontiguousarray(a, np.float32), (96, 64))  # noqa: E731
    shots = []
    for k in range(5):
        t = scene.clock()
        lv = decode_jpeg(scene.live_jpeg(t))
        path = write_bayer_dng(tmp_path / f"{k}.dng", mosaic(np.round(scene.raw_linear(t) * 65535).astype(np.uint16), "RGGB"),
                               "RGGB", black=0, white=65535)
        shots.append((lv, path))
        scene._moves.append((t - 10.0, k + 1))
    rendering = analyse([sample_file(p) for _, p in shots], inv)
    pos = LivePositive(None, lambda: (inv, None, None, rendering))
    for lv, path in shots[:3]:  # three pairs learnt
        pos.tone.learn(lv, _raw_linear(str(path), (lv.shape[1], lv.shape[0])))
    figures = []
    for k, (lv, path) in enumerate(shots[3:], 3):
        out = tmp_path / f"{k}.jpg"
        convert_file(path, {"preview": out}, ConvertOptions(inverter=inv, half_size=True, preview_size=960,
                                                            rendering=rendering))
        prev = small(decode_jpeg(out.read_bytes()).astype(np.float32) / 255)
        figures.append(float(np.median(ciede2000(small(pos.convert(lv)), prev))))
    print(f"\n[live] with the roll's rendering: median dE00 {[round(v, 2) for v in figures]}")
    assert pos._metered is None  # the roll's normaliser, not the live view's own metering
    assert max(figures) <= 2.5
