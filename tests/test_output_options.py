"""Issue 18 item 3: each output choice of `station invert`, checked by opening the files.

Colour spaces are checked against LittleCMS (Pillow's ImageCms), which the station's own ICC
writer does not use: the profile in the file, applied by LittleCMS to the sRGB positive,
must give the file's pixels."""
from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms

from conftest import write_negative

# JPEG Annex K tables (natural order) and the IJG quality scaling libjpeg uses
LUMA = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
        14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
CHROMA = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
          47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32


def ijg_table(base, quality):
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return [min(255, max(1, (b * scale + 50) // 100)) for b in base]


@pytest.fixture(scope="module")
def negs(tmp_path_factory):
    d = tmp_path_factory.mktemp("negs")
    for i, name in enumerate(("07.dng", "08.dng")):
        write_negative(d / name, seed=i)
    return d


def icc_description(data: bytes) -> str:
    return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(data))).strip()


def tiff_icc(path) -> bytes:
    with tifffile.TiffFile(path) as tf:
        return bytes(tf.pages[0].tags[34675].value)


@pytest.mark.parametrize("space,desc", [("display-p3", "Display P3"), ("adobe-rgb", "Adobe RGB (1998) compatible"),
                                        ("prophoto", "ProPhoto RGB (ROMM RGB)")])
def test_colour_space_tiff_has_its_profile_and_its_pixels(negs, tmp_path, space, desc):
    """The TIFF in `space` carries that ICC profile, and its pixels are the sRGB positive taken
    into `space` by LittleCMS through that profile (8-bit compare: within 2 levels); the JPEG
    beside it stays sRGB."""
    from station.pipeline.classic import ClassicInverter
    from station.pipeline.convert import ConvertOptions, convert_file

    src = negs / "07.dng"
    ref, out = tmp_path / "srgb.tif", tmp_path / "wide.tif"
    convert_file(src, {"tiff": ref}, ConvertOptions(inverter=ClassicInverter()))
    convert_file(src, {"tiff": out, "jpeg": tmp_path / "wide.jpg"},
                 ConvertOptions(inverter=ClassicInverter(), extra_meta={"station_colour_space": space}))
    icc = tiff_icc(out)
    assert icc_description(icc) == desc
    assert icc_description(tiff_icc(ref)).startswith("sRGB")
    with Image.open(tmp_path / "wide.jpg") as im:
        assert icc_description(im.info["icc_profile"]).startswith("sRGB")
    srgb8 = (tifffile.imread(ref).astype(np.float64) / 257 + 0.5).astype(np.uint8)
    t = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.ImageCmsProfile(io.BytesIO(icc)), "RGB", "RGB")
    want = np.asarray(ImageCms.applyTransform(Image.fromarray(srgb8), t)).astype(np.int32)
    got = tifffile.imread(out).astype(np.float64) / 257
    assert np.abs(got - want).max() <= 2.0
    assert np.abs(got - srgb8).max() > 8  # really converted (not the sRGB numbers with another label)


