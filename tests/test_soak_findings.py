"""Findings of the soak (docs/RELIABILITY.md), each reduced to a deterministic test.  A fixed
finding's test asserts the fixed behaviour; an open one pins today's behaviour and says so."""
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from ptpip_emulator import EmulatedCamera, camera_service  # noqa: E402


def test_rescan_waits_for_a_growing_file_whatever_the_clock_skew():
    """Finding 3 (fixed): a rescanned file was taken at once when its mtime looked old enough."""
    from station.ingest.tracker import StabilityTracker

    tr = StabilityTracker(stable_seconds=1.0)
    mtime = 1_000_000.0  # the file's last write, by the file system's clock
    skew = 3600.0  # the daemon's clock, one hour ahead
    sizes = iter([100, 200, 300, 400])
    cur = {"size": 100}

    def stat(_path):
        return cur["size"], mtime + cur["size"] / 1000

    assert tr.found("a.dng", mtime + skew, 100, mtime + 0.1)
    taken = []
    for i, size in enumerate(sizes):  # the writer goes on, a chunk every 0.3 s
        cur["size"] = size
        taken += tr.poll(mtime + skew + 0.3 * (i + 1), stat)
    assert taken == [], "a file still growing was taken as complete"


def test_camera_frame_made_while_the_station_was_down_is_downloaded_at_the_next_start(tmp_path):
    """Finding 2 (FIXED by the card record, station/capture/cardrecord.py).  A frame the camera made
    (here with its own shutter button) while no station was connected -- the daemon was down, or
    killed between the shot and the download -- used to be recorded as 'already on the card' at the
    next start and never downloaded; in the soak it lost DSC_0141 and DSC_0156 (seed 1
    --settle-camera).  The restarted service (same state folder) knows what it took before and
    downloads the rest, exactly once."""
    pytest.importorskip("gphoto2")
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    cam = EmulatedCamera().start()
    try:
        s = camera_service(incoming, cam, tmp_path / "state" / "camera-files.jsonl")
        s.capture().result(20)
        s.stop()  # the station is down...
        cam.press_shutter()  # ...when a frame is made
        s = camera_service(incoming, cam, tmp_path / "state" / "camera-files.jsonl")
        deadline = time.monotonic() + 10
        while len([p for p in incoming.iterdir() if p.is_file()]) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # and nothing more arrives
        s.stop()
        made = sorted(f.data for f in cam.captured)
    finally:
        cam.stop()
    got = sorted(p.read_bytes() for p in incoming.iterdir() if p.is_file())
    assert len(made) == 2
    assert got == made, sorted(p.name for p in incoming.iterdir())


def test_a_wall_clock_step_does_not_take_a_file_still_being_written(daemon_factory, dng_bytes, tmp_path):
    """Finding 6 (fixed; soak seed 5, roll00/w00036.dng "file changed after it was processed"):
    the stability windows ran on the wall clock, so a forward step (NTP, a wrong RTC corrected)
    while a slow writer paused made its half-written file look still for long enough, and it was
    taken mid-write.  The tracker now runs on the monotonic clock."""
    clock = tmp_path / "clock"
    clock.write_text("0")
    d = daemon_factory(env_extra={"STATION_FAULT_CLOCK_FILE": str(clock)},
                       config={"watcher": {"rescan_interval": 0, "stable_seconds": 1.0}})
    d.start()
    data = dng_bytes(0)
    p = d.incoming / "slow.dng"
    with open(p, "wb") as fh:
        fh.write(data[: len(data) // 2])
        fh.flush()
        time.sleep(0.5)
        clock.write_text(str(86400))  # the daemon's wall clock jumps a day ahead mid-write
        time.sleep(2.0)  # the writer pauses (longer than the daemon's 0.2 s clock re-read)
        fh.write(data[len(data) // 2:])
    d.wait_for(lambda: d.done(["slow.dng"], ("master_written", "failed")), 60, "slow.dng finished")
    row = d.frames()["slow.dng"]
    assert row["state"] == "master_written", row
    assert row["size"] == len(data), "the journal recorded a partial file"
    assert p.read_bytes() == data
    assert d.stop() == 0
