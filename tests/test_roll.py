"""One rendering per roll (issue 13, item 2): analysis, `station invert --roll`, preview = master."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import roll_chart  # noqa: E402

from station.model.film import ScanParams, add_rebate, procedural_scene, simulate, srgb_decode, srgb_encode  # noqa: E402
from station.pipeline.classic import ClassicInverter  # noqa: E402
from station.pipeline.roll import (RollAccumulator, Rendering, analyse, frame_sample, movement,  # noqa: E402
                                   shared_base)


def _frame(kind: str = "mid", seed: int = 0, scan_ev: float = 0.0, size: int = 160):
    """A generated negative with rebate, sprocket holes and holder (linear camera RGB)."""
    lin = srgb_decode(procedural_scene(size, seed=seed))
    if kind == "night":
        lin = lin * 2.0 ** -4
    elif kind == "snow":
        lin = 0.55 + 0.4 * lin
    neg = simulate(srgb_encode(np.clip(lin, 0, 1)), ScanParams(seed=seed, scan_ev=scan_ev))
    return add_rebate(neg, seed=seed), neg.base_rgb


@pytest.fixture(scope="module")
def ordinary():
    return [frame_sample(_frame("mid", s)[0]) for s in range(5)]


def test_shared_base_is_the_rolls_rebate(ordinary):
    _, true_base = _frame("mid", 0)
    base = shared_base(ordinary)
    assert "rebate" in base.source
    np.testing.assert_allclose(base.rgb, true_base, rtol=0.03)


@pytest.mark.parametrize("method", ["classic", "mlp"])
@pytest.mark.parametrize("odd", ["night", "snow"])
def test_a_night_or_snow_frame_does_not_throw_the_analysis(ordinary, odd, method):
    from station.pipeline.invert import get_inverter

    inv = get_inverter(method)
    plain = analyse(ordinary, inv)
    with_odd = analyse(ordinary + [frame_sample(_frame(odd, 7)[0])], inv)
    # the per-frame normaliser of the odd frame itself is far off the roll's ...
    alone = analyse([frame_sample(_frame(odd, 7)[0])], inv)
    assert movement(plain, alone) > 0.3
    # ... but among the roll it moves the rendering by little (density)
    assert movement(plain, with_odd) < 0.06, (plain, with_odd)


def test_blank_and_bare_light_are_left_out(ordinary):
    inv = ClassicInverter()
    plain = analyse(ordinary, inv)
    blank, _ = _frame("mid", 0)
    blank = np.broadcast_to(blank[5, 5], blank.shape).copy()  # all rebate: unexposed film
    bare = np.ones_like(blank) * 0.98  # an empty holder: bare light
    more = analyse(ordinary + [frame_sample(blank), frame_sample(bare)], inv)
    assert more.frames == plain.frames == 5
    assert movement(plain, more) < 0.01


def test_accumulator_locks_when_stable_and_then_never_moves(ordinary):
    acc = RollAccumulator(ClassicInverter(), min_frames=3, stable_for=2, settle=0.05)
    for i in range(12):
        acc.add(f"f{i}", ordinary[i] if i < len(ordinary) else frame_sample(_frame("mid", i)[0]))
        if acc.locked:
            break
    assert acc.locked and acc.rendering.locked
    locked = acc.rendering
    acc.add("snow", frame_sample(_frame("snow", 7)[0]))
    assert acc.rendering == locked and acc.rendering.id == locked.id


def test_accumulator_locks_when_the_roll_is_complete(ordinary):
    acc = RollAccumulator(ClassicInverter(), expected=2, settle=0.0)
    acc.add("a", ordinary[0])
    assert not acc.locked
    acc.add("b", ordinary[1])
    assert acc.locked


def test_rendering_round_trips_and_its_id_names_the_pixels():
    r = Rendering(base=(0.5, 0.2, 0.1), A=(1.0, 1.1, 1.2), b=(0.0, -0.1, 0.1), base_source="blank frame", frames=3)
    assert Rendering.from_dict(r.to_dict()) == r
    assert Rendering(r.base, r.A, r.b, frames=9, locked=False).id == r.id  # same pixels, same id
    assert Rendering(r.base, (1.0, 1.1, 1.3), r.b).id != r.id
    with pytest.raises(ValueError):
        Rendering.from_dict({"base": [0, 1, 1], "A": [1, 1, 1], "b": [0, 0, 0]})


def test_preview_and_master_apply_the_rendering_identically(tmp_path):
    from station.model.metrics import box_means, ciede2000
    from station.pipeline.convert import ConvertOptions, convert_file
    from station.pipeline.invert import get_inverter
    from station.pipeline.roll import analyse_files

    boxes = roll_chart.make_roll(tmp_path / "roll")
    files = [tmp_path / "roll" / f"{k}.dng" for k in roll_chart.SCENES]
    inv = get_inverter("classic")
    rendering, unread = analyse_files(files, inv)
    assert not unread
    opts = ConvertOptions(inverter=inv, rendering=rendering)
    src = files[0]
    m = convert_file(src, {"tiff": tmp_path / "m.tif"}, opts)
    assert m.rendering == rendering.id
    # the preview at full resolution (half-size decode, then the same LUT and the same affine)
    p = convert_file(src, {"jpeg": tmp_path / "p.jpg"}, ConvertOptions(inverter=inv, rendering=rendering, half_size=True))
    assert p.rendering == rendering.id
    from PIL import Image

    prev = np.asarray(Image.open(tmp_path / "p.jpg"), np.float32) / 255.0
    master = roll_chart.read_positive(tmp_path / "m.tif")
    sy, sx = master.shape[0] / prev.shape[0], master.shape[1] / prev.shape[1]
    pboxes = [(int(a / sy), int(b / sy), int(c / sx), int(d / sx)) for a, b, c, d in boxes["dark"]]
    de = ciede2000(box_means(master, boxes["dark"]), box_means(prev, pboxes))
    assert float(np.mean(de)) < 1.0, de
    # the master's metadata names the rendering
    import tifffile

    with tifffile.TiffFile(tmp_path / "m.tif") as tf:
        desc = tf.pages[0].description
    assert rendering.id in desc


@pytest.mark.parametrize("method", ["classic", "mlp"])
def test_station_invert_roll_renders_one_chart_the_same_in_a_dark_mid_and_bright_scene(tmp_path, method):
    boxes = roll_chart.make_roll(tmp_path / "roll")
    per_frame = roll_chart.invert(tmp_path / "roll", tmp_path / "frame", method, roll=False)
    assert per_frame.returncode == 0, per_frame.stderr
    roll = roll_chart.invert(tmp_path / "roll", tmp_path / "rolled", method, roll=True)
    assert roll.returncode == 0, roll.stderr
    assert "rendering" in roll.stderr and "3 of 3 frames analysed" in roll.stderr
    before = roll_chart.chart_de(tmp_path / "frame", boxes)
    after = roll_chart.chart_de(tmp_path / "rolled", boxes)
    print(f"{method}: chart ΔE00 between frames, per frame {before['mean']:.2f}, --roll {after['mean']:.2f}")
    assert before["mean"] > 3.0  # each frame normalised on its own: the chart does not match
    assert after["mean"] <= 1.0, after


def test_invert_roll_goes_on_past_a_bad_file(tmp_path):
    import subprocess

    roll_chart.make_roll(tmp_path / "roll")
    (tmp_path / "roll" / "broken.dng").write_bytes(b"II*\x00" + b"\x00" * 64)
    r = subprocess.run([sys.executable, "-m", "station", "invert", str(tmp_path / "roll"), "--out", str(tmp_path / "out"),
                        "--method", "classic", "--roll", "--format", "tiff"], capture_output=True, text=True,
                       cwd=roll_chart.ROOT)
    assert r.returncode == 1, r.stderr
    assert "broken.dng: left out of the roll analysis" in r.stderr
    assert "3 of 4 frames analysed" in r.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("*.tif")) == ["bright.tif", "dark.tif", "mid.tif"]


def test_daemon_roll_analysis_goes_on_after_a_restart(tmp_path, ordinary):
    """The samples of a roll not locked yet are kept in the state folder: a new daemon (a new
    RollRenderings on the same folder) goes on with them and locks when the roll is complete."""
    from station.daemon.rolls import RollRenderings

    man = {"frames_expected": 3}
    settings = {"method": "classic"}
    first = RollRenderings(tmp_path, settings, manifest=lambda roll: man)
    for i in range(2):
        assert first.add("r1", f"r1/{i}.dng", {"sample": ordinary[i].to_dict()}) is None
    assert first.job_settings("r1", "preview") == {"rendering": None, "sample": True}
    # the estimate so far, for the live positive (not for the jobs: they get none until it locks)
    prov = json.loads((tmp_path / "renderings" / "r1.provisional.json").read_text())
    two = analyse(ordinary[:2], ClassicInverter())
    assert prov["locked"] is False and prov["frames"] == 2
    np.testing.assert_allclose(prov["A"] + prov["b"], list(two.A) + list(two.b), rtol=1e-5, atol=1e-5)
    assert not (tmp_path / "renderings" / "r1.json").exists()
    again = RollRenderings(tmp_path, settings, manifest=lambda roll: man)
    r = again.add("r1", "r1/2.dng", {"sample": ordinary[2].to_dict()})
    assert r is not None and r.locked and r.frames == 3
    assert r.id == analyse(ordinary[:3], ClassicInverter()).id  # the same as from the three frames at once
    assert not (tmp_path / "renderings" / "r1.samples.npz").exists()
    assert not (tmp_path / "renderings" / "r1.provisional.json").exists()
    # a third daemon reads the locked rendering: every job of the roll gets it, no more samples
    third = RollRenderings(tmp_path, settings, manifest=lambda roll: man)
    assert third.job_settings("r1", "master") == {"rendering": r.to_dict(), "sample": False}