def test_the_command_line_writes_jpeg_quality_colour_space_names_and_the_linear_scan(negs, tmp_path, cli):
    """One `station invert` with the output flags: names from the pattern, the JPEG's
    quantisation tables are libjpeg's for quality 50, the TIFF is Adobe RGB with its profile,
    and the linear TIFF is the decoded scan divided by the film base (its profile linear)."""
    from station.pipeline.decode import decode
    from station.pipeline.write import output_description

    out = tmp_path / "out"
    r = cli("invert", negs / "07.dng", negs / "08.dng", "--out", out, "--method", "classic",
            "--name", "{roll}_{frame:02d}_{stock}", "--roll-name", "r1", "--stock", "Kodak Gold 200",
            "--jpeg-quality", "50", "--colour-space", "adobe-rgb", "--format", "tiff,jpeg,linear-tiff")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        f"r1_{n}_Kodak_Gold_200{ext}" for n in ("07", "08") for ext in ("-linear.tif", ".jpg", ".tif")]
    with Image.open(out / "r1_07_Kodak_Gold_200.jpg") as im:
        q = im.quantization
        assert list(q[0]) == ijg_table(LUMA, 50) and list(q[1]) == ijg_table(CHROMA, 50)
        assert icc_description(im.info["icc_profile"]).startswith("sRGB")
    assert icc_description(tiff_icc(out / "r1_07_Kodak_Gold_200.tif")) == "Adobe RGB (1998) compatible"
    lin_path = out / "r1_07_Kodak_Gold_200-linear.tif"
    assert icc_description(tiff_icc(lin_path)).startswith("station linear scan")
    lin = tifffile.imread(lin_path)
    assert lin.dtype == np.uint16
    d = output_description(lin_path)
    assert d["station_content"] == "linear scan" and d["station_source"] == "07.dng"
    base = np.asarray(d["station_base"], np.float32)
    rgb = decode(negs / "07.dng").rgb
    expect = np.clip(rgb / base, 0, 1)
    assert np.abs(lin.astype(np.float32) / 65535 - expect).max() < 2e-3
    assert np.median(lin.reshape(-1, 3), axis=0).max() < 60000  # a negative, not clipped white
    # the same again: complete frames are skipped, nothing rewritten
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    r = cli("invert", negs / "07.dng", negs / "08.dng", "--out", out, "--method", "classic",
            "--name", "{roll}_{frame:02d}_{stock}", "--roll-name", "r1", "--stock", "Kodak Gold 200",
            "--jpeg-quality", "50", "--colour-space", "adobe-rgb", "--format", "tiff,jpeg,linear-tiff")
    assert r.returncode == 0 and "2 already complete" in r.stderr, r.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_a_name_pattern_that_makes_two_inputs_collide_is_refused_never_overwriting(negs, tmp_path, cli):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.jpg").write_bytes(b"not the station's")
    r = cli("invert", negs / "07.dng", negs / "08.dng", "--out", out, "--method", "classic",
            "--name", "{stock}", "--stock", "Fuji C200", "--format", "jpeg")
    assert r.returncode == 1
    assert "08.dng: another input has the same output name 'Fuji_C200'" in r.stderr
    assert json.loads(Image.open(out / "Fuji_C200.jpg").getexif()[270])["station_source"] == "07.dng"
    r = cli("invert", negs / "07.dng", "--out", out, "--method", "classic", "--name", "mine", "--format", "jpeg")
    assert r.returncode == 2 and "has no token" in r.stderr
    r = cli("invert", negs / "07.dng", "--out", out, "--method", "classic", "--name", "m{name}e", "--format", "jpeg")
    assert r.returncode == 0
    r = cli("invert", negs / "08.dng", "--out", out, "--method", "classic", "--name", "{frame}", "--format", "jpeg",
                "--frame-numbers", "none")
    assert r.returncode == 1 and "{frame}: no frame number" in r.stderr
    assert (out / "mine.jpg").read_bytes() == b"not the station's"


def test_usage_errors_name_the_flag(negs, tmp_path, cli):
    for args, msg in ((["--jpeg-quality", "0"], "--jpeg-quality 0: must be between 1 and 100"),
                      (["--name", "{film}"], "unknown token {film}"),
                      (["--shot-date", "1998-02-30"], "shot date '1998-02-30' is not a date"),
                      (["--format", "png"], "unknown format png")):
        r = cli("invert", negs / "07.dng", "--out", tmp_path / "o", *args)
        assert r.returncode == 2 and msg in r.stderr, (args, r.stderr)


def test_xmp_sidecar_only_writes_the_story_beside_nothing_else(negs, tmp_path, cli):
    """--xmp-sidecar: one <name>.xmp per input (stock, roll, frame, shot date, source), no
    positives; run again: kept; a sidecar that is not the station's is never replaced."""
    from station.pipeline.metadata import read_xmp

    out = tmp_path / "side"
    args = ["invert", negs / "07.dng", negs / "08.dng", "--out", out, "--xmp-sidecar", "--stock", "Ilford HP5 Plus",
            "--roll-name", "hp5-3", "--shot-date", "2001-05"]
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["07.xmp", "08.xmp"]
    x = read_xmp((out / "08.xmp").read_bytes())
    assert (x["FilmStock"], x["Roll"], x["Frame"], x["ShotDate"], x["Source"]) == (
        "Ilford HP5 Plus", "hp5-3", "8", "2001-05", "08.dng")
    mtime = (out / "08.xmp").stat().st_mtime_ns
    r = cli(*args)
    assert r.returncode == 0 and "2 already complete" in r.stderr
    assert (out / "08.xmp").stat().st_mtime_ns == mtime
    (out / "07.xmp").write_text("<x:xmpmeta xmlns:x='adobe:ns:meta/'/>")  # a raw editor's own sidecar
    r = cli(*args)
    assert r.returncode == 1 and "07.xmp: already exists and was not written for this input" in r.stderr
    assert (out / "07.xmp").read_text() == "<x:xmpmeta xmlns:x='adobe:ns:meta/'/>"


