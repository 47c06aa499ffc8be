"""The watchdog observer on the incoming folder, turned into tracker calls.

inotify (watchdog's default Observer on Linux) gives close-after-write and
moved-in events (a file moved in from a folder outside the watched tree too:
the observer runs with `generate_full_events`, so its lone MOVED_TO arrives as
a move, not as a creation); the polling observer (watcher.polling: true, for network
shares) gives only created/modified, so those files are taken when their
size and mtime hold still.  Events arrive on watchdog's thread and are
handed over through a thread-safe inbox that the daemon's main loop drains.
"""
from __future__ import annotations

import logging
import os
import queue
import time
from pathlib import Path

from watchdog.events import (FileClosedEvent, FileCreatedEvent, FileDeletedEvent, FileModifiedEvent,
                             FileMovedEvent, FileSystemEventHandler, DirMovedEvent, DirCreatedEvent)

from station.ingest.tracker import accept

log = logging.getLogger("station.watcher")


class _Handler(FileSystemEventHandler):
    def __init__(self, root: Path, inbox: "queue.Queue"):
        self.root = root
        self.inbox = inbox

    def _put(self, kind: str, path: str) -> None:
        p = Path(os.fsdecode(path))
        try:
            if not accept(p, self.root):
                return
        except ValueError:  # outside root
            return
        self.inbox.put((kind, str(p), time.monotonic()))

    def on_any_event(self, event) -> None:
        if isinstance(event, FileClosedEvent):
            self._put("closed", event.src_path)
        elif isinstance(event, FileMovedEvent):
            # src_path "" = moved in from outside the watched tree (complete, like a rename
            # inside it); dest_path "" = moved out of it
            if event.src_path:
                self._put("gone", event.src_path)
            if event.dest_path:
                self._put("moved", event.dest_path)
        elif isinstance(event, (DirMovedEvent, DirCreatedEvent)):
            # a folder moved in (a whole roll): rescan it
            self.inbox.put(("rescan", os.fsdecode(getattr(event, "dest_path", "") or event.src_path), time.monotonic()))
        elif isinstance(event, FileCreatedEvent):
            self._put("created", event.src_path)
        elif isinstance(event, FileModifiedEvent):
            self._put("changed", event.src_path)
        elif isinstance(event, FileDeletedEvent):
            self._put("gone", event.src_path)


class Watcher:
    """Observe `root` recursively; events go to `inbox` as (kind, path, time)."""

    def __init__(self, root: Path, inbox: "queue.Queue", polling: bool = False, poll_interval: float = 1.0):
        self.root = Path(root)
        self.inbox = inbox
        self.polling = polling
        self.poll_interval = poll_interval
        self._observer = None

    def start(self) -> None:
        if self.polling:
            from watchdog.observers.polling import PollingObserver

            obs = PollingObserver(timeout=self.poll_interval)
        else:
            from watchdog.observers import Observer

            try:  # inotify: a file moved in from another folder is a move (complete), not a creation
                obs = Observer(generate_full_events=True)
            except TypeError:  # not inotify (another OS): its own events
                obs = Observer()
        obs.schedule(_Handler(self.root, self.inbox), str(self.root), recursive=True)
        obs.daemon = True
        obs.start()
        self._observer = obs
        log.info("watching %s (%s)", self.root, type(obs).__name__)

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None


def scan(root: Path, under: Path | None = None):
    """Yield (path, size, mtime) for every acceptable file under `root` (or a sub-folder)."""
    start = Path(under) if under else Path(root)
    for dirpath, dirnames, filenames in os.walk(start):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            try:
                if not accept(p, root):
                    continue
                st = p.stat()
            except (OSError, ValueError):
                continue
            if not os.path.isfile(p):
                continue
            yield p, st.st_size, st.st_mtime
