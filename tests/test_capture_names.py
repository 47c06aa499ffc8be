"""Camera-supplied names, content sniffing, no-clobber placement."""
import os

import pytest

from station.capture.names import link_no_clobber, safe_name, safe_relpath, sniff, write_atomic_no_clobber


@pytest.mark.parametrize("raw,expected", [
    ("DSC_0001.NEF", "DSC_0001.NEF"),
    ("../../etc/passwd", "passwd"),
    ("/abs/path/IMG_1.CR3", "IMG_1.CR3"),
    ("..\\..\\win.ini", "win.ini"),
    ("..", "frame"),
    ("", "frame"),
    (".hidden.jpg", "hidden.jpg"),
    ("evil\x00name\n.jpg", "evilname.jpg"),
    ("a\x1b[31mred.dng", "a_31mred.dng"),
    ("spaces and ünïcode.jpg", "spaces_and_unicode.jpg"),
    ("x" * 500 + ".dng", "x" * 100 + ".dng"),
])
def test_safe_name(raw, expected):
    got = safe_name(raw)
    assert got == expected
    assert "/" not in got and "\\" not in got and ".." not in got and not got.startswith(".")


def test_safe_relpath_drops_traversal():
    assert str(safe_relpath("roll-1/../../x/01.dng")) == "roll-1/x/01.dng"
    assert not safe_relpath("/abs/01.dng").is_absolute()
    with pytest.raises(ValueError):
        safe_relpath("../..")


def test_sniff_decides_from_content_not_name(tmp_path):
    from station.capture.samples import negative_dng_bytes

    dng = negative_dng_bytes(16, 24, seed=1)
    assert sniff(dng, "IMG_0001.JPG").kind == "raw"  # a RAW under a .jpg name is a RAW
    assert sniff(dng, "IMG_0001.JPG").ext == ".dng"
    assert sniff(b"\xff\xd8\xff\xe0rest", "DSC_0001.NEF").kind == "jpeg"
    assert sniff(b"\x00\x00\x00\x18ftypcrx \x00", "x.jpg").ext == ".cr3"
    assert sniff(b"hello", "x.dng").kind == "unknown"
    import numpy as np
    import tifffile

    tifffile.imwrite(tmp_path / "plain.tif", np.zeros((4, 4), np.uint16))
    assert sniff((tmp_path / "plain.tif").read_bytes(), "x.dng").kind == "raw"  # camera says RAW ext: trusted among TIFFs
    assert sniff((tmp_path / "plain.tif").read_bytes(), "x.tif").kind == "tiff"


def test_no_clobber_never_replaces(tmp_path):
    final = tmp_path / "01.dng"
    final.write_bytes(b"original")
    p1 = write_atomic_no_clobber(b"second", final)
    p2 = write_atomic_no_clobber(b"third", final)
    assert final.read_bytes() == b"original"
    assert p1.name == "01-1.dng" and p1.read_bytes() == b"second"
    assert p2.name == "01-2.dng" and p2.read_bytes() == b"third"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temporaries left


def test_link_no_clobber_moves_temp(tmp_path):
    tmp = tmp_path / ".x.part"
    tmp.write_bytes(b"data")
    out = link_no_clobber(tmp, tmp_path / "x.dng")
    assert out.read_bytes() == b"data" and not tmp.exists()
