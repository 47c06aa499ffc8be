"""How files arrive (issue 14, item 4), on real watchdog and the real daemon:
- a file moved in from another folder (one inotify MOVED_TO, no close) is complete at once."""
import os
import queue
import time

from conftest import negative_bytes

from station.ingest.watcher import Watcher


def test_watcher_reports_a_file_moved_in_from_outside_as_moved(tmp_path):
    inc, other = tmp_path / "incoming", tmp_path / "elsewhere"
    inc.mkdir()
    other.mkdir()
    inbox = queue.Queue()
    w = Watcher(inc, inbox)
    w.start()
    try:
        (other / "a.dng").write_bytes(negative_bytes(tmp_path, 0))
        os.rename(other / "a.dng", inc / "a.dng")
        events = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(p.endswith("a.dng") for _, p, _ in events):
            try:
                events.append(inbox.get(timeout=0.2))
            except queue.Empty:
                pass
    finally:
        w.stop()
    kinds = [k for k, p, _ in events if p == str(inc / "a.dng")]
    assert kinds and kinds[0] == "moved", events


def test_daemon_takes_a_moved_in_file_without_waiting_for_stability(daemon_factory, tmp_path):
    # a stability window far longer than the test waits: only "moved in = complete" can take the file
    d = daemon_factory(config={"watcher": {"stable_seconds": 600.0, "rescan_interval": 0}})
    d.start()
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "m.dng").write_bytes(negative_bytes(tmp_path, 1))
    os.rename(other / "m.dng", d.incoming / "m.dng")  # `mv` from another folder on the same disk
    d.wait_for(lambda: d.done(["m.dng"], states=("preview_written", "master_written")), 60, "the moved-in frame")
    assert d.stop() == 0
