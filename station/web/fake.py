"""A stand-in for the daemon's App, for tests and for trying the page alone.

It speaks the App's API (`snapshot`, `subscribe`, `command`,
`register_service`) with the snapshot shape of the daemon (frames as in
`station.daemon.processor.frame_view`), and lets a test drive it: land a
positive, fail a frame, drop the camera.  Images are real files written
atomically into the output folder, as the daemon's writers do.

    python -m station.web.fake OUTPUT_DIR [IMAGES...]   # serve the page on 127.0.0.1:8077
"""
from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import Callable


class FakeApp:
    def __init__(self, output_dir, roll: str = "roll-001"):
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.roll = roll
        self.frames: list[dict] = []
        self.camera = "connected"
        self.queue = 0
        self.last_positive: str | None = None
        self.commands: list[tuple[str, dict]] = []
        self.on_command: dict[str, Callable[..., object]] = {}
        self.services: list = []
        self._subs: list[Callable] = []
        self._lock = threading.RLock()
        self._counter = 0

    # -- the App API ---------------------------------------------------------------
    def snapshot(self) -> dict:
        with self._lock:
            return {
                "roll": self.roll,
                "frames": [dict(f) for f in self.frames],
                "queue": {"preview": self.queue, "master": 0},
                "camera": {"state": self.camera, "model": "Virtual camera"},
                "last_positive": self.last_positive,
            }

    def subscribe(self, callback: Callable) -> Callable[[], None]:
        with self._lock:
            self._subs.append(callback)

        def unsubscribe():
            with self._lock:
                if callback in self._subs:
                    self._subs.remove(callback)
        return unsubscribe

    def command(self, name: str, /, **kw):
        with self._lock:
            self.commands.append((name, kw))
            handler = self.on_command.get(name)
        if handler is not None:
            return handler(**kw)
        if name == "roll_new":
            with self._lock:
                self.roll = kw.get("name") or f"roll-{len(self.commands):03d}"
            self.changed({"type": "roll"})
            return {"roll": self.roll}
        if name in ("capture", "calibrate", "reinvert", "retry"):
            return {"ok": True}
        if name in ("get_print", "set_print"):  # as the daemon's (daemon/prints.py), without re-rendering
            from station.pipeline.printing import PrintSettings, describe

            s = PrintSettings.from_dict({**PrintSettings().to_dict(), **(kw.get("settings") or {})})
            return {"frame": kw.get("path"), "print": s.to_dict(), "describe": describe(s),
                    "source": "frame" if name == "set_print" else "station", "rerender": []}
        raise ValueError(f"unknown command {name}")

    def register_service(self, obj) -> None:
        obj.start()
        self.services.append(obj)

    def stop(self) -> None:
        while self.services:
            self.services.pop().stop()

    # -- driving it ----------------------------------------------------------------
    def changed(self, event: dict | None = None) -> None:
        with self._lock:
            subs = list(self._subs)
        for cb in subs:
            cb(event or {})

    def add_frame(self, name: str | None = None, state: str = "seen") -> dict:
        with self._lock:
            self._counter += 1
            stem = Path(name).stem if name else f"IMG_{self._counter:04d}"
            rel = f"{self.roll}/{name or stem + '.CR3'}"
            out = self.output_dir / self.roll / stem
            f = {"path": rel, "roll": self.roll, "state": state, "reason": None, "stage": None, "sha256": None,
                 "preview": str(out) + ".preview.jpg", "tiff": str(out) + ".tif", "jpeg": str(out) + ".jpg",
                 "complete": time.time(), "lat_preview": None, "lat_master": None, "updated": time.time()}
            self.frames.append(f)
        self.changed({"type": "frame"})
        return f

    def land_preview(self, frame: dict, image: str | os.PathLike | bytes, latency: float = 0.8) -> Path:
        """Write the frame's preview (atomically) and report it, as the daemon does."""
        dst = Path(frame["preview"])
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name("." + dst.name + ".tmp")
        if isinstance(image, bytes):
            tmp.write_bytes(image)
        else:
            shutil.copyfile(image, tmp)
        os.replace(tmp, dst)
        with self._lock:
            frame.update(state="preview_written", lat_preview=latency, updated=time.time())
            self.last_positive = str(dst)
        self.changed({"type": "frame"})
        return dst

    def land_master(self, frame: dict, latency: float = 4.0) -> None:
        with self._lock:
            frame.update(state="master_written", lat_master=latency, updated=time.time())
        self.changed({"type": "frame"})

    def fail(self, frame: dict, reason: str, stage: str = "preview") -> None:
        with self._lock:
            frame.update(state="failed", reason=reason, stage=stage, updated=time.time())
        self.changed({"type": "frame"})

    def set_camera(self, state: str) -> None:
        with self._lock:
            self.camera = state
        self.changed({"type": "camera"})

    def set_queue(self, n: int) -> None:
        with self._lock:
            self.queue = n
        self.changed({"type": "queue"})


def _demo(argv: list[str]) -> int:  # pragma: no cover - manual use
    import argparse
    import itertools

    from station.web.server import WebService

    ap = argparse.ArgumentParser(prog="python -m station.web.fake")
    ap.add_argument("output")
    ap.add_argument("images", nargs="*", help="positive JPEGs to cycle through on capture")
    ap.add_argument("--web", default="127.0.0.1:8077")
    ap.add_argument("--token")
    a = ap.parse_args(argv)
    app = FakeApp(a.output)
    pool = itertools.cycle(a.images) if a.images else None

    def capture(**kw):
        f = app.add_frame()
        if pool:
            threading.Timer(0.6, lambda: app.land_preview(f, next(pool), 0.6)).start()
            threading.Timer(3.0, lambda: app.land_master(f, 3.0)).start()
        return {"frame": f["path"]}

    app.on_command["capture"] = capture
    svc = WebService(app, a.web, a.token, a.output)
    app.register_service(svc)
    print("live view:", svc.url + (f"?token={a.token}" if a.token else ""))
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    app.stop()
    return 0


if __name__ == "__main__":  # pragma: no cover
    import sys

    raise SystemExit(_demo(sys.argv[1:]))
