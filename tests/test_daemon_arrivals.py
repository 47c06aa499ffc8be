"""How files arrive (issue 14, items 4 and 5), on real watchdog and the real daemon:
- a file moved in from another folder (one inotify MOVED_TO, no close) is complete at once;
- a writer that reopens the file and appends is still writing: no failure before the good
  conversion."""
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


def test_writer_that_reopens_and_appends_is_not_failed(daemon_factory, tmp_path):
    errors = tmp_path / "errors.log"
    d = daemon_factory(config={"hooks": {"error": f"echo \"$STATION_FRAME $STATION_REASON\" >> {errors}"}})
    d.start()
    data = negative_bytes(tmp_path, 3)
    step = len(data) // 10 + 1
    for i in range(0, len(data), step):  # 10 appends over ~3 s, each its own open/write/close
        with open(d.incoming / "w.dng", "ab") as fh:
            fh.write(data[i:i + step])
        time.sleep(0.3)
    d.wait_for(lambda: d.done(["w.dng"]), 90, "the appended frame")
    time.sleep(1)
    log = d.log_text()
    assert "FAILED" not in log, log
    assert not errors.exists(), errors.read_text()
    assert log.count("preview w.dng ->") == 1 and log.count("master w.dng ->") == 1, log
    fr = d.frames()["w.dng"]
    assert fr["size"] == len(data) and fr["state"] == "master_written"
    assert d.stop() == 0