def test_icc_profiles_are_what_littlecms_computes(tmp_path):
    """The station's ICC writer against LittleCMS: for every space, sRGB colours converted by
    LittleCMS into the written profile equal station's own conversion (within rounding)."""
    from station.pipeline import colourspace as cs

    g = np.linspace(0, 1, 18)
    px = np.stack(np.meshgrid(g, g, g), -1).reshape(1, -1, 3)
    px8 = (px * 255 + 0.5).astype(np.uint8)
    for key in ("display-p3", "adobe-rgb", "prophoto", "linear"):
        prof = ImageCms.ImageCmsProfile(io.BytesIO(cs.icc_profile(key)))
        assert prof.profile.version == 4.3
        t = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), prof, "RGB", "RGB")
        lcms = np.asarray(ImageCms.applyTransform(Image.fromarray(px8), t)).astype(np.float64)
        ours = cs.convert(px8.astype(np.float32) / 255, key) * 255
        assert np.abs(lcms - ours).max() <= 1.0, key


def test_camera_fields_of_raws_that_are_not_plain_tiffs(tmp_path):
    """ORF/RW2-style TIFFs with another magic number, a CR3's CMT1/CMT2 boxes and a RAF-style
    embedded preview JPEG: make, model, date and lens found; a malformed date dropped."""
    from station.pipeline.rawmeta import clean_fields, container_fields

    exif = Image.Exif()
    exif[271], exif[272], exif[274] = "OM Digital Solutions", "OM-1", 6
    exif.get_ifd(0x8769)[0x9003] = "2024:02:03 04:05:06"
    exif.get_ifd(0x8769)[0xA434] = "M.Zuiko 60mm F2.8 Macro"
    tiff = exif.tobytes()[6:]  # "Exif\0\0" + TIFF -> TIFF
    want = {"make": "OM Digital Solutions", "model": "OM-1", "orientation": 6, "lens": "M.Zuiko 60mm F2.8 Macro",
            "datetime_original": "2024:02:03 04:05:06", "datetime": "2024:02:03 04:05:06"}
    order = "<" if tiff[:2] == b"II" else ">"
    orf = tmp_path / "a.ORF"
    orf.write_bytes(tiff[:2] + struct.pack(order + "H", 0x4F52) + tiff[4:] + b"\0" * 64)  # Olympus "RO"
    assert clean_fields(container_fields(orf), orf) == want
    rw2 = tmp_path / "a.RW2"
    rw2.write_bytes(tiff[:2] + struct.pack(order + "H", 0x55) + tiff[4:])  # Panasonic
    assert clean_fields(container_fields(rw2), rw2) == want
    # CR3: ISO media; CMT1 = IFD0 as a TIFF, CMT2 = the EXIF IFD as a TIFF
    ifd0 = Image.Exif()
    ifd0[271], ifd0[272] = "Canon", "Canon EOS R5"
    sub = Image.Exif()
    sub[0x9003], sub[0xA434] = "2023:11:12 13:14:15", "RF100mm F2.8 L MACRO IS USM"

    def box(name, payload):
        return (8 + len(payload)).to_bytes(4, "big") + name + payload

    cr3 = tmp_path / "a.CR3"
    cr3.write_bytes(box(b"ftyp", b"crx \0\0\0\1") + box(b"moov", box(b"CMT1", ifd0.tobytes()[6:])
                                                       + box(b"CMT2", sub.tobytes()[6:])))
    assert clean_fields(container_fields(cr3), cr3) == {
        "make": "Canon", "model": "Canon EOS R5", "lens": "RF100mm F2.8 L MACRO IS USM",
        "datetime_original": "2023:11:12 13:14:15", "datetime": "2023:11:12 13:14:15"}
    # RAF: a header, then the preview JPEG whose APP1 holds the EXIF; a malformed date dropped
    bad = Image.Exif()
    bad[271], bad[272] = "FUJIFILM", "X-T5"
    bad.get_ifd(0x8769)[0x9003] = "0000:00:00 00:00:00"
    jpg = io.BytesIO()
    Image.new("RGB", (16, 16)).save(jpg, "JPEG", exif=bad)
    raf = tmp_path / "a.RAF"
    raf.write_bytes(b"FUJIFILMCCD-RAW 0201FF383501" + b"\0" * 72 + jpg.getvalue())
    assert clean_fields(container_fields(raf), raf) == {"make": "FUJIFILM", "model": "X-T5"}


def test_frame_numbers_come_only_from_names_that_are_frame_numbers():
    from station.pipeline.naming import frame_from_name, render

    assert [frame_from_name(n) for n in ("07", "roll12-07", "2026-11-25-portra_36", "r 3")] == [7, 7, 36, 3]
    assert [frame_from_name(n) for n in ("DSC_0042", "IMG_1234", "RAW_NIKON_D1", "canon_eos_6d", "12a")] == [None] * 5
    p = render("{roll}/../{frame:03d} {stock}", {"roll": "../etc", "frame": 7, "stock": "Kodak Gold 200"}, Path("x.dng"))
    assert p == Path("etc/007_Kodak_Gold_200")  # no way out of --out, no spaces
