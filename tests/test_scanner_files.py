"""Film-scanner files (issue 14, item 3): a Nikon Coolscan NEF is a plain RGB TIFF with a
.NEF name, which LibRaw opens and misreads; planar RGB TIFFs; and a positive with no
picture in it is never reported as converted."""
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from negatives import expose, grey_ramp, with_rebate

COOLSCAN = [(271, "s", 0, "Nikon", True), (272, "s", 0, "Nikon SUPER COOLSCAN 5000 ED", True)]


def station(*args):
    return subprocess.run([sys.executable, "-m", "station", *map(str, args)], capture_output=True, text=True, timeout=240)


def negative_scan(bits: int) -> np.ndarray:
    """A colour negative as a film scanner saves it: RGB, the orange mask, a picture."""
    rng = np.random.default_rng(5)
    scene = np.clip(grey_ramp(180, 270) * rng.uniform(0.6, 1.0, 3), 0.01, 1).astype(np.float32)
    neg = with_rebate(expose(scene), border=16)
    scale = 255 if bits == 8 else 65535
    return np.clip(neg * scale + 0.5, 0, scale).astype(np.uint8 if bits == 8 else np.uint16)


def write_coolscan(path, bits, date="2026:01:02 03:04:05"):
    tags = COOLSCAN + ([(306, "s", 0, date, True)] if date else [])
    tifffile.imwrite(path, negative_scan(bits), photometric="rgb", extratags=tags)
    return path


def test_libraw_misreads_the_8bit_coolscan_nef(tmp_path):
    """Why the file must not go to LibRaw: it opens it and returns one flat colour."""
    rawpy = pytest.importorskip("rawpy")
    src = write_coolscan(tmp_path / "scan.NEF", 8)
    with rawpy.imread(str(src)) as raw:
        out = raw.postprocess(gamma=(1, 1), no_auto_bright=True, output_bps=16, user_wb=[1, 1, 1, 1],
                              output_color=rawpy.ColorSpace.raw)
    assert out.std() == 0  # a flat image: LibRaw's white level (255) is never met by its scaling


@pytest.mark.parametrize("bits", [8, 16])
def test_coolscan_nef_is_read_as_the_rgb_scan_it_is(tmp_path, bits):
    from station.pipeline.decode import decode, sniff

    src = write_coolscan(tmp_path / "scan.NEF", bits)
    assert sniff(src) == "tiff"
    dec = decode(src)
    want = negative_scan(bits).astype(np.float32) / (255 if bits == 8 else 65535)
    assert np.allclose(dec.rgb, want, atol=1e-6)
    assert dec.meta["model"] == "Nikon SUPER COOLSCAN 5000 ED" and dec.meta["datetime"] == "2026:01:02 03:04:05"


@pytest.mark.parametrize("bits", [8, 16])
def test_station_invert_makes_a_picture_of_a_coolscan_nef(tmp_path, bits):
    src = write_coolscan(tmp_path / "scan.NEF", bits)
    out = tmp_path / "out"
    r = station("invert", src, "--out", out, "--method", "classic")
    assert r.returncode == 0, r.stderr
    pos = tifffile.imread(out / "scan.tif").astype(np.float32) / 65535
    assert np.percentile(pos, 99) - np.percentile(pos, 1) > 0.3  # a picture, not a flat tone
    # the ramp of the scene comes out as a ramp: left dark, right light (a positive)
    mid = pos[60:120, 30:-30].mean(axis=(0, 2))
    assert np.corrcoef(np.arange(mid.size), mid)[0, 1] > 0.8


def test_flat_input_fails_with_a_reason_not_success(tmp_path):
    """A file with no picture (one flat colour) is a failure with a reason, exit 1."""
    src = tmp_path / "blank.tif"
    tifffile.imwrite(src, np.full((120, 160, 3), (50000, 30000, 20000), np.uint16), photometric="rgb")
    out = tmp_path / "out"
    r = station("invert", src, "--out", out, "--method", "classic")
    assert r.returncode == 1, r.stderr
    assert "blank.tif" in r.stderr and "no picture" in r.stderr
    assert "0 of 1 converted" in r.stderr
    assert not list(out.iterdir())  # nothing written


def test_flat_input_fails_in_the_pipeline_for_every_output(tmp_path):
    from station.errors import DecodeError
    from station.pipeline.convert import ConvertOptions, convert_file
    from station.pipeline.invert import get_inverter

    src = tmp_path / "blank.tif"
    tifffile.imwrite(src, np.full((120, 160, 3), 40000, np.uint16), photometric="rgb")
    for half in (False, True):
        outs = {"preview": tmp_path / f"p{half}.jpg"} if half else {"tiff": tmp_path / "b.tif", "jpeg": tmp_path / "b.jpg"}
        with pytest.raises(DecodeError, match="no picture"):
            convert_file(src, outs, ConvertOptions(inverter=get_inverter("classic"), half_size=half))
        assert not any(p.exists() for p in outs.values())


def test_planar_16bit_rgb_tiff_decodes(tmp_path):
    from station.pipeline.decode import decode

    img = negative_scan(16)
    src = tmp_path / "planar.tif"
    tifffile.imwrite(src, np.moveaxis(img, -1, 0).copy(), photometric="rgb", planarconfig="separate")
    dec = decode(src)
    assert dec.rgb.shape == img.shape
    assert np.allclose(dec.rgb, img / 65535.0, atol=1e-6)


