"""Film types (issue 18 item 1): black-and-white negatives come out neutral, slides come out
positive, each with the type asked for and with `auto`; a photograph of a scene draws the
warning; a roll's film type reaches the daemon's workers.  Every check opens the files the real
engine wrote (generated film written as DNGs, converted through `convert_file` / the CLI)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from station.model import film as filmsim
from station.model import specialfilm as sf
from station.pipeline.convert import ConvertOptions, convert_file
from station.pipeline.filmcheck import check

BW, SLIDE = sf.BW_STOCK, sf.SLIDE_STOCK


def generated(tmp_path, stock, seed=0, size=200, **sim) -> Path:
    scene, _ = filmsim.scene_with_charts(filmsim.procedural_scene(size, seed=seed))
    p = tmp_path / f"{stock}-{seed}.dng"
    filmsim.write_dng(p, sf.with_rebate(sf.simulate(stock, scene, seed=seed, **sim)))
    return p


@pytest.mark.parametrize("film", ["bw", "auto"])
def test_bw_negatives_invert_neutral_with_the_tonal_order_kept(tmp_path, film):
    for seed in (0, 1):
        r = check(BW, film, seed=seed, folder=tmp_path)
        assert r["film"] == "bw", r
        assert r["grey_cmax"] <= 1.0, r
        assert r["order_kept"], r
        assert not r["warnings"], r


def test_the_colour_path_does_not_make_bw_neutral(tmp_path):
    """What the film type changes: the colour inverter on a silver negative leaves colour in it."""
    src = generated(tmp_path, BW)
    for film, tinted in (("colour", True), ("bw", False)):
        out = tmp_path / f"{film}.tif"
        convert_file(src, {"tiff": out}, ConvertOptions(film=film))
        px = tifffile.imread(out).astype(np.int64)
        spread = np.percentile(np.abs(px[..., 0] - px[..., 2]), 99)
        assert (spread > 500) == tinted, (film, spread)


def test_bw_is_neutral_everywhere_on_both_plans_and_under_a_halogen_light(tmp_path):
    src = generated(tmp_path, BW, backlight="halogen", camera="cam_b")
    for name, opts in (("fused", ConvertOptions(film="auto")), ("plain", ConvertOptions(film="bw", compiled=False))):
        out = tmp_path / f"{name}.tif"
        res = convert_file(src, {"tiff": out}, opts)
        assert res.film == "bw"
        px = tifffile.imread(out).astype(np.int64)
        assert np.abs(px[..., 0] - px[..., 1]).max() <= 1 and np.abs(px[..., 2] - px[..., 1]).max() <= 1, name
        with tifffile.TiffFile(out) as t:
            assert json.loads(t.pages[0].description)["station_film"] == "bw"


@pytest.mark.parametrize("film", ["slide", "auto"])
def test_slides_come_out_positive(tmp_path, film):
    r = check(SLIDE, film, seed=0, folder=tmp_path)
    assert r["film"] == "slide", r
    assert r["order_kept"], r  # the ramp's light patches are light: not inverted
    assert r["ramp_L"][0] < 15 and r["ramp_L"][-1] > 85, r
    assert r["ramp_dL"] < 10, r
    assert not r["warnings"], r


def test_a_slide_through_the_colour_path_is_inverted(tmp_path):
    """The test above can fail: the colour path turns a slide into a negative."""
    r = check(SLIDE, "colour", seed=0, folder=tmp_path)
    assert r["film"] == "colour" and not r["order_kept"], r


def test_colour_negatives_stay_colour_with_auto(tmp_path):
    scene, _ = filmsim.scene_with_charts(filmsim.procedural_scene(200, seed=2))
    for stock in ("kodak_portra_400", "fujifilm_c200"):
        p = tmp_path / f"{stock}.dng"
        filmsim.write_dng(p, filmsim.add_rebate(filmsim.simulate(scene, filmsim.ScanParams(stock=stock))))
        res = convert_file(p, {"tiff": tmp_path / f"{stock}.tif"}, ConvertOptions(film="auto"))
        assert res.film == "colour" and not res.warnings, (stock, res.warnings)


def test_a_photograph_of_a_scene_draws_the_warning_with_auto(tmp_path):
    """A camera photo of a scene (linear camera RGB of a daylight scene, no film, no rebate)."""
    scene = filmsim.srgb_decode(filmsim.procedural_scene(200, seed=4)) * np.array([0.45, 0.9, 0.6])
    p = tmp_path / "scene.dng"
    filmsim.write_dng(p, scene)
    res = convert_file(p, {"tiff": tmp_path / "scene.tif"}, ConvertOptions(film="auto"))
    assert res.film == "colour"
    assert any("looks like a positive" in w for w in res.warnings), res.warnings


def test_the_shared_camera_photos_draw_the_warning_with_auto(tmp_path, shared_dir):
    raws = sorted((shared_dir / "samples" / "raw").glob("*"))
    raws = [p for p in raws if p.suffix.lower() in (".dng", ".nef", ".kdc", ".cr2")]
    if not raws:
        pytest.skip("no shared RAWs")
    for p in raws:
        res = convert_file(p, {"jpeg": tmp_path / f"{p.stem}.jpg"}, ConvertOptions(film="auto", half_size=True))
        assert res.film == "colour" and any("looks like a positive" in w for w in res.warnings), (p.name, res.warnings)


def test_invert_cli_film_auto_logs_the_detection(tmp_path):
    src = generated(tmp_path, BW)
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "station", "invert", str(src), "--out", str(out), "--film", "auto",
                        "--format", "tiff"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "film type bw (auto:" in r.stderr, r.stderr
    px = tifffile.imread(out / f"{src.stem}.tif").astype(np.int64)
    assert np.abs(px[..., 0] - px[..., 2]).max() <= 1
    r = subprocess.run([sys.executable, "-m", "station", "invert", str(src), "--out", str(out), "--film", "sepia"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--film" in r.stderr


def test_film_type_is_checked(tmp_path):
    with pytest.raises(Exception) as exc:
        convert_file(generated(tmp_path, BW), {"tiff": tmp_path / "x.tif"}, ConvertOptions(film="sepia"))
    assert "sepia" in str(exc.value)


def roll_cmd(state, incoming, *args):
    return subprocess.run([sys.executable, "-m", "station", "roll", "--state", str(state), "--incoming", str(incoming),
                           *map(str, args)], capture_output=True, text=True, timeout=180)


def test_roll_new_film_goes_into_the_manifest(tmp_path):
    state, incoming = tmp_path / "state", tmp_path / "incoming"
    r = roll_cmd(state, incoming, "new", "--name", "bw1", "--film", "bw")
    assert r.returncode == 0 and "bw film" in r.stdout, r.stdout + r.stderr
    assert json.loads((state / "rolls" / "bw1" / "manifest.json").read_text())["film"] == "bw"
    r = roll_cmd(state, incoming, "new", "--name", "c1")
    assert json.loads((state / "rolls" / "c1" / "manifest.json").read_text())["film"] == "colour"
    assert roll_cmd(state, incoming, "new", "--name", "x", "--film", "sepia").returncode == 2


def test_the_daemon_renders_a_bw_rolls_frames_neutral(daemon_factory, tmp_path):
    d = daemon_factory(config={"inversion": {"method": "classic"}, "workers": {"count": 1}})
    assert roll_cmd(d.state, d.incoming, "new", "--name", "bw1", "--film", "bw").returncode == 0
    d.start()
    src = generated(tmp_path, BW)
    dst = d.incoming / "bw1" / "01.dng"
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(src.read_bytes())
    rel = "bw1/01.dng"
    d.wait_for(lambda: d.done([rel]), 180, "the B&W frame")
    tif = d.output / "bw1" / "01.tif"
    px = tifffile.imread(tif).astype(np.int64)
    assert np.abs(px[..., 0] - px[..., 1]).max() <= 1 and np.abs(px[..., 2] - px[..., 1]).max() <= 1
    with tifffile.TiffFile(tif) as t:
        assert json.loads(t.pages[0].description)["station_film"] == "bw"


def test_invert_roll_bw_is_neutral_and_a_changed_film_type_remakes_the_outputs(tmp_path):
    folder = tmp_path / "roll"
    folder.mkdir()
    for seed in range(3):
        scene, _ = filmsim.scene_with_charts(filmsim.procedural_scene(160, seed=seed))
        filmsim.write_dng(folder / f"{seed}.dng", sf.with_rebate(sf.simulate_bw(scene, seed=seed, scene_ev=seed - 1)))
    out = tmp_path / "out"

    def invert(*extra):
        r = subprocess.run([sys.executable, "-m", "station", "invert", str(folder), "--out", str(out), "--format",
                            "tiff", *extra], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        return r.stderr

    log = invert("--roll", "--film", "bw")
    assert "roll: 3 of 3 frames analysed" in log and "film bw" in log, log
    for seed in range(3):
        px = tifffile.imread(out / f"{seed}.tif").astype(np.int64)
        assert np.abs(px[..., 0] - px[..., 2]).max() <= 1 and np.abs(px[..., 1] - px[..., 2]).max() <= 1
    assert "3 already complete" in invert("--roll", "--film", "bw")
    invert("--film", "colour")  # another film type: the frames are made again, not skipped as complete
    px = tifffile.imread(out / "0.tif").astype(np.int64)
    assert np.abs(px[..., 0] - px[..., 2]).max() > 1
