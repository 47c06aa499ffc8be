"""`station invert` option combinations that used to do the wrong thing silently (found by
trying the README as a new user): each is now either right or refused with one line naming
the flags.  The checks open what the real command wrote."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from conftest import write_negative


def slide_roll(folder: Path) -> Path:
    """Three generated E-6 slides (astronaut, coffee, cat at -1, 0, +1 EV) with their rebate, as 01-03.dng."""
    from station.model import film as filmsim
    from station.model import specialfilm as sf

    folder.mkdir()
    for seed, name in enumerate(("astronaut", "coffee", "chelsea")):
        scene = filmsim.photo(name, size=400, rng=np.random.default_rng(seed))
        filmsim.write_dng(folder / f"{seed + 1:02d}.dng", sf.with_rebate(sf.simulate_slide(scene, seed=seed, scene_ev=seed - 1)))
    return folder


@pytest.fixture(scope="module")
def roll(tmp_path_factory):
    """A roll folder as a photographer has it: two frames and the blank of the same roll."""
    from negatives import BASE_DENSITY, LIGHT, write_negative_dng

    d = tmp_path_factory.mktemp("roll12")
    write_negative(d / "07.dng", h=200, w=300, seed=0)
    write_negative(d / "08.dng", h=200, w=300, seed=1)
    blank = np.tile((LIGHT * 10.0 ** -BASE_DENSITY).astype(np.float32), (120, 160, 1))
    write_negative_dng(d / "blank.dng", blank)
    return d


def test_the_base_blank_among_the_inputs_is_not_converted_as_a_frame(roll, tmp_path, cli):
    """README: `station invert ~/scans/roll12 --out out --base ~/scans/roll12/blank.NEF`: the
    blank is the roll's film base, not one of its pictures (it made a black "positive",
    counted as converted, and took frame number 1 with --frame-numbers order)."""
    out = tmp_path / "out"
    r = cli("invert", roll, "--out", out, "--base", roll / "blank.dng", "--format", "tiff",
            "--frame-numbers", "order", "--name", "{frame:02d}")
    assert r.returncode == 0, r.stderr
    assert "blank.dng: the --base blank, not converted" in r.stderr, r.stderr
    assert "2 of 2 converted" in r.stderr, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["01.tif", "02.tif"]
    with tifffile.TiffFile(out / "01.tif") as t:
        assert json.loads(t.pages[0].description)["station_source"] == "07.dng"


@pytest.mark.parametrize("args, msg", [
    (["--format", "jpeg", "--colour-space", "prophoto"], "--colour-space prophoto is the 16-bit TIFF's"),
    (["--format", "linear-tiff", "--colour-space", "adobe-rgb"], "--colour-space adobe-rgb is the 16-bit TIFF's"),
    (["--format", "tiff", "--jpeg-colour-space", "display-p3"], "--jpeg-colour-space display-p3 is the JPEG's"),
    (["--format", "tiff", "--jpeg-quality", "70"], "--jpeg-quality 70 is the JPEG's"),
])
def test_an_output_option_for_an_output_not_written_is_refused(roll, tmp_path, cli, args, msg):
    """`--colour-space prophoto --format jpeg` wrote an sRGB JPEG whose description said prophoto."""
    out = tmp_path / "out"
    r = cli("invert", roll / "07.dng", "--out", out, *args)
    assert r.returncode == 2 and msg in r.stderr, r.stderr
    assert not out.exists() or not any(out.iterdir())


def test_film_slide_with_base_is_refused(roll, tmp_path, cli):
    """A slide has no film base: with a blank (unexposed slide film is black) every picture came
    out blown to white, reported converted."""
    out = tmp_path / "out"
    r = cli("invert", roll / "07.dng", "--out", out, "--film", "slide", "--base", roll / "blank.dng")
    assert r.returncode == 2, r.stderr
    assert "--base is for negatives" in r.stderr, r.stderr
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("date, why", [("2999-01", "is in the future"), ("1700", "before photography")])
def test_a_shot_date_that_cannot_be_is_refused(roll, tmp_path, cli, date, why):
    r = cli("invert", roll / "07.dng", "--out", tmp_path / "out", "--shot-date", date)
    assert r.returncode == 2 and f"shot date {date!r}" in r.stderr and why in r.stderr, r.stderr


@pytest.mark.parametrize("args", [["--format", "tiff"], ["--colour-space", "prophoto"], ["--exposure", "1"],
                                  ["--roll"], ["--jpeg-quality", "50"]])
def test_xmp_sidecar_with_picture_options_is_refused(roll, tmp_path, cli, args):
    """--xmp-sidecar writes no pictures: a picture option beside it was silently ignored."""
    out = tmp_path / "out"
    r = cli("invert", roll / "07.dng", "--out", out, "--xmp-sidecar", *args)
    assert r.returncode == 2, r.stderr
    assert "--xmp-sidecar writes no pictures" in r.stderr and args[0] in r.stderr, r.stderr
    assert not out.exists() or not any(out.iterdir())


def test_film_auto_with_roll_gives_the_roll_one_film_type(tmp_path, cli):
    """--roll --film auto: the roll is one film, so one type for all its frames (detected over
    the roll, logged), its analysis made with that type's normaliser.  Per frame, the dark
    first frame of this slide roll was taken for a colour negative and came out negative."""
    folder = slide_roll(tmp_path / "slides")
    out = tmp_path / "out"
    r = cli("invert", folder, "--out", out, "--roll", "--film", "auto", "--format", "tiff")
    assert r.returncode == 0, r.stderr
    assert "roll: film type slide (auto:" in r.stderr, r.stderr
    for i in (1, 2, 3):
        with tifffile.TiffFile(out / f"{i:02d}.tif") as t:
            assert json.loads(t.pages[0].description).get("station_film") == "slide", i


@pytest.mark.parametrize("film", ["bw", "auto"])
def test_a_bw_or_slide_output_names_the_method_that_made_it(tmp_path, cli, film):
    """The outputs say how the positive was made: a black-and-white negative is rendered by the
    bw transfer, not by the learned colour model (they said Method mlp, ModelId default.npz);
    and the frame is still found complete when the same command runs again."""
    from station.model import film as filmsim
    from station.model import specialfilm as sf
    from station.pipeline.metadata import read_xmp

    scene = filmsim.photo("astronaut", size=300, rng=np.random.default_rng(0))
    src = tmp_path / "01.dng"
    filmsim.write_dng(src, sf.with_rebate(sf.simulate_bw(scene, seed=0)))
    out = tmp_path / "out"
    args = ("invert", src, "--out", out, "--film", film)
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    for name in ("01.tif", "01.jpg"):
        from station.pipeline.write import output_description

        d = output_description(out / name)
        assert d["station_film"] == "bw" and d["station_method"] == "bw" and "station_model" not in d, (name, d)
    assert read_xmp((out / "01.jpg").read_bytes())["Method"] == "bw"
    if film == "bw":  # the run's summary names it too (it said "mlp, film bw")
        assert "failed (film bw, " in r.stderr and "mlp" not in r.stderr, r.stderr
    r = cli(*args)
    assert r.returncode == 0 and "1 already complete" in r.stderr, r.stderr


def test_evaluate_film_uses_size_and_refuses_what_does_not_apply(tmp_path, cli):
    """`station evaluate --film bw --size N` evaluated 240-pixel scenes whatever N said; --model
    and the other colour-only flags were ignored."""
    js = tmp_path / "bw.json"
    r = cli("evaluate", "--film", "bw", "--scenes", "1", "--size", "160", "--json", js)
    assert r.returncode == 0, r.stderr
    rows = json.loads(js.read_text())
    assert rows and all(row["size"] == 160 for row in rows), rows
    r = cli("evaluate", "--film", "bw", "--size", "40")
    assert r.returncode == 2 and "--size 40: scene too small" in r.stderr, r.stderr
    r = cli("evaluate", "--film", "slide", "--model", tmp_path / "my.npz")
    assert r.returncode == 2 and "--model does not apply" in r.stderr, r.stderr


def test_crop_auto_on_slides_keeps_the_picture_only(tmp_path, cli):
    """--crop auto --film slide: a slide's rebate is black, not thin, so the crop looked for the
    wrong thing (the rebate and sprocket holes kept, the frame turned by a few degrees).  And a
    square picture has no orientation for the tilt to come from (it turned the cat by ~5°)."""
    folder = slide_roll(tmp_path / "slides")
    out = tmp_path / "out"
    r = cli("invert", folder, "--out", out, "--film", "slide", "--crop", "auto", "--format", "tiff")
    assert r.returncode == 0, r.stderr
    for i in (1, 2, 3):
        px = tifffile.imread(out / f"{i:02d}.tif")
        h, w = px.shape[:2]
        # the picture, not its rebate (a shadow as dense as the rebate at the picture's edge, the
        # astronaut's black right side, is cut with it: the density cannot tell them apart)
        assert 0.88 * 400 <= h <= 400 and 0.88 * 400 <= w <= 400, (i, px.shape)


def test_a_square_picture_is_not_turned_by_the_crop():
    """A square picture's second moments have no major axis: the tilt read from them is noise
    (a square slide came out turned by ~5 degrees)."""
    from station.pipeline.crop import tilt_degrees

    rng = np.random.default_rng(7)  # content that read as an 8 degree tilt
    D = np.zeros((400, 400, 3), np.float32)
    D[50:350, 50:350] = 1.0
    for _ in range(12):  # picture content as thin as the rebate in places (a highlight, a slide's shadow)
        y, x, r = rng.integers(60, 340), rng.integers(60, 340), rng.integers(10, 40)
        yy, xx = np.ogrid[:400, :400]
        D[(yy - y) ** 2 + (xx - x) ** 2 < r * r] = 0.0
    assert tilt_degrees(D) == 0.0


@pytest.mark.parametrize("film", ["bw", "slide"])
@pytest.mark.parametrize("args", [["--method", "classic"], ["--model", "my-look.npz"]])
def test_film_bw_or_slide_with_a_colour_method_is_refused(roll, tmp_path, cli, film, args):
    """--film bw|slide render with their own transfer: --method and --model (the colour
    negative's inversion) were ignored silently."""
    out = tmp_path / "out"
    r = cli("invert", roll / "07.dng", "--out", out, "--film", film, *args)
    assert r.returncode == 2 and f"{args[0]} is the colour negative's inversion" in r.stderr, r.stderr
    assert not out.exists() or not any(out.iterdir())


def test_calibrating_a_slide_roll_is_refused(roll, tmp_path, cli):
    """`station roll calibrate` on a slide roll: a slide has no film base; the blank was kept as
    the roll's base and its frames rendered through it (blown to white, as invert --base did)."""
    where = ("--state", tmp_path / "state", "--incoming", tmp_path / "in")
    assert cli("roll", *where, "new", "--name", "e6", "--film", "slide").returncode == 0
    r = cli("roll", *where, "calibrate", "--file", roll / "blank.dng")
    assert r.returncode == 2 and "roll e6 is a slide roll: a slide has no film base" in r.stderr, r.stderr
    manifest = json.loads((tmp_path / "state" / "rolls" / "e6" / "manifest.json").read_text())
    assert manifest.get("base") is None
    assert not list((tmp_path / "state" / "rolls" / "e6").glob("base*"))


def test_roll_list_names_each_rolls_film_type(tmp_path, cli, capsys):
    """A lab's operator with a bw and a slide roll on the go could not tell them apart in the list."""
    from station.cli import main

    where = ("--state", tmp_path / "state", "--incoming", tmp_path / "in")
    assert cli("roll", *where, "new", "--name", "hp5", "--stock", "Ilford HP5", "--film", "bw").returncode == 0
    assert cli("roll", *where, "new", "--name", "e100", "--film", "slide", "--shot-date", "2025-06").returncode == 0
    capsys.readouterr()
    assert main(["roll", *map(str, where), "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any("hp5" in ln and "Ilford HP5" in ln and "bw" in ln for ln in lines), lines
    assert any("e100" in ln and "slide" in ln and "shot 2025-06" in ln for ln in lines), lines


def test_an_output_never_replaces_an_input_even_with_overwrite(tmp_path, cli):
    """`station invert scans --out scans --overwrite`: a film scanner's scan.tif is an original;
    its positive scan.tif replaced it (and a JPEG scan likewise)."""
    from conftest import negative_cfa

    folder = tmp_path / "scans"
    folder.mkdir()
    rgb = negative_cfa(120, 160, seed=2)[::2, ::2]
    tifffile.imwrite(folder / "scan.tif", np.stack([rgb, rgb // 2, rgb // 4], axis=2))
    before = (folder / "scan.tif").read_bytes()
    r = cli("invert", folder, "--out", folder, "--overwrite", "--format", "tiff")
    assert r.returncode == 1, r.stderr
    assert "scan.tif: output" in r.stderr and "is an input" in r.stderr, r.stderr
    assert (folder / "scan.tif").read_bytes() == before
    r = cli("invert", folder / "scan.tif", "--out", tmp_path / "elsewhere", "--format", "tiff", "--name", "../scans/{name}")
    assert (folder / "scan.tif").read_bytes() == before
    # RAW+JPEG: the camera's JPEG beside the RAW is an original too (the RAW's positive takes its name)
    raw = folder / "07.dng"
    write_negative(raw, h=200, w=300, seed=0)
    (folder / "07.jpg").write_bytes(b"the camera's own JPEG")
    r = cli("invert", folder, "--out", folder, "--overwrite", "--format", "jpeg")
    assert "07.jpg is an input" in r.stderr, r.stderr
    assert (folder / "07.jpg").read_bytes() == b"the camera's own JPEG"


def test_the_stations_own_positives_are_not_taken_for_inputs(roll, tmp_path, cli):
    """--out inside the inputs' folder with --recursive (or the folder itself): the second run
    inverted the first run's positives again (positives of positives in out/out/)."""
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "07.dng").write_bytes((roll / "07.dng").read_bytes())
    for _ in range(2):
        r = cli("invert", folder, "--out", folder / "out", "--recursive", "--format", "tiff,jpeg,linear-tiff")
        assert r.returncode == 0, r.stderr
    assert "07.tif: a positive the station made (from 07.dng), not an input" in r.stderr, r.stderr
    assert "1 already complete" in r.stderr, r.stderr
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == [
        "07.dng", "out", "out/07-linear.tif", "out/07.jpg", "out/07.tif"]


def test_the_user_comment_keeps_a_stock_name_that_is_not_ascii(roll, tmp_path, cli):
    """EXIF UserComment (what many viewers show as the comment) was written as ASCII with "?"
    for every other character: "Fujicolor Pro 400H ? ?r?n"; UNICODE (UCS-2) keeps it."""
    import shutil
    import subprocess

    if shutil.which("exiftool") is None:
        pytest.skip("exiftool is not installed (apt-get install libimage-exiftool-perl)")
    out = tmp_path / "out"
    r = cli("invert", roll / "07.dng", "--out", out, "--stock", "Fujicolor Pro 400H — Ürün", "--roll-name", "été")
    assert r.returncode == 0, r.stderr
    for name in ("07.jpg", "07.tif"):
        got = subprocess.run(["exiftool", "-s3", "-UserComment", str(out / name)], capture_output=True, text=True).stdout
        assert "Fujicolor Pro 400H — Ürün, colour negative (C-41), roll été, frame 7" in got, (name, got)
    r = cli("invert", roll / "08.dng", "--out", out, "--stock", "Kodak Portra 400")  # ASCII stays ASCII
    got = subprocess.run(["exiftool", "-s3", "-UserComment", str(out / "08.jpg")], capture_output=True, text=True).stdout
    assert got.startswith("Kodak Portra 400, colour negative"), got


@pytest.mark.parametrize("pattern, flag", [("{shot_date}/{frame:02d}", "--shot-date"), ("{stock}-{name}", "--stock")])
def test_a_name_token_whose_flag_is_missing_is_a_usage_error(roll, tmp_path, cli, pattern, flag):
    """{stock} and {shot_date} come only from their flags: without the flag every input failed
    one by one (exit 1, a line each); it is one usage error (exit 2) before anything is read."""
    out = tmp_path / "out"
    r = cli("invert", roll, "--out", out, "--name", pattern)
    assert r.returncode == 2, r.stderr
    assert f"needs {flag}" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_out_that_is_a_file_says_so(roll, tmp_path, cli):
    """--out naming a file said "cannot create the folder (File exists)"."""
    f = tmp_path / "positives"
    f.write_text("a file")
    r = cli("invert", roll / "07.dng", "--out", f)
    assert r.returncode == 2 and f"--out {f}: is a file, not a folder" in r.stderr, r.stderr


def test_a_negative_given_as_flat_field_is_called_film_not_clipped():
    """A negative frame passed as the flat field (its sprocket holes clipped) was refused as
    "clipped ... expose shorter": the photographer would shoot the film again, shorter."""
    from station.pipeline.flatfield import NotAFlatError, measure_flat

    frame = np.tile(np.array([0.6, 0.3, 0.09], np.float32), (400, 600, 1))  # orange film base
    for x in range(10, 590, 40):  # sprocket holes: the bare light, clipped
        frame[5:25, x:x + 20] = 1.0
        frame[375:395, x:x + 20] = 1.0
    with pytest.raises(NotAFlatError, match="film in it"):
        measure_flat(frame)
