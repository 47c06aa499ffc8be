"""The App's event bus: services publish dicts, subscribers get them on one thread.

    bus = EventBus()
    unsubscribe = bus.subscribe(callback)   # callback(event: dict)
    bus.publish({"type": ...})              # a "time" is added; never blocks, never raises
    bus.start() / bus.stop()                # the dispatcher thread ("events")

Callbacks run on the dispatcher thread, one event at a time, never under a lock;
a failing callback is logged and the others still get the event.
"""
from __future__ import annotations

import logging
import queue as queue_mod
import threading
import time

log = logging.getLogger("station")


class EventBus:
    def __init__(self):
        self.subscribers: list = []
        self.lock = threading.Lock()
        self.events: queue_mod.Queue = queue_mod.Queue()
        self.thread: threading.Thread | None = None

    def subscribe(self, callback):
        with self.lock:
            self.subscribers.append(callback)

        def unsubscribe():
            with self.lock:
                if callback in self.subscribers:
                    self.subscribers.remove(callback)

        return unsubscribe

    def publish(self, event: dict) -> None:
        event = dict(event)
        event.setdefault("time", time.time())
        self.events.put(event)

    def dispatch(self) -> None:
        """Deliver events until a None is queued (the dispatcher thread's body)."""
        while True:
            ev = self.events.get()
            if ev is None:
                return
            with self.lock:
                subs = list(self.subscribers)
            for cb in subs:
                try:
                    cb(ev)
                except Exception:
                    log.exception("subscriber %r failed", cb)

    def start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self.dispatch, name="events", daemon=True)
            self.thread.start()

    def stop(self) -> None:
        """The events published so far are still delivered; the thread then ends."""
        self.events.put(None)
        self.thread = None
