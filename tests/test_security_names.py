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


def _shoot(tmp_path, names):
    from station.capture.camera import CameraService, CaptureOptions

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
                got += svc.capture().result(20)
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
    assert len(got) == len(names)
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


@pytest.mark.xfail(strict=True, reason=(
    "FINDING (soak, issue 6): for camera names containing '/' (or '..') libgphoto2's folder+name lookup "
    "returns another object's bytes; the CameraService's size check passes (same size) and the file is saved "
    "under the safe name with the wrong content: that frame is lost and another duplicated"))
def test_slashed_camera_names_arrive_byte_for_byte(tmp_path):
    work, incoming, got, made, _ = _shoot(tmp_path, SLASHED)
    files = sorted(p for p in incoming.iterdir() if p.is_file())
    assert sorted(p.read_bytes() for p in files) == sorted(f.data for f in made)
