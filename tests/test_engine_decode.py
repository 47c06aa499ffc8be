"""Decoding real RAW files of several makes, TIFF scans and generated DNGs."""
import numpy as np
import pytest
import tifffile

from negatives import expose, grey_ramp, write_negative_dng
from station.errors import DecodeError
from station.io.dng import mosaic, write_bayer_dng
from station.pipeline.decode import decode, sniff

RAWS = ["RAW_NIKON_D1.NEF", "RAW_KODAK_DC50.KDC", "Blackmagic.dng", "canon_eos_6d.dng"]


@pytest.mark.parametrize("name", RAWS)
def test_real_raw_samples_decode_linear(shared_dir, name):
    dec = decode(shared_dir / "samples" / "raw" / name)
    h, w, c = dec.rgb.shape
    assert c == 3 and h >= 400 and w >= 700
    assert dec.rgb.dtype == np.float32
    assert 0.0 <= dec.rgb.min() and dec.rgb.max() <= 1.0
    assert dec.rgb.mean() > 0.005  # not black
    half = decode(shared_dir / "samples" / "raw" / name, half_size=True)
    assert half.rgb.shape[0] <= h and half.rgb.shape[1] <= w


def test_raw_metadata_is_read(shared_dir):
    nef = decode(shared_dir / "samples" / "raw" / "RAW_NIKON_D1.NEF")
    assert nef.meta["make"] == "NIKON CORPORATION"
    assert nef.meta["model"] == "NIKON D1"
    assert nef.meta["datetime"].startswith("2000:11:19")
    canon = decode(shared_dir / "samples" / "raw" / "canon_eos_6d.dng")
    assert "EF24-105" in canon.meta["lens"]


def test_16bit_negative_scan_decodes(shared_dir):
    dec = decode(shared_dir / "samples" / "negatives" / "plustek-hdr-48bit.tif")
    assert dec.rgb.shape == (462, 502, 3)
    r, g, b = dec.rgb.reshape(-1, 3).mean(axis=0)
    assert r > g > b  # the orange mask


