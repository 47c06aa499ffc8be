"""Rolls: folders, frame counter, naming pattern, manifest, overwrite protection."""
import json

import pytest

from station.capture.camera import CapturedFile, FileInfo
from station.capture.names import FileKind
from station.capture.roll import RollError, RollStore


def shoot(roll, store, shot, kind="raw", ext=".dng", data=b"raw"):
    """What CameraService does for one file: namer -> write (no clobber) -> on_captured."""
    from station.capture.names import write_atomic_no_clobber

    rel = roll.namer(FileInfo("/store/DCIM", "DSC_0001.NEF", FileKind(kind, ext), shot, "trigger"))
    path = write_atomic_no_clobber(data, store.incoming / rel)
    roll.record(CapturedFile(path, "/store/DCIM/DSC_0001.NEF", kind, len(data), shot, "trigger", 0.0, "Emu Cam"))
    return path


def test_new_roll_folders_manifest_and_counter(tmp_path):
    store = RollStore(tmp_path / "state", tmp_path / "incoming")
    roll = store.new(name="portra-1", stock="Kodak Portra 400", frames=36)
    assert store.current().name == "portra-1"
    m = json.loads(roll.manifest_path.read_text())
    assert m["stock"] == "Kodak Portra 400" and m["frames_expected"] == 36 and m["frames"] == []
    assert m["created"] and m["pattern"] == "{roll}/{frame:02d}"
    p1 = shoot(roll, store, shot=1)
    p2 = shoot(roll, store, shot=2)
    assert p1 == tmp_path / "incoming" / "portra-1" / "01.dng"
    assert p2.name == "02.dng"
    # RAW+JPEG of one shot share the frame number
    p3 = shoot(roll, store, shot=3)
    p3j = shoot(roll, store, shot=3, kind="jpeg", ext=".jpg")
    assert (p3.name, p3j.name) == ("03.dng", "03.jpg")
    m = json.loads(roll.manifest_path.read_text())
    assert [f["frame"] for f in m["frames"]] == [1, 2, 3]
    assert m["frames"][2]["files"] == ["portra-1/03.dng", "portra-1/03.jpg"]
    assert m["camera"] == "Emu Cam"
    # the counter survives a restart (manifest re-read)
    again = RollStore(tmp_path / "state", tmp_path / "incoming").current()
    assert again.next_frame() == 4


def test_name_clash_never_replaces(tmp_path):
    store = RollStore(tmp_path / "state", tmp_path / "incoming")
    store.new(name="r1")
    with pytest.raises(RollError, match="exists"):
        store.new(name="r1")
    roll = store.get("r1")
    # a stray file where frame 01 would go: the counter skips it, nothing replaced
    (tmp_path / "incoming" / "r1" / "01.dng").write_bytes(b"precious")
    p = shoot(roll, store, shot=1)
    assert p.name == "02.dng"
    assert (tmp_path / "incoming" / "r1" / "01.dng").read_bytes() == b"precious"
    # and a clash at write time gets a new name instead of replacing
    (tmp_path / "incoming" / "r1" / "03.dng").write_bytes(b"also precious")
    roll.data["next_frame"] = 3
    roll._frame_taken = lambda n: False  # pretend the counter missed it
    p = shoot(roll, store, shot=2)
    assert p.name == "03-1.dng" and (tmp_path / "incoming" / "r1" / "03.dng").read_bytes() == b"also precious"


def test_default_name_and_hostile_names(tmp_path):
    store = RollStore(tmp_path / "state", tmp_path / "incoming")
    a = store.new()
    b = store.new()
    assert a.name != b.name and a.name.startswith("roll-")
    for hostile in ("../../etc", "a/b", ".hidden", "..", "x\\y"):  # refused, not quietly renamed (issue 14)
        with pytest.raises(RollError, match="bad roll name"):
            store.new(name=hostile)
    assert sorted(p.name for p in (tmp_path / "state" / "rolls").iterdir() if p.is_dir()) == sorted([a.name, b.name])
    with pytest.raises(RollError):
        store.get("nope")


def test_calibrate_stores_base_and_colour(tmp_path):
    from station.capture.samples import FILM_BASE, negative_dng_bytes  # noqa: F401
    import numpy as np
    from station.io.dng import mosaic, write_bayer_dng

    store = RollStore(tmp_path / "state", tmp_path / "incoming")
    roll = store.new(name="cal")
    blank = np.ones((64, 96, 3), np.float32) * (FILM_BASE * 0.8)
    write_bayer_dng(tmp_path / "blank.dng", mosaic(np.round(blank * 65535).astype(np.uint16)))
    path = roll.set_base((tmp_path / "blank.dng").read_bytes(), ".dng")
    assert path.parent == roll.folder
    rgb = store.get("cal").data["base"]["rgb"]
    assert rgb is not None
    # orange mask: red transmits most, blue least
    assert rgb[0] > rgb[1] > rgb[2]
    assert store.get("cal").base_estimate() is not None
