"""The page's view of the App: `boundary.Snapshot` in, the page's view model out.

`AppSource.view()` reads `app.state()` (a typed Snapshot, station/boundary.py)
and shapes it for the page; `AppSource.command()` sends one of the App's own
commands, by its own name (PAGE_COMMANDS: the ones the page's buttons send;
tests/test_web_adapter.py checks that every `command("...")` in static/app.js
is one of them and that the real App answers each).

View model (what `/api/state` and the SSE `state` event carry)::

    {
      "roll":   "roll-007" | null,          # the camera's current roll, else the newest frame's
      "frames": [{"key": "roll-007/IMG_0001.CR3", "name": "IMG_0001.CR3",
                  "number": 1, "status": "queued|preview|master|failed",
                  "reason": str|null, "stage": str|null,
                  "latency": {"preview": 0.93|null, "master": 4.1|null},
                  "checks": [{"check": "focus", "message": "...", "value": 0.4}] | null,
                  "url": "/img/roll-007/IMG_0001.preview.jpg?v=..." | null}],
      "queue":  {"total": 3, "detail": {"length", "preview", "master", "tracking"}},
      "camera": {"state": "connected|busy|reconnecting|connecting|disconnected|off",
                 "detail": str|null},
      "latest": {"url": ..., "key": ..., "number": ...} | null,
      "errors": ["path: reason", ...]        # recent failures
    }

Images are addressed by their path relative to the output folder; a path
outside the output folder gets no URL at all (it could not be served).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

from station.boundary import CAMERA_STATES, FRAME_STATES, CameraState, FrameView, Snapshot

# The App commands the page sends (each button's; see static/app.js).
PAGE_COMMANDS: tuple[str, ...] = ("capture", "roll_new", "calibrate", "flatfield", "reinvert", "retry", "set_print", "get_print",
                                  "live")  # live: live view on/off, magnifier point (station.capture.live)

# the page's word for each journal state and each camera state (every state has one)
STATUS: dict[str, str] = {"seen": "queued", "preview_written": "preview", "master_written": "master",
                          "failed": "failed"}
CAMERA: dict[str, str] = {"none": "off", "disconnected": "disconnected", "connecting": "connecting",
                          "ready": "connected", "busy": "busy", "reconnecting": "reconnecting", "stopped": "off",
                          "error": "disconnected"}
assert set(STATUS) == set(FRAME_STATES) and set(CAMERA) == set(CAMERA_STATES)

STRIP_MAX = 200  # frames sent to the page at most (the newest)


class AppSource:
    """Wraps the daemon App for the web layer."""

    def __init__(self, app: Any, output_dir: str | os.PathLike):
        self.app = app
        self.output_dir = Path(output_dir).expanduser()
        self._root = self.output_dir.resolve()
        self._roots = list(dict.fromkeys([os.path.normpath(os.path.abspath(self.output_dir)), str(self._root)]))

    # -- notifications -------------------------------------------------------
    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """callback() on every state change; returns unsubscribe."""
        return self.app.subscribe(lambda ev: callback())

    # -- commands ------------------------------------------------------------
    def command(self, name: str, kw: dict) -> Any:
        """Send the App's command `name` (one of PAGE_COMMANDS; KeyError otherwise)."""
        if name not in PAGE_COMMANDS:
            raise KeyError(name)
        return self.app.command(name, **kw)

    # -- the view model --------------------------------------------------------
    def view(self) -> dict:
        snap: Snapshot = self.app.state()
        frames_in = sorted(snap.frames, key=lambda f: f.id)  # the strip runs oldest → newest
        roll = snap.roll.name if snap.roll else (frames_in[-1].roll if frames_in else None)
        if roll is not None:  # the strip is the current roll (empty right after "new roll")
            frames_in = [f for f in frames_in if f.roll == roll]
        frames_in = frames_in[-STRIP_MAX:]
        frames = [self._frame(f, i + 1) for i, f in enumerate(frames_in)]
        return {
            "roll": roll,
            "frames": frames,
            "queue": {"total": snap.queue.length, "detail": dataclasses.asdict(snap.queue)},
            "camera": _camera(snap.camera),
            "latest": self._latest(snap, frames),
            "errors": [f"{e.get('path', '')}: {e.get('reason', '')}" for e in snap.recent_errors][:10],
        }

    def _frame(self, f: FrameView, number: int) -> dict:
        status = STATUS[f.state]
        image = f.preview or f.jpeg
        if status in ("queued", "failed"):
            # a preview left from an earlier attempt may still be shown
            image = image if image and Path(image).is_file() else None
        return {
            "key": f.path,
            "name": Path(f.path).name,
            "number": number,
            "status": status,
            "reason": f.reason,
            "stage": f.stage,
            "latency": {"preview": _num(f.lat_preview), "master": _num(f.lat_master)},
            "checks": None if f.checks is None else [dataclasses.asdict(c) for c in f.checks],
            "url": self.url_for(image, f.updated) if image else None,
        }

    def _latest(self, snap: Snapshot, frames: list[dict]) -> dict | None:
        last = snap.last_positive
        if last:
            url = self.url_for(last)
            if url:
                base = url.split("?", 1)[0]
                for f in reversed(frames):
                    if f["url"] and f["url"].split("?", 1)[0] == base:
                        return {"url": f["url"], "key": f["key"], "number": f["number"]}
                return {"url": url, "key": None, "number": None}
        for f in reversed(frames):
            if f["url"]:
                return {"url": f["url"], "key": f["key"], "number": f["number"]}
        return None

    def url_for(self, path: str | os.PathLike, version: Any = None) -> str | None:
        """The /img/ URL of a file under the output folder, or None.

        Pure path arithmetic (no file-system walk per frame per event); the
        image route checks the resolved path again before it serves anything."""
        p = os.path.normpath(os.path.join(self.output_dir, os.fspath(path)))
        rel = None
        for root in self._roots:
            if p.startswith(root + os.sep):
                rel = p[len(root) + 1:]
                break
        if rel is None:
            return None
        if version is None:
            try:
                version = os.stat(p).st_mtime_ns
            except OSError:
                version = 0
        return "/img/" + quote(Path(rel).as_posix()) + "?v=" + quote(str(version))


def _num(x: float | None) -> float | None:
    return None if x is None else round(float(x), 3)


def _camera(c: CameraState) -> dict:
    state = CAMERA[c.state]
    trouble = state in ("reconnecting", "disconnected", "connecting") and c.last_error
    return {"state": state, "detail": c.last_error if trouble else (c.model or c.port)}
