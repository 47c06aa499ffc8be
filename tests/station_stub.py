"""The real App with stub parts below it, for the web layer's tests.

`Station` is the daemon's own App (journal, processor, job queue, event bus,
command routing, typed snapshot) on temporary folders, with no worker
processes: the test plays the worker, landing outputs and reporting results
through the App's own result path.  `StubCamera` is a camera service (a
boundary.Service, returning boundary.CameraState) whose state a test sets.
Both layers below the App are tested for real elsewhere (tests/test_daemon_*,
tests/test_capture_*), and the page is tested on the real daemon too
(test_web_browser.py, test_web_daemon.py).
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from station import config
from station.app import App
from station.boundary import CameraState, RollState
from station.ingest.jobs import MASTER, PREVIEW


class StubCamera:
    name = "camera"

    def __init__(self, app: App, roll: str | None = "roll-001"):
        self.app = app
        self.state = "ready"
        self.last_error = None
        self.roll = roll
        self.calls: list[tuple[str, dict]] = []
        self.on_command: dict = {}  # name -> fn(**kw): the answer (or raise: the refusal)

    def start(self):
        pass

    def stop(self):
        pass

    def snapshot(self) -> CameraState:
        return CameraState(state=self.state, port="stub", model="Stub camera", last_error=self.last_error,
                           roll=RollState(self.roll) if self.roll else None)

    def commands(self) -> dict:
        return {n: self._command(n) for n in ("capture", "roll_new", "calibrate")}

    def _command(self, name):
        def fn(**kw):
            self.calls.append((name, kw))
            if name in self.on_command:
                return self.on_command[name](**kw)
            if name == "roll_new":
                self.roll = kw.get("name") or f"roll-{len(self.calls):03d}"
                self.app.publish({"type": "roll", "event": "new", "roll": self.roll})
                return {"name": self.roll}
            return {"ok": True}
        return fn

    def set_state(self, state: str, error: str | None = None) -> None:
        self.state, self.last_error = state, error
        self.app.publish({"type": "camera", "state": state, "error": error})


class Station:
    def __init__(self, root: Path, roll: str | None = "roll-001", camera: bool = True):
        root = Path(root)
        self.incoming, self.output, self.state = root / "incoming", root / "positives", root / "state"
        for d in (self.incoming, self.output, self.state):
            d.mkdir(parents=True, exist_ok=True)
        cfg = config.validate({"paths": {"incoming": str(self.incoming), "output": str(self.output),
                                         "state": str(self.state)}, "web": {"address": "off"}})
        self.app = App(cfg)
        self.app.start_events()
        self.camera = StubCamera(self.app, roll)
        if camera:
            self.app.register_service(self.camera)
        self.app.start_services()
        self._n = 0

    def serve(self, svc):
        """Register a service (the web page) and start it, as `station run` does."""
        self.app.register_service(svc)
        return svc

    def close(self):
        self.app.stop()

    # -- playing the worker --------------------------------------------------------------------
    def add_frame(self, name: str | None = None) -> str:
        """A complete RAW lands in the incoming folder (in the camera's roll): the App takes it."""
        self._n += 1
        roll = self.camera.roll
        rel = f"{roll}/{name or f'IMG_{self._n:04d}.CR3'}" if roll else (name or f"IMG_{self._n:04d}.CR3")
        p = self.incoming / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"raw " + rel.encode())
        self.app.processor.submit(p, time.time())
        return rel

    def row(self, key: str) -> dict:
        return self.app.journal.get(key)

    def _take(self, key: str, stage: str):
        """The worker takes `key`'s job of `stage` (jobs of other frames go back, in their order)."""
        q, others = self.app.queue, []
        try:
            while True:
                job = q.get((stage,), timeout=1)
                assert job is not None, f"no {stage} job for {key} in the queue"
                if job.key == key:
                    return job
                others.append(job)
        finally:
            for j in others:
                q.done(j)
                q.put(j.stage, j.key, j.src, j.outputs, j.t_complete, order=j.seq, overwrite=j.overwrite)

    def _result(self, job, res: dict) -> None:
        self.app._on_result(job, res)  # the pool's result path
        self.app.queue.done(job)

    def land_preview(self, key: str, image, latency: float = 0.8) -> Path:
        """The worker wrote the preview (atomically) `latency` s after the RAW was complete."""
        job = self._take(key, PREVIEW)
        dst = Path(job.outputs["preview"])
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name("." + dst.name + ".tmp")
        if isinstance(image, bytes):
            tmp.write_bytes(image)
        else:
            shutil.copyfile(image, tmp)
        os.replace(tmp, dst)
        self.app.journal.update(key, t_complete=time.time() - latency)
        self._result(job, {"ok": True})
        return dst

    def land_master(self, key: str, latency: float = 4.0) -> None:
        job = self._take(key, MASTER)
        row = self.row(key)
        if job.outputs.get("jpeg") and row["preview"] and Path(row["preview"]).is_file():
            shutil.copyfile(row["preview"], job.outputs["jpeg"])
        self.app.journal.update(key, t_complete=time.time() - latency)
        self._result(job, {"ok": True, "sha256": "0" * 64})

    def fail(self, key: str, reason: str, stage: str = PREVIEW) -> None:
        self._result(self._take(key, stage), {"ok": False, "reason": reason})
