"""The camera service's request queue: every request is a Future, served in order by the
one thread that owns the camera (station.capture.camera).

An item is `(what, future, time requested)`; `None` wakes the owner to stop.  Besides the
queue it holds the capture being served (`current`) and the *orphan*: a capture cut short
by a fault, which waits (up to its grace period) for the reconnect's card scan to find the
file the camera made.  Nothing here touches the camera; a failure always reaches the
request's Future (a caller never learns of a problem only through a timeout).
"""
from __future__ import annotations

import concurrent.futures as cf
import queue
import threading
import time

from station.capture.camtypes import CameraDisconnectedError

Empty = queue.Empty


class RequestQueue:
    """`lock`: the service's own (re-entrant) lock, so that a Future's callbacks, which run
    in the thread that resolves it, may read the service's snapshot without a lock order."""

    def __init__(self, lock: threading.RLock | None = None) -> None:
        self._q: queue.Queue = queue.Queue()
        self._lock = lock or threading.RLock()
        self._current: cf.Future | None = None
        self._orphan: cf.Future | None = None
        self._orphan_deadline = 0.0

    # ------------------------------------------------------------ the queue
    def put(self, item) -> None:
        self._q.put(item)

    def get_nowait(self):
        """The next item; raises queue.Empty (`Empty`) when there is none."""
        return self._q.get_nowait()

    def get(self, timeout: float):
        return self._q.get(timeout=timeout)

    def requeue_front(self, item) -> None:
        """Put `item` back ahead of everything waiting (served first on a fresh session)."""
        items = []
        while True:
            try:
                items.append(self._q.get_nowait())
            except queue.Empty:
                break
        for x in [item] + items:
            self._q.put(x)

    def drain(self, exc: Exception) -> None:
        """Fail every request still waiting in the queue with `exc`."""
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                break
            if item and item[1] is not None and not item[1].done():
                item[1].set_exception(exc)

    # ------------------------------------------------ the capture in flight
    def serving(self, fut: cf.Future | None) -> None:
        """The capture now being served (None: served)."""
        with self._lock:
            self._current = fut

    def adopt_orphan(self, grace: float) -> None:
        """The capture in flight when the camera dropped out waits `grace` seconds for the
        reconnect: a file it made is found by the card scan."""
        with self._lock:
            if self._current is not None and not self._current.done():
                self._orphan = self._current
                self._orphan_deadline = time.monotonic() + grace
            self._current = None

    def take_orphan(self) -> cf.Future | None:
        with self._lock:
            orphan, self._orphan = self._orphan, None
        return orphan

    def fail_queued(self, exc: Exception) -> None:
        """Fail requests that have not fired yet (never keep a trigger for later), and an
        orphaned capture once its grace period is over."""
        self.drain(exc)
        with self._lock:
            if self._orphan is not None and time.monotonic() > self._orphan_deadline:
                if not self._orphan.done():
                    self._orphan.set_exception(CameraDisconnectedError(
                        f"the camera dropped out during the capture and is not back: {exc}"))
                self._orphan = None

    def fail_pending(self, exc: Exception) -> None:
        """Fail everything: the queue, the orphan and the capture being served."""
        self.drain(exc)
        with self._lock:
            for fut in (self._orphan, self._current):
                if fut is not None and not fut.done():
                    fut.set_exception(exc)
            self._orphan = self._current = None
