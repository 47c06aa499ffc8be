"""Issue 18 item 2: the outputs carry the camera's fields and the film's story, read back by
exiftool (an independent reader; installed for the tests only, the station never runs it)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_negative

EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(EXIFTOOL is None, reason="exiftool is not installed")


def station(*args):
    return subprocess.run([sys.executable, "-m", "station", *map(str, args)], capture_output=True, text=True, timeout=300)


def exif(*paths) -> dict:
    """{file name: {group:tag: value}} as exiftool reads them."""
    r = subprocess.run([EXIFTOOL, "-j", "-a", "-G1", "-n", *map(str, paths)], capture_output=True, text=True, timeout=60)
    assert r.stdout, r.stderr
    return {Path(d["SourceFile"]).name: d for d in json.loads(r.stdout)}


def first(d: dict, tag: str):
    """The value of `tag` in any group (exiftool -G1 keys are GROUP:TAG)."""
    return next((v for k, v in d.items() if k.split(":")[-1] == tag), None)


@needs_exiftool
def test_every_shared_raw_keeps_make_model_and_date_and_gets_the_story(shared_dir, tmp_path):
    """Each real RAW of ../shared (NEF, KDC, two DNGs): Make, Model and DateTimeOriginal in
    the TIFF and the JPEG as in the RAW (a RAW with no DateTimeOriginal: the date LibRaw reads
    from it, its DateTime; a DNG without Make/Model: its UniqueCameraModel), and the stock,
    roll, frame and shot date given to `station invert`."""
    raws = sorted((shared_dir / "samples" / "raw").iterdir())
    out = tmp_path / "out"
    r = station("invert", *raws, "--out", out, "--method", "classic", "--stock", "Kodak Portra 400",
                "--roll-name", "r12", "--shot-date", "1998-07", "--frame-numbers", "order")
    assert r.returncode == 0, r.stderr
    src = exif(*raws)
    got = exif(*sorted(out.iterdir()))
    assert len(got) == 2 * len(raws)
    for n, raw in enumerate(raws, 1):
        want = src[raw.name]
        make, model = first(want, "Make"), first(want, "Model")
        if not model:  # Blackmagic: empty Make/Model, named by UniqueCameraModel
            model = first(want, "UniqueCameraModel")
            make = model.split()[0]
        date = first(want, "DateTimeOriginal") or first(want, "ModifyDate")
        for ext in (".tif", ".jpg"):
            d = got[raw.stem + ext]
            assert d.get("IFD0:Make") == make and d.get("IFD0:Model") == model, (raw.name, ext)
            assert d.get("ExifIFD:DateTimeOriginal") == date, (raw.name, ext)
            assert d.get("XMP-station:FilmStock") == "Kodak Portra 400"
            assert d.get("XMP-station:Roll") == "r12"
            assert d.get("XMP-station:Frame") == n
            assert str(d.get("XMP-photoshop:DateCreated")).startswith("1998")  # the film's shot date
            assert d.get("XMP-station:Source") == raw.name
            assert d.get("XMP-station:Method") == "classic"
            assert "Kodak Portra 400" in d.get("ExifIFD:UserComment", "")
        if first(want, "LensModel"):
            assert got[raw.stem + ".tif"].get("ExifIFD:LensModel") == first(want, "LensModel")


@needs_exiftool
def test_a_malformed_camera_date_is_dropped_with_a_warning(tmp_path):
    """A RAW whose date tag is not a date (a broken camera clock): the outputs carry no date
    (neither copied nor LibRaw's reading of it), and the run says so."""
    from station.io.dng import write_bayer_dng
    from conftest import negative_cfa

    bad = write_bayer_dng(tmp_path / "bad.dng", negative_cfa(), datetime="2021:13:45 99:00:00")
    out = tmp_path / "out"
    r = station("invert", bad, "--out", out, "--method", "classic")
    assert r.returncode == 0, r.stderr
    assert "DateTime '2021:13:45 99:00:00' is not a valid date" in r.stderr
    for name, v in exif(out / "bad.tif", out / "bad.jpg").items():
        tags = {k: t for k, t in v.items() if k.startswith(("IFD0:", "ExifIFD:", "XMP"))}  # not the file system's
        assert not any(k.endswith(("DateTimeOriginal", "ModifyDate", "CreateDate", "ScanDate")) for k in tags), (name, tags)
        assert "2021:13:45" not in json.dumps(tags) and "2022:" not in json.dumps(tags)
        assert v.get("IFD0:Make") == "Station"  # the rest is carried over


def _film_flag_supported() -> bool:
    r = station("roll", "new", "--help")
    return "--film" in r.stdout


@needs_exiftool
def test_the_daemon_writes_the_rolls_story_and_its_colour_space(daemon_factory, tmp_path):
    """`station roll new --stock ... --shot-date ...` (and the roll's film type, `--film` once
    the command has it, else the manifest's `film:` key it writes), then the real daemon
    converts a frame of that roll: exiftool reads stock, film type, roll, frame and shot date
    from the TIFF and the JPEG; outputs.colour_space gives the TIFF a Display P3 profile, the
    JPEG stays sRGB."""
    d = daemon_factory(config={"watcher": {"rescan_interval": 0}, "inversion": {"method": "classic"},
                               "outputs": {"colour_space": "display-p3"}})
    args = ["roll", "new", "--state", d.state, "--incoming", d.incoming, "--name", "portra-7",
            "--stock", "Kodak Portra 400", "--shot-date", "1998-07-04"]
    film_flag = _film_flag_supported()
    r = station(*args, *(["--film", "colour"] if film_flag else []))
    assert r.returncode == 0, r.stderr
    manifest = d.state / "rolls" / "portra-7" / "manifest.json"
    m = json.loads(manifest.read_text())
    assert m["stock"] == "Kodak Portra 400" and m["shot_date"] == "1998-07-04"
    if not film_flag:
        m["film"] = "colour"
        manifest.write_text(json.dumps(m))
    d.start()
    tmp = write_negative(tmp_path / "f.dng")
    os.rename(tmp, d.incoming / "portra-7" / "03.dng")
    d.wait_for(lambda: d.done(["portra-7/03.dng"]), 120, "frame converted")
    got = exif(d.output / "portra-7" / "03.tif", d.output / "portra-7" / "03.jpg")
    for name, v in got.items():
        assert v.get("XMP-station:FilmStock") == "Kodak Portra 400", name
        assert v.get("XMP-station:FilmType") == "colour", name
        assert v.get("XMP-station:Roll") == "portra-7", name
        assert v.get("XMP-station:Frame") == 3, name
        assert v.get("XMP-station:ShotDate") == "1998-07-04", name
    assert got["03.tif"].get("ICC_Profile:ProfileDescription") == "Display P3"
    assert got["03.jpg"].get("ICC_Profile:ProfileDescription") == "sRGB built-in"
    assert d.stop() == 0


def test_roll_new_refuses_a_shot_date_that_is_not_a_date(tmp_path):
    r = station("roll", "new", "--state", tmp_path / "st", "--incoming", tmp_path / "in", "--name", "r1",
                "--shot-date", "July 98")
    assert r.returncode == 2
    assert "shot date 'July 98' is not a date" in r.stderr
    assert not (tmp_path / "st" / "rolls" / "r1").exists()


def test_the_film_type_rendered_is_in_the_story(tmp_path):
    """A frame rendered as black-and-white (ConvertOptions.film, what `--film bw` and a roll's
    `film: bw` set) says so in its XMP and its EXIF UserComment; a colour one given no type
    claims none."""
    import tifffile
    from PIL import Image

    from station.pipeline.classic import ClassicInverter
    from station.pipeline.convert import ConvertOptions, convert_file
    from station.pipeline.metadata import read_xmp

    src = write_negative(tmp_path / "n.dng")
    for film, want in (("bw", "bw"), ("colour", None)):
        out = {"tiff": tmp_path / f"{film}.tif", "jpeg": tmp_path / f"{film}.jpg"}
        convert_file(src, out, ConvertOptions(inverter=ClassicInverter(), film=film,
                                              extra_meta={"film_stock": "Ilford HP5 Plus"}))
        with tifffile.TiffFile(out["tiff"]) as tf:
            x = read_xmp(bytes(tf.pages[0].tags[700].value))
        assert x.get("FilmType") == want and x["FilmStock"] == "Ilford HP5 Plus"
        with Image.open(out["jpeg"]) as im:
            comment = im.getexif().get_ifd(0x8769)[0x9286]
        assert ("black-and-white negative" in str(comment)) == (want == "bw")