def test_planar_real_scan_converts(shared_dir, tmp_path):
    from station.pipeline.decode import decode

    real = tifffile.imread(shared_dir / "samples" / "negatives" / "plustek-hdr-48bit.tif")
    src = tmp_path / "plustek-planar.tif"
    tifffile.imwrite(src, np.moveaxis(real, -1, 0).copy(), photometric="rgb", planarconfig="separate")
    assert np.array_equal(decode(src).rgb, real.astype(np.float32) / 65535.0)
    r = station("invert", src, "--out", tmp_path / "out", "--method", "classic")
    assert r.returncode == 0, r.stderr


def test_camera_raws_are_not_taken_for_scans(shared_dir):
    from station.pipeline.decode import is_rgb_scan, sniff

    for p in sorted((shared_dir / "samples" / "raw").iterdir()):
        assert not is_rgb_scan(p) and sniff(p) == "raw", p.name


def test_invalid_scanner_date_is_dropped_with_a_warning(tmp_path, caplog):
    from station.pipeline.decode import decode

    src = write_coolscan(tmp_path / "scan.NEF", 8, date="Mon Jan 02 03:04:05 2026")
    with caplog.at_level("WARNING"):
        dec = decode(src)
    assert "datetime" not in dec.meta
    assert "scan.NEF" in caplog.text and "not a valid date" in caplog.text
    out = tmp_path / "out"
    assert station("invert", src, "--out", out, "--method", "classic").returncode == 0
    assert 306 not in tifffile.TiffFile(out / "scan.tif").pages[0].tags


def test_real_raws_keep_camera_and_original_date_in_both_outputs(shared_dir, tmp_path):
    """DateTimeOriginal reaches the TIFF and the JPEG; the Blackmagic DNG (empty Make/Model,
    named only by UniqueCameraModel) keeps its camera's name."""
    from PIL import Image

    raws = shared_dir / "samples" / "raw"
    out = tmp_path / "out"
    r = station("invert", raws / "canon_eos_6d.dng", raws / "Blackmagic.dng", "--out", out, "--method", "classic")
    assert r.returncode == 0, r.stderr
    tags = tifffile.TiffFile(out / "canon_eos_6d.tif").pages[0].tags
    assert tags["ExifTag"].value["DateTimeOriginal"] == "2019:06:06 07:29:51"  # in the EXIF IFD, where it belongs
    with Image.open(out / "canon_eos_6d.jpg") as im:
        assert im.getexif().get_ifd(0x8769)[0x9003] == "2019:06:06 07:29:51"
    tags = tifffile.TiffFile(out / "Blackmagic.tif").pages[0].tags
    assert tags[272].value == "Blackmagic Pocket Cinema Camera 4K" and tags[271].value == "Blackmagic"
    with Image.open(out / "Blackmagic.jpg") as im:
        assert im.getexif()[272] == "Blackmagic Pocket Cinema Camera 4K"


def test_the_daemon_converts_a_coolscan_nef_and_fails_a_flat_frame_without_blaming_clipping(daemon_factory, tmp_path):
    """The real daemon: the film-scanner NEF gives a picture; a frame with no picture is
    FAILED with the reason (not 'converted', not a 'clipping, lower the exposure' finding)."""
    import os

    d = daemon_factory(config={"watcher": {"rescan_interval": 0}, "inversion": {"method": "classic"}})
    d.start()
    write_coolscan(tmp_path / "scan.NEF", 8)
    tifffile.imwrite(tmp_path / "blank.tif", np.full((300, 400, 3), 65535, np.uint16), photometric="rgb")
    for name in ("scan.NEF", "blank.tif"):
        os.rename(tmp_path / name, d.incoming / name)
    d.wait_for(lambda: d.done(["scan.NEF"]) and d.done(["blank.tif"], ("failed",)), 120, "both frames handled")
    fr = d.frames()
    assert "no picture in the positive" in fr["blank.tif"]["reason"]
    pos = tifffile.imread(d.output / "scan.tif").astype(np.float32) / 65535
    assert np.percentile(pos, 99) - np.percentile(pos, 1) > 0.3
    assert not list(d.output.glob("blank*"))  # no preview, no positives of the flat frame
    assert "clipping" not in d.log_text() and "lower the exposure" not in d.log_text()
    assert d.stop() == 0


def test_the_daemon_warns_about_a_positive_photo_once(daemon_factory, tmp_path):
    """A camera photo of a scene (no orange film base) is inverted, as `station invert`
    does, but the daemon's log says so once for the frame — not silently."""
    import os

    from negatives import grey_ramp, write_negative_dng

    d = daemon_factory(config={"watcher": {"rescan_interval": 0}, "inversion": {"method": "classic"}})
    d.start()
    scene = np.clip(grey_ramp(300, 400) * np.array([0.7, 0.75, 0.8]), 0.02, 1).astype(np.float32)  # a bluish grey photo
    write_negative_dng(tmp_path / "photo.dng", scene, seed=1)
    scan = np.clip(grey_ramp(300, 400), 0.05, 1).astype(np.float32) * np.array([0.6, 0.35, 0.15], np.float32)  # orange: a negative
    write_negative_dng(tmp_path / "neg.dng", scan, seed=2)
    for name in ("photo.dng", "neg.dng"):
        os.rename(tmp_path / name, d.incoming / name)
    d.wait_for(lambda: d.done(["photo.dng", "neg.dng"]), 120, "both frames converted")
    warned = [ln for ln in d.log_text().splitlines() if "looks like a positive" in ln]
    assert len(warned) == 1 and "photo.dng" in warned[0], warned
    assert d.stop() == 0
