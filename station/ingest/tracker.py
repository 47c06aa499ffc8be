"""Decide when a file in the incoming folder is complete.  Pure: no I/O of its
own (stat is injected), no clock of its own (times are passed in), so every
rule is unit-tested.

A file is complete when:
- its writer closed it after writing (inotify IN_CLOSE_WRITE), or
- it was renamed/moved into the folder (how gphoto2, rsync, cp --backup and
  most tethering programs publish a finished file), or
- for writers that give no close event (polling observer, network shares,
  files found by a rescan): its size and mtime have not changed for
  `stable_seconds`.

Names that are dot-files, temporary names, or not image extensions are never
tracked (`accept`), and neither is anything in incoming/calibration/: the
station's own folder for blank film-base shots (`station roll calibrate`, the
page's *Calibrate base*), which are measured, never inverted.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import PurePath

from station.pipeline.decode import IMAGE_EXT

STATION_DIRS = ("calibration",)  # top-level folders of incoming/ that are the station's own
TEMP_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".crdownload", ".download", ".swp", ".lock", "~")


def accept(path: str | os.PathLike, root: str | os.PathLike | None = None) -> bool:
    """True for a name the daemon should process: an image extension, no
    dot-file or temporary name (in the file or any folder below `root`)."""
    p = PurePath(path)
    parts = p.relative_to(root).parts if root is not None else (p.name,)
    if root is not None and len(parts) > 1 and parts[0] in STATION_DIRS:
        return False  # calibration shots: measured by the roll, never inverted
    for part in parts:
        if part.startswith(".") or part.startswith("~") or part.startswith("#"):
            return False
    name = p.name.lower()
    if name.endswith(TEMP_SUFFIXES):
        return False
    return p.suffix.lower() in IMAGE_EXT


@dataclass
class _Pending:
    size: int | None
    mtime: float | None
    since: float  # when (size, mtime) was first seen with these values
    window: float  # how long they must hold still


class StabilityTracker:
    """Feed it events; `poll(now, stat)` returns the paths that became complete.

    stat(path) -> (size, mtime) or None when the file is gone.
    """

    def __init__(self, stable_seconds: float = 2.0, writer_seconds: float | None = None):
        """stable_seconds: the stability window for files seen by polling or a rescan.
        writer_seconds: the window for files whose writes were seen by inotify, whose
        close event should come: a longer safety net (a writer pausing between
        chunks is not mistaken for a finished one).  Default: max(30, stable_seconds)."""
        self.stable_seconds = stable_seconds
        self.writer_seconds = max(30.0, stable_seconds) if writer_seconds is None else writer_seconds
        self._pending: dict[str, _Pending] = {}
        self._ready: dict[str, float] = {}  # path -> complete time

    def __len__(self) -> int:
        return len(self._pending) + len(self._ready)

    def pending(self) -> list[str]:
        return sorted(self._pending)

    def closed(self, path: str, now: float) -> None:
        """Closed after writing, or moved in: complete now."""
        self._pending.pop(path, None)
        self._ready.setdefault(path, now)

    moved_in = closed

    def changed(self, path: str, now: float, size: int | None = None, mtime: float | None = None,
                expect_close: bool = False) -> None:
        """Created or modified: (re)start the stability clock.  expect_close: the
        event came from inotify, so a close event will normally end it."""
        self._ready.pop(path, None)
        window = self.writer_seconds if expect_close else self.stable_seconds
        cur = self._pending.get(path)
        if cur is None or (size is not None and (cur.size, cur.mtime) != (size, mtime)):
            self._pending[path] = _Pending(size, mtime, now, max(window, cur.window if cur else 0.0))
        elif window > cur.window:
            cur.window = window

    def found(self, path: str, now: float, size: int, mtime: float) -> bool:
        """Seen by a rescan: complete once size+mtime hold still for stable_seconds,
        watched from now.  The file's mtime is never trusted to say it is old: a
        clock that jumped, or a network share's clock, would let a file that is still
        being written be taken at once.  False if the file was already being tracked."""
        if path in self._ready or path in self._pending:
            return False
        self._pending[path] = _Pending(size, mtime, now, self.stable_seconds)
        return True

    def gone(self, path: str) -> None:
        self._pending.pop(path, None)
        self._ready.pop(path, None)

    def poll(self, now: float, stat) -> list[tuple[str, float]]:
        """Return [(path, complete_time)] that are complete, oldest first; forget them."""
        out = list(self._ready.items())
        self._ready.clear()
        for path, p in list(self._pending.items()):
            st = stat(path)
            if st is None:
                del self._pending[path]
                continue
            size, mtime = st
            if (size, mtime) != (p.size, p.mtime):
                self._pending[path] = _Pending(size, mtime, now, p.window)
                continue
            if now - p.since >= p.window:
                del self._pending[path]
                out.append((path, p.since))
        out.sort(key=lambda x: (x[1], x[0]))
        return out
