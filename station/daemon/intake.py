"""Files into the processor: the watcher's events, the stability tracker, rescans, and
the clean-up of what a killed writer left behind.

    intake = Intake(cfg, journal, queue, processor, tracker, watcher, inbox)
    intake.step(timeout)          # one turn of the daemon's main loop: watcher events ->
                                  # tracker; files the tracker calls complete -> processor;
                                  # the processor's timers
    intake.rescan(startup, under) # files the observer missed (or that came while we were down)
    clean_temporaries(output, folders=None)
                                  # dot-temporaries of dead writers removed (only ours)

The tracker and the watcher run on the monotonic clock (soak finding 6: a forward step of
the wall clock took a slow writer's file mid-write); the journal keeps wall-clock times.
"""
from __future__ import annotations

import logging
import os
import queue as queue_mod
import re
import time
from pathlib import Path

from station.ingest.jobs import MASTER, PREVIEW
from station.ingest.watcher import scan

log = logging.getLogger("station")

# `.<name>.<pid>.tmp` (write.py's atomic writes) or `.part` (a frame staged by write.publish_frame)
TEMPORARY = re.compile(r"^\..+\.(\d+)\.(?:tmp|part)$")


class Intake:
    def __init__(self, cfg: dict, journal, queue, processor, tracker, watcher, inbox: queue_mod.Queue):
        self.incoming = Path(cfg["paths"]["incoming"])
        self.journal = journal
        self.queue = queue
        self.processor = processor
        self.tracker = tracker
        self.watcher = watcher
        self.inbox = inbox

    def rescan(self, startup: bool = False, under: Path | None = None) -> int:
        """Find files the observer missed (or that arrived while we were down)."""
        incoming = self.incoming
        now = time.time()
        mono = time.monotonic()  # the tracker's clock: a wall clock step must not make a growing file look still
        n = 0
        for path, size, mtime in scan(incoming, under):
            rel = path.relative_to(incoming).as_posix()
            if self.queue.busy(rel) or self.processor.waiting(rel):
                continue
            row = self.journal.get(rel)
            if row is not None and row["size"] == size and abs((row["mtime"] or 0) - mtime) < 1e-6:
                if row["state"] in ("seen", "preview_written"):
                    self.processor.submit(path, row["t_complete"] or now)  # known complete: resume
                    n += 1
                continue  # done or failed with this very content
            n += self.tracker.found(str(path), mono, size, mtime)
        if startup:  # frames left unfinished whose RAW has gone meanwhile
            for state in ("seen", "preview_written"):
                for row in self.journal.frames(state):
                    if not (incoming / row["path"]).exists():
                        self.processor.fail(row["path"], "file disappeared before it was processed",
                                            PREVIEW if state == "seen" else MASTER)
        if n:
            log.info("%s: %d file(s) to take", "start-up scan" if startup else "rescan", n)
        return n

    def handle_inbox(self, timeout: float) -> None:
        """The watcher's events queued so far (waiting up to `timeout` for the first) -> tracker."""
        try:
            kind, path, t = self.inbox.get(timeout=timeout)
        except queue_mod.Empty:
            return
        while True:
            if kind in ("closed", "moved"):
                self.tracker.closed(path, t)
            elif kind in ("changed", "created"):
                st = stat(path)
                if st is not None:
                    # inotify: writes mean a close event will come (long safety window); a
                    # creation with content already there and no write seen (a hard link, a
                    # file system without close events) gets the short stability window.
                    # (A file moved in from another folder arrives as "moved": complete.)
                    writer = not self.watcher.polling and (kind == "changed" or st[0] == 0)
                    self.tracker.changed(path, t, *st, expect_close=writer)
            elif kind == "gone":
                self.tracker.gone(path)
            elif kind == "rescan":
                self.rescan(under=Path(path))
            try:
                kind, path, t = self.inbox.get_nowait()
            except queue_mod.Empty:
                return

    def step(self, timeout: float = 0.1) -> None:
        """One turn of the main loop: events in, complete files to the processor, its timers."""
        self.handle_inbox(timeout)
        mono = time.monotonic()
        for path, t_complete in self.tracker.poll(mono, stat):
            try:
                self.processor.submit(Path(path), time.time() - (mono - t_complete))
            except Exception:
                log.exception("could not take %s", path)
        try:
            self.processor.tick(mono)
        except Exception:
            log.exception("processor timers failed")


def clean_temporaries(output, folders=None) -> None:
    """Remove the dot-temporaries our writers leave when killed mid-write (under the output
    folder, or only in `folders`; only ours, only dead pids)."""
    if folders is None:
        walk = ((d, f) for d, _, f in os.walk(output))
    else:
        walk = ((d, os.listdir(d)) for d in folders if d and os.path.isdir(d))
    for dirpath, files in walk:
        for name in files:
            m = TEMPORARY.match(name)
            if not m or pid_alive(int(m.group(1))):
                continue
            try:
                os.unlink(os.path.join(dirpath, name))
                log.info("removed a temporary left by a killed writer: %s", name)
            except OSError:
                pass


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stat(path: str):
    """(size, mtime) or None when the file is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime
