"""The real daemon (`python -m station run`) on temporary folders: every way a
file can arrive is taken exactly once; backlog; status --json; READY=1 over a
real notify socket; SIGTERM stops it cleanly."""
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

SUFFIXES = (".preview.jpg", ".tif", ".jpg")


def _outputs_exactly_once(d, stems):
    for suffix in SUFFIXES:
        found = [p for p in d.output.rglob("*" + suffix) if not p.name.startswith(".")]
        if suffix == ".jpg":
            found = [p for p in found if not p.name.endswith(".preview.jpg")]
        names = sorted(p.name[: -len(suffix)] for p in found)
        assert names == sorted(stems), (suffix, names)
    leftovers = [p for p in d.output.rglob(".*")]
    assert not leftovers, leftovers


class NotifyListener:
    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                continue
            except OSError:
                return

    def close(self):
        self._stop = True
        self.thread.join(2)
        self.sock.close()


def test_every_way_in_is_processed_once(daemon_factory, dng_bytes, tmp_path):
    notify = NotifyListener(tmp_path / "notify.sock")
    d = daemon_factory(env_extra={"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "2000000"},
                       config={"watcher": {"stable_seconds": 1.0, "rescan_interval": 3}})
    # backlog: present before the daemon starts, one of them in a roll folder
    (d.incoming / "backlog1.dng").write_bytes(dng_bytes(0))
    (d.incoming / "roll-01").mkdir()
    (d.incoming / "roll-01" / "backlog2.dng").write_bytes(dng_bytes(1))
    # things that must be ignored
    (d.incoming / ".hidden.dng").write_bytes(dng_bytes(2))
    (d.incoming / "notes.txt").write_text("not a frame")
    (d.incoming / "partial.dng.part").write_bytes(dng_bytes(2)[:1000])
    d.start()
    try:
        d.wait_for(lambda: d.done(["backlog1.dng", "roll-01/backlog2.dng"]), 60, "backlog processed")
        assert any(m.startswith("READY=1") for m in notify.messages), notify.messages

        # 1. written in place (open, write, close under the final name)
        with open(d.incoming / "inplace.dng", "wb") as fh:
            fh.write(dng_bytes(0))
        # 2. renamed in (how gphoto2 and most tools publish a file)
        tmp = d.incoming / ".renamed.dng.tmp"
        tmp.write_bytes(dng_bytes(1))
        os.rename(tmp, d.incoming / "renamed.dng")
        # 3. copied slowly, in chunks with pauses
        data = dng_bytes(2)
        with open(d.incoming / "slow.dng", "wb") as fh:
            step = len(data) // 12 + 1
            for i in range(0, len(data), step):
                fh.write(data[i:i + step])
                fh.flush()
                time.sleep(0.15)
        # 4. moved in from another folder on the same disk
        other = tmp_path / "elsewhere.dng"
        other.write_bytes(dng_bytes(3))
        os.rename(other, d.incoming / "moved.dng")

        names = ["backlog1.dng", "roll-01/backlog2.dng", "inplace.dng", "renamed.dng", "slow.dng", "moved.dng"]
        d.wait_for(lambda: d.done(names), 90, "all frames processed")
        # give the periodic rescan (3 s) a chance to double-queue, if it were going to
        time.sleep(4)
        frames = d.frames()
        assert sorted(frames) == sorted(names)
        for n in names:
            assert frames[n]["attempts"] == 1, frames[n]  # one preview pass, not two
            assert frames[n]["sha256"] and len(frames[n]["sha256"]) == 64
            assert frames[n]["lat_preview"] is not None and frames[n]["lat_master"] >= frames[n]["lat_preview"]
        assert frames["slow.dng"]["size"] == len(data)
        _outputs_exactly_once(d, ["backlog1", "backlog2", "inplace", "renamed", "slow", "moved"])
        assert (d.output / "roll-01" / "backlog2.preview.jpg").exists()
        log = d.log_text()
        for stem in ("inplace", "renamed", "slow", "moved"):
            assert log.count(f"preview {stem}.dng ->") == 1, log
        # originals untouched
        assert (d.incoming / "slow.dng").read_bytes() == data

        # status --json against the running daemon
        st = d.status()
        assert st["counts"]["master_written"] == 6 and st["counts"]["failed"] == 0
        assert st["queue"]["length"] == 0
        assert st["latency"]["preview"]["n"] == 6 and st["latency"]["preview"]["p50"] is not None
        assert st["latency"]["master"]["p90"] is not None
        assert st["camera"]["state"] == "none"
        assert st["last_positive"].endswith(".preview.jpg")
        assert len(st["workers"]) == 2 and all(w["alive"] for w in st["workers"])
        # human status
        env = dict(d.env)
        out = subprocess.run([sys.executable, "-m", "station", "status", "--state", str(d.state)], env=env,
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and "complete→preview" in out.stdout
        # capture without a camera: refused with a clear message
        from station.control import ControlError, request

        with pytest.raises(ControlError, match="no camera configured"):
            request(d.state / "station.sock", "capture")
        assert (d.state / "station.sock").stat().st_mode & 0o777 == 0o660
        d.proc.send_signal(signal.SIGUSR1)  # capture, as gphoto2's CLI does: no camera here
        d.wait_for(lambda: "SIGUSR1 capture refused: no camera configured" in d.log_text(), 10, "SIGUSR1 handled")
        d.wait_for(lambda: any(m.startswith("STATUS=") and "6 done" in m for m in notify.messages), 10, "STATUS line")
        d.wait_for(lambda: "WATCHDOG=1" in notify.messages, 10, "WATCHDOG=1")
    finally:
        rc = d.stop()
        notify.close()
    assert rc == 0
    assert "stopped" in d.log_text()
    assert not (d.state / "station.sock").exists()


def test_polling_observer(daemon_factory, dng_bytes):
    """watcher.polling: no close events; a slowly written file is taken once its size holds still."""
    d = daemon_factory(config={"watcher": {"polling": True, "poll_interval": 0.3, "stable_seconds": 1.0},
                               "workers": {"count": 1}, "outputs": {"formats": ["preview", "jpeg"]}})
    d.start()
    data = dng_bytes(1)
    with open(d.incoming / "slowpoll.dng", "wb") as fh:
        half = len(data) // 2
        fh.write(data[:half])
        fh.flush()
        time.sleep(0.5)  # shorter than stable_seconds: must not be taken yet
        fh.write(data[half:])
    d.wait_for(lambda: d.done(["slowpoll.dng"]), 60, "polled frame processed")
    fr = d.frames()["slowpoll.dng"]
    assert fr["size"] == len(data) and fr["attempts"] == 1 and fr["state"] == "master_written"
    assert (d.output / "slowpoll.preview.jpg").exists() and (d.output / "slowpoll.jpg").exists()
    assert not (d.output / "slowpoll.tif").exists()  # not among the formats
    assert d.stop() == 0


def test_burst_in_order_none_twice(daemon_factory, dng_bytes):
    """A burst dropped at once: every preview and master, masters in frame order, none twice."""
    d = daemon_factory(config={"watcher": {"rescan_interval": 2}})
    d.start()
    names = [f"b{i:02d}.dng" for i in range(16)]
    for i, n in enumerate(names):
        tmp = d.incoming / f".{n}.tmp"
        tmp.write_bytes(dng_bytes(i))
        os.rename(tmp, d.incoming / n)
    d.wait_for(lambda: d.done(names), 120, "burst done")
    time.sleep(2.5)  # one periodic rescan over the finished burst: must not requeue anything
    fr = d.frames()
    assert sorted(fr) == names
    by_id = sorted(fr.values(), key=lambda r: r["id"])
    assert [r["path"] for r in by_id] == names  # taken in arrival order
    t_master = [r["t_master"] for r in by_id]
    assert t_master == sorted(t_master)  # masters in frame order
    assert all(r["attempts"] == 1 for r in by_id)
    log = d.log_text()
    for n in names:
        assert log.count(f"preview {n} ->") == 1 and log.count(f"master {n} ->") == 1
    _outputs_exactly_once(d, [n[:-4] for n in names])
    assert d.stop() == 0
