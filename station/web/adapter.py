"""The one place that knows the daemon App's field names.

The web layer never reads ``App.snapshot()`` directly: `AppSource.view()`
turns whatever the App reports into the page's view model (below), and
`AppSource.command()` maps the page's command names onto the App's.  When
the App's snapshot changes shape, only this file changes.

View model (what `/api/state` and the SSE `state` event carry)::

    {
      "roll":   "roll-007" | null,
      "frames": [{"key": "roll-007/IMG_0001.CR3", "name": "IMG_0001.CR3",
                  "number": 1, "status": "queued|preview|master|failed",
                  "reason": str|null, "stage": str|null,
                  "latency": {"preview": 0.93|null, "master": 4.1|null},
                  "url": "/img/roll-007/IMG_0001.preview.jpg?v=..." | null}],
      "queue":  {"total": 3, "detail": {...}},
      "camera": {"state": "connected|busy|reconnecting|disconnected|off",
                 "detail": str|null},
      "latest": {"url": ..., "key": ..., "number": ...} | null,
      "errors": [...]  # recent failures, if the App reports them
    }

Images are addressed by their path relative to the output folder; a path
outside the output folder gets no URL at all (it could not be served).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

# page command -> App command name.  Only these can be sent from the page.
COMMANDS: dict[str, str] = {
    "capture": "capture",
    "roll_new": "roll_new",
    "calibrate": "calibrate",
    "reinvert": "reinvert",
    "retry": "retry",
    "set_print": "set_print",  # the print panel: store a frame's / a roll's print, re-render
    "get_print": "get_print",  # the print the sliders show for a frame
    "live": "live",  # live view on/off, magnifier point (station.capture.live)
}

_STATUS = {
    "seen": "queued", "queued": "queued", "pending": "queued", "processing": "queued", "new": "queued",
    "preview_written": "preview", "preview": "preview",
    "master_written": "master", "master": "master", "done": "master",
    "failed": "failed", "error": "failed",
}

_CAMERA = {
    "connected": "connected", "ready": "connected", "idle": "connected", "ok": "connected",
    "busy": "busy", "capturing": "busy",
    "reconnecting": "reconnecting", "connecting": "connecting", "lost": "reconnecting",
    "disconnected": "disconnected", "absent": "disconnected", "error": "disconnected",
    "off": "off", "none": "off", "disabled": "off", "stopped": "off",
}

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
        unsub = self.app.subscribe(lambda *a, **k: callback())
        return unsub if callable(unsub) else (lambda: None)

    # -- commands ------------------------------------------------------------
    def command(self, name: str, kw: dict) -> Any:
        if name not in COMMANDS:
            raise KeyError(name)
        if name == "reinvert" and "frame" in kw and "path" not in kw:
            kw = dict(kw)
            kw["path"] = kw.pop("frame")
        return self.app.command(COMMANDS[name], **kw)

    # -- the view model --------------------------------------------------------
    def view(self) -> dict:
        snap = self.app.snapshot() or {}
        frames_in = _oldest_first(list(snap.get("frames") or []))
        roll = _roll_name(snap.get("roll"))
        if roll is None and frames_in:
            roll = frames_in[-1].get("roll")
        if roll is not None:  # the strip is the current roll (empty right after "new roll")
            frames_in = [f for f in frames_in if f.get("roll") == roll]
        frames_in = frames_in[-STRIP_MAX:]
        frames = [self._frame(f, i + 1) for i, f in enumerate(frames_in)]
        latest = self._latest(snap, frames)
        return {
            "roll": roll,
            "frames": frames,
            "queue": _queue(snap.get("queue", snap.get("queue_length"))),
            "camera": _camera(snap.get("camera")),
            "latest": latest,
            "errors": [_error_line(e) for e in (snap.get("recent_errors") or snap.get("errors") or [])][:10],
        }

    def _frame(self, f: dict, index: int) -> dict:
        key = str(f.get("path") or f.get("key") or f.get("name") or index)
        status = _STATUS.get(str(f.get("state") or f.get("status") or "").lower(), "queued")
        lat = f.get("latency") if isinstance(f.get("latency"), dict) else {}
        image = f.get("preview") or f.get("jpeg")
        if status == "queued" or status == "failed":
            # a preview left from an earlier attempt may still be shown
            image = image if image and Path(image).is_file() else None
        return {
            "key": key,
            "name": Path(key).name,
            "number": f.get("number") or index,
            "status": status,
            "reason": f.get("reason"),
            "stage": f.get("stage"),
            "latency": {
                "preview": _num(f.get("lat_preview", lat.get("preview"))),
                "master": _num(f.get("lat_master", lat.get("master"))),
            },
            "url": self.url_for(image, f.get("updated")) if image else None,
        }

    def _latest(self, snap: dict, frames: list[dict]) -> dict | None:
        last = snap.get("last_positive") or snap.get("latest")
        if isinstance(last, dict):
            last = last.get("path") or last.get("preview")
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


def _roll_name(roll: Any) -> str | None:
    if isinstance(roll, dict):
        roll = roll.get("name") or roll.get("id")
    return str(roll) if roll else None


def _num(x: Any) -> float | None:
    try:
        return None if x is None else round(float(x), 3)
    except (TypeError, ValueError):
        return None


def _queue(q: Any) -> dict:
    if isinstance(q, dict):
        total = q.get("total", q.get("length"))
        if total is None:
            total = sum(v for v in q.values() if isinstance(v, (int, float)))
        return {"total": int(total), "detail": q}
    try:
        return {"total": int(q or 0), "detail": None}
    except (TypeError, ValueError):
        return {"total": 0, "detail": None}


def _camera(c: Any) -> dict:
    detail = None
    if isinstance(c, dict):
        state = _CAMERA.get(str(c.get("state") or c.get("status") or "off").lower(), "unknown")
        problem = c.get("last_error") or c.get("error")
        detail = c.get("detail") or (problem if state in ("reconnecting", "disconnected", "connecting") and problem
                                     else c.get("model") or c.get("port"))
    else:
        state = _CAMERA.get(str(c or "off").lower(), str(c).lower() if c else "off")
    return {"state": state, "detail": None if detail is None else str(detail)}


def _oldest_first(frames: list[dict]) -> list[dict]:
    """The strip runs oldest → newest; the daemon lists newest first."""
    if all(isinstance(f.get("id"), int) for f in frames):
        return sorted(frames, key=lambda f: f["id"])
    times = [f.get("complete") for f in frames]
    if len(frames) > 1 and all(isinstance(t, (int, float)) for t in (times[0], times[-1])) and times[0] > times[-1]:
        return frames[::-1]
    return frames


def _error_line(e: Any) -> str:
    if isinstance(e, dict):
        return f"{e.get('path', '')}: {e.get('reason', '')}".strip(": ")
    return str(e)
