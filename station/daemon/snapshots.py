"""The station's state at one moment, typed (boundary.Snapshot), built from the journal
and the parts that hold live state (queue, tracker, worker pool, processor, services).

    SnapshotBuilder(cfg, journal, queue, tracker, pool, processor, services, started_at)
        .state() -> Snapshot        what App.state() returns
        .camera_state() -> CameraState
        .status_line() -> str       the one line systemd shows (`systemctl status`)

It only reads: nothing here changes the station.  A service whose snapshot() raises
reports its error in its part; the camera's must be a CameraState.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Iterable

from station.boundary import CameraState, FrameView, QueueState, Snapshot
from station.ingest.jobs import MASTER, PREVIEW


class SnapshotBuilder:
    def __init__(self, cfg: dict, journal, queue, tracker, pool, processor,
                 services: Callable[[], Iterable[tuple[str, object]]], started_at: float):
        self.cfg = cfg
        self.journal = journal
        self.queue = queue
        self.tracker = tracker
        self.pool = pool
        self.processor = processor
        self.services = services  # () -> [(name, service)], in registration order
        self.started_at = started_at

    def service(self, name: str):
        return next((svc for n, svc in self.services() if n == name), None)

    def camera_state(self) -> CameraState:
        port = self.cfg["camera"]["port"]
        cam = self.service("camera")
        if cam is None:
            return CameraState(state="none", port=port)
        try:
            st = cam.snapshot()
        except Exception as exc:  # a camera's state must never break status
            return CameraState(state="error", port=port, last_error=str(exc))
        if not isinstance(st, CameraState):
            return CameraState(state="error", port=port,
                               last_error=f"the camera service reported {type(st).__name__}, not a CameraState")
        return st

    def service_parts(self) -> dict:
        """Each service's part (the camera's is `camera`); a failing one reports its error."""
        out = {}
        for name, svc in self.services():
            if name == "camera":
                continue
            try:
                part = svc.snapshot()
            except Exception as exc:  # a plug-in's state must never break status
                part = {"error": str(exc)}
            if part is not None:
                out[name] = part
        return out

    def state(self) -> Snapshot:
        q = self.queue.counts()
        frames = [FrameView.from_row(r) for r in self.journal.frames(limit=50, newest_first=True)]
        return Snapshot(
            pid=os.getpid(),
            started=self.started_at,
            uptime=round(time.time() - self.started_at, 1),
            config=self.cfg.get("_source"),
            paths={k: str(v) if v is not None else None for k, v in self.cfg["paths"].items()},
            queue=QueueState(length=q[PREVIEW] + q[MASTER], preview=q[PREVIEW], master=q[MASTER],
                             tracking=len(self.tracker)),
            workers=self.pool.info(),
            counts=self.journal.counts(),
            latency=self.journal.latencies(),
            last_frame=self.processor.last_frame or (frames[0] if frames else None),
            last_positive=self.processor.last_positive,
            frames=frames,
            recent_errors=self.journal.recent_errors(),
            camera=self.camera_state(),
            web=self.cfg["web"]["address"],
            services=self.service_parts(),
            renderings=self.processor.rolls.snapshot(),
        )

    def status_line(self) -> str:
        q = self.queue.counts()
        lf = self.processor.last_frame
        last = "none"
        if lf:
            lat = lf.lat_preview
            last = f"{Path(lf.path).name} {lf.state}" + (f" {lat:.1f}s" if lat is not None else "")
        c = self.journal.counts()
        return (f"queue {q[PREVIEW] + q[MASTER]} ({q[PREVIEW]} preview); last {last}; "
                f"camera {self.camera_state().state}; {c['master_written']} done, {c['failed']} failed")