def test_generated_dng_round_trips_through_libraw(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.uniform(0.05, 0.9, (64, 96, 3)).astype(np.float32)
    rgb = np.repeat(np.repeat(rgb, 4, 0), 4, 1)  # flat 4x4 patches survive demosaicking
    write_bayer_dng(tmp_path / "x.dng", (mosaic(rgb) * 65535).astype(np.uint16))
    dec = decode(tmp_path / "x.dng")
    assert dec.rgb.shape == rgb.shape
    np.testing.assert_allclose(dec.rgb[2::4, 2::4], rgb[2::4, 2::4], atol=0.01)


def test_decode_is_scene_independent(tmp_path):
    """No auto-brightness: a scan one stop darker decodes to half the values."""
    scene = grey_ramp(64, 96)
    a = write_negative_dng(tmp_path / "a.dng", expose(scene), noise=False)
    b = write_negative_dng(tmp_path / "b.dng", expose(scene, scan_ev=-1), noise=False)
    ra, rb = decode(a).rgb, decode(b).rgb
    ratio = np.median(rb[4:-4, 4:-4] / np.maximum(ra[4:-4, 4:-4], 1e-6), axis=(0, 1))
    np.testing.assert_allclose(ratio, 0.5, atol=0.01)


def test_16bit_tiff_scan(tmp_path):
    arr = (np.linspace(0.1, 0.8, 3 * 50 * 60).reshape(50, 60, 3) * 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "scan.tif", arr, photometric="rgb")
    dec = decode(tmp_path / "scan.tif")
    np.testing.assert_allclose(dec.rgb, arr / 65535.0, atol=1e-6)


@pytest.mark.parametrize(
    "content,name,reason",
    [
        (b"", "empty.NEF", "empty"),
        (b"hello, I am text\n" * 10, "notes.dng", "holds text"),
        (b"\x00\x01garbage" * 100, "junk.CR2", "LibRaw"),
    ],
)
def test_bad_files_raise_with_reason(tmp_path, content, name, reason):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(DecodeError) as err:
        decode(p)
    assert err.value.path == p
    assert reason in err.value.reason


def test_truncated_dng_is_reported(tmp_path):
    good = write_negative_dng(tmp_path / "good.dng", expose(grey_ramp(64, 96)))
    data = good.read_bytes()
    bad = tmp_path / "cut.dng"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(DecodeError) as err:
        decode(bad)
    assert err.value.path == bad


def test_missing_file(tmp_path):
    with pytest.raises(DecodeError, match="no such file"):
        decode(tmp_path / "nope.dng")


def test_sniff_uses_content_not_name(tmp_path):
    p = tmp_path / "photo.dng"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    assert sniff(p) == "png"


def test_non_ascii_camera_names_do_not_fail_the_master(tmp_path):
    """A RAW whose Make/Model carry non-ASCII bytes (a fuzzed file, an odd camera) still
    gets its 16-bit master; the TIFF's ASCII tags carry a sanitised name."""
    import tifffile as tf

    from station.pipeline.convert import ConvertOptions, convert_file
    from station.pipeline.invert import get_inverter

    rgb = np.repeat(np.linspace(0.1, 0.5, 96, dtype=np.float32)[None, :, None], 64, 0).repeat(3, 2)  # a picture
    src = write_bayer_dng(tmp_path / "odd.dng", (mosaic(rgb) * 65535).astype(np.uint16), make="CamXra", model="Z-1Q")
    data = src.read_bytes()  # the writer only takes ASCII: put latin-1 / high bytes in by hand
    src.write_bytes(data.replace(b"CamXra", b"Cam\xe9ra").replace(b"Z-1Q", b"\xa9-1\x7f"))
    res = convert_file(src, {"tiff": tmp_path / "odd.tif"}, ConvertOptions(inverter=get_inverter("classic")))
    page = tf.TiffFile(res.outputs["tiff"]).pages[0]
    assert page.tags[271].value == "Cam?ra" and page.tags[272].value.startswith("?-1")


def _ciff(make_model: bytes, stamp: int) -> bytes:
    """A minimal Canon CRW (CIFF) of the documented layout: header, a root heap holding an
    ImageProps sub-heap (0x300a) with the MakeModel (0x080a) and TimeStamp (0x180e) records."""
    import struct

    def heap(values: list[tuple[int, bytes]]) -> bytes:
        body, recs = b"", []
        for tag, v in values:
            recs.append(struct.pack("<HII", tag, len(v), len(body)))
            body += v
        table = struct.pack("<H", len(recs)) + b"".join(recs)
        return body + table + struct.pack("<I", len(body))

    sub = heap([(0x080A, make_model), (0x180E, struct.pack("<III", stamp, 0, 0))])
    root = heap([(0x300A, sub)])
    return b"II" + struct.pack("<I", 26) + b"HEAPCCDR" + struct.pack("<I", 0x00010002) + b"\0" * 8 + root


def test_crw_make_model_and_date_are_read(tmp_path):
    from station.pipeline.decode import _raw_meta, ciff_meta

    p = tmp_path / "IMG_0001.CRW"
    p.write_bytes(_ciff(b"Canon\0Canon EOS D30\0\0", 1009843200))  # 2002-01-01 00:00:00
    want = {"make": "Canon", "model": "Canon EOS D30", "datetime": "2002:01:01 00:00:00",
            "datetime_original": "2002:01:01 00:00:00"}
    assert ciff_meta(p) == want
    assert {k: v for k, v in _raw_meta(None, p).items() if k != "source"} == want
    (tmp_path / "junk.CRW").write_bytes(b"II\x1a\0\0\0HEAPCCDR" + b"\xff" * 40)  # a broken heap: no names, no crash
    assert ciff_meta(tmp_path / "junk.CRW") == {}


def test_real_crw_keeps_its_camera(shared_dir):
    crws = sorted((shared_dir / "samples" / "raw").glob("*.[cC][rR][wW]"))
    if not crws:
        pytest.skip("no CRW among the shared samples")
    dec = decode(crws[0])
    assert dec.meta.get("make") and dec.meta.get("model") and dec.meta.get("datetime")
