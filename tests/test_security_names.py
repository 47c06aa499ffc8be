"""Camera-supplied file names are never trusted as paths: the PTP/IP emulator reports objects
named `../../etc/x.dng`, `/abs.dng`, names with control characters, a bare `..`; real
libgphoto2 downloads them through the CameraService and every file lands inside incoming/,
as a plain visible file, byte for byte."""
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from ptpip_emulator import EmulatedCamera  # noqa: E402

pytest.importorskip("gphoto2")

# names libgphoto2 can address: each file must arrive byte for byte
ADDRESSABLE = [
    "..\\..\\win\\y.dng",
    "ctl\x1b[2J\x07\x08name.dng",
    "new\nline\r.dng",
    ".hidden.dng",
    "z" * 200 + ".dng",
    "..dng",
]
# names with '/' (or '..'): libgphoto2 addresses files by folder + name, and cannot find these
SLASHED = [
    "../../etc/x.dng",
    "/abs.dng",
    "..",
    "/",
    "../../" + "z" * 200 + ".dng",
]
HOSTILE = ADDRESSABLE + SLASHED
UNADDRESSABLE = [n for n in SLASHED if "/" in n or n in (".", "..")]  # refused, left on the camera


def _shoot(tmp_path, names):
    from station.capture.camera import CameraError, CameraService, CaptureOptions

    work = tmp_path / "work"  # incoming/ is inside; the names try to escape into work/ and /
    incoming = work / "incoming"
    incoming.mkdir(parents=True)
    before_root = set(os.listdir("/"))
    cam = EmulatedCamera().start()
    try:
        cam.next_names(names)
        svc = CameraService(incoming, cam.address, options=CaptureOptions(capture_timeout=5, busy_delay=0.05),
                            hang_timeout=3, backoff=(0.1, 0.5))
        svc.start()
        try:
            assert svc.wait_ready(10), svc.snapshot()
            got = []
            for _ in names:
                try:
                    got += svc.capture().result(20)
                except CameraError as exc:  # an unaddressable name: refused with its reason
                    assert "cannot be addressed safely" in str(exc)
        finally:
            svc.stop()
        made = cam.captured
        assert [f.name for f in made] == names  # the camera really reported those names
    finally:
        cam.stop()
    return work, incoming, got, made, before_root


@pytest.mark.parametrize("names", [HOSTILE, ADDRESSABLE], ids=["all-hostile", "addressable"])
def test_hostile_camera_names_land_inside_incoming(tmp_path, names):
    """No name escapes incoming/ or makes a hidden / unprintable file; nothing is written anywhere else."""
    work, incoming, got, made, before_root = _shoot(tmp_path, names)
    assert len(got) == len([n for n in names if n not in UNADDRESSABLE])
    inc = incoming.resolve()
    for f in got:
        p = Path(f.path).resolve()
        assert p.parent == inc, f"{f.path} is not directly inside incoming/"
        name = p.name
        assert not name.startswith(".") and ".." not in name and "/" not in name and "\\" not in name, name
        assert all(ch.isprintable() for ch in name), repr(name)
    files = sorted(p for p in work.rglob("*") if p.is_file())
    assert all(p.parent == incoming for p in files), files
    assert set(os.listdir("/")) == before_root
    assert not (work / "etc").exists() and not Path("/abs.dng").exists()
    if names is ADDRESSABLE:  # every frame exactly once, byte for byte
        assert sorted(p.read_bytes() for p in files) == sorted(f.data for f in made)


def test_slashed_camera_names_are_refused_never_saved_with_wrong_bytes(tmp_path):
    """Finding 4 (fixed): libgphoto2 addresses a file by folder + name, so a name with '/' (or
    '..') can resolve to ANOTHER object of the same size.  Such files are refused with their
    reason and left on the camera; every file that is saved is byte-identical to a frame made."""
    from station.capture.camera import CameraError, CameraService, CaptureOptions

    incoming = tmp_path / "incoming"
    incoming.mkdir()
    names = ["ok-1.dng"] + SLASHED + ["ok-2.dng"]
    cam = EmulatedCamera().start()
    refused = []
    try:
        cam.next_names(names)
        svc = CameraService(incoming, cam.address, options=CaptureOptions(capture_timeout=5, busy_delay=0.05),
                            hang_timeout=3, backoff=(0.1, 0.5))
        svc.start()
        try:
            assert svc.wait_ready(10), svc.snapshot()
            for _ in names:
                try:
                    svc.capture().result(20)
                except CameraError as exc:
                    refused.append(str(exc))
        finally:
            svc.stop()
        made = cam.captured
    finally:
        cam.stop()
    by_name = {f.name: f.data for f in made}
    files = sorted(p for p in incoming.iterdir() if p.is_file())
    assert sorted(p.read_bytes() for p in files) == sorted([by_name["ok-1.dng"], by_name["ok-2.dng"]])
    assert len(refused) == len(UNADDRESSABLE), refused
    assert all("cannot be addressed safely" in r for r in refused)
