"""Finding 1 (FIXED by the card record, station/capture/cardrecord.py). Found by the soak (tools/soak.py --frames 500 --seed 1, docs/RELIABILITY.md): a link drop while
the camera service lists the card on its FIRST connect (a daemon restart with a flaky cable)
makes libgphoto2 return a partial listing without an error; the service records that partial
list as "already on the card", and the next reconnect "recovers" the rest: every one of those
frames is downloaded a second time (`DSC_0004-1.dng` beside `DSC_0004.dng`).

Deterministic here: the emulator drops the link at the 4th GetObjectInfo of the listing.  The
restarted service uses the same state folder (the daemon's <state>/camera-files.jsonl), so it
knows which files it already took, whatever the listing returns."""
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from ptpip_emulator import EmulatedCamera, camera_service  # noqa: E402

pytest.importorskip("gphoto2")


def test_link_drop_during_first_listing_downloads_nothing_twice(tmp_path):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    cam = EmulatedCamera().start()
    try:
        s = camera_service(incoming, cam, tmp_path / "state" / "camera-files.jsonl")  # the first daemon: five frames
        for _ in range(5):
            s.capture().result(20)
        s.stop()
        cam.fail_next("drop", "GetObjectInfo", 1, after=4)  # the restarted daemon's first listing
        s = camera_service(incoming, cam, tmp_path / "state" / "camera-files.jsonl")
        time.sleep(2.0)  # reconnects after the drop
        s.capture().result(20)
        s.stop()
        made = sorted(f.data for f in cam.captured)
    finally:
        cam.stop()
    got = sorted(p.read_bytes() for p in incoming.iterdir() if p.is_file())
    assert len(made) == 6
    assert got == made, sorted(p.name for p in incoming.iterdir())
