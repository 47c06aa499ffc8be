"""Auto-roll: capture a whole roll on a motorised film advancer, no hand on a keyboard.

    capture → (last frame? stop) → `advance` hook, wait for its exit status
            → wait `settle` seconds → capture → ...

Exit status of the advance hook: 0 = the next frame is in place; 3 = end of film (the
roll stops, reason "end of film"); anything else, a timeout or no advance hook at all
= an error (the `error` hook fires, the roll stops).  The roll also stops when the
frame count is reached, on `stop()` (`station roll stop`) and on `pedal()` (a pedal
press while an auto-roll runs stops it instead of capturing).  A capture in flight
always finishes: stopping never loses a frame that the camera already shot.

The controller depends on two small things only, so it can be tested with a thread
and a plain callable and wired to the camera service later:

* ``capture() -> concurrent.futures.Future`` whose result is the downloaded path(s);
* ``hooks`` with ``run_sync(event, env=None, timeout=None, **vars) -> int | None`` and
  ``fire(event, **vars)`` (a `station.hooks.HookRunner`).
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Callable, Protocol

log = logging.getLogger("station.autoroll")

EXIT_END_OF_FILM = 3

# states
IDLE, CAPTURING, ADVANCING, SETTLING, STOPPING = "idle", "capturing", "advancing", "settling", "stopping"
# reasons (snapshot["reason"] once stopped)
DONE = "frame count reached"
END_OF_FILM = "end of film"
PEDAL = "stopped by pedal"
STOPPED = "stopped by command"


class Hooks(Protocol):
    def run_sync(self, event: str, env: dict | None = None, timeout: float | None = None, **variables) -> int | None: ...

    def fire(self, event: str, env: dict | None = None, **variables): ...


class AutoRollError(Exception):
    """The auto-roll cannot start (one line for the user)."""


class _NoHooks:
    def run_sync(self, event, env=None, timeout=None, **variables):
        return None

    def fire(self, event, env=None, **variables):
        return None


class AutoRoll:
    """One auto-roll at a time; thread-safe.  See the module docstring.

    capture: callable → Future of the downloaded path(s) (a list, a path or None)
    hooks: HookRunner-like (run_sync / fire); it needs an `advance` hook
    settle: seconds to wait after the advance hook before the next capture
    roll: callable → current roll name (for the hooks' STATION_ROLL), or a string
    on_change: callback(snapshot) after every state change (e.g. app.publish)
    """

    def __init__(self, capture: Callable[[], Future], hooks: Hooks | None = None, settle: float = 1.0,
                 capture_timeout: float = 60.0, advance_timeout: float | None = None,
                 roll: Callable[[], str | None] | str | None = None, on_change: Callable[[dict], None] | None = None):
        self.capture = capture
        self.hooks = hooks or _NoHooks()
        self.settle = float(settle)
        self.capture_timeout = float(capture_timeout)
        self.advance_timeout = advance_timeout
        self._roll = roll
        self.on_change = on_change
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stop_reason: str | None = None
        self._thread: threading.Thread | None = None
        self._state = {"state": IDLE, "running": False, "frame": 0, "frames": 0, "reason": None, "error": None,
                       "last_files": [], "started": None, "finished": None}

    # -- commands ------------------------------------------------------------------------
    default_frames = 36

    def start(self, frames: int | None = None, settle: float | None = None) -> dict:
        """Start an auto-roll of `frames` frames in the background; return the snapshot."""
        if frames is None:
            frames = self.default_frames
        if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
            raise AutoRollError(f"frames must be a whole number ≥ 1, got {frames!r}")
        if settle is not None:
            if isinstance(settle, bool) or not isinstance(settle, (int, float)) or settle < 0:
                raise AutoRollError(f"settle must be ≥ 0 seconds, got {settle!r}")
            self.settle = float(settle)
        if frames > 1 and hasattr(self.hooks, "configured") and not self.hooks.configured("advance"):
            raise AutoRollError("auto-roll needs an advance hook: set hooks.advance in the config")
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise AutoRollError(f"an auto-roll is already running (frame {self._state['frame']} of "
                                    f"{self._state['frames']}); `station roll stop` first")
            self._stop.clear()
            self._stop_reason = None
            self._state.update(state=CAPTURING, running=True, frame=0, frames=frames, reason=None, error=None,
                               last_files=[], started=time.time(), finished=None)
            self._thread = threading.Thread(target=self._run, args=(frames,), name="autoroll", daemon=True)
            self._thread.start()
        self._changed()
        return self.snapshot()

    def stop(self, reason: str = STOPPED) -> dict:
        """Ask the running auto-roll to stop after the step in hand (a capture in flight finishes)."""
        with self._lock:
            if self._state["running"] and self._stop_reason is None:
                self._stop_reason = reason
                if self._state["state"] != CAPTURING:
                    self._state["state"] = STOPPING
            self._stop.set()
        self._changed()
        return self.snapshot()

    def pedal(self) -> bool:
        """A pedal press: stops a running auto-roll and returns True (the press is used up);
        returns False when no auto-roll runs (the pedal then captures as usual)."""
        if not self.running:
            return False
        self.stop(PEDAL)
        return True

    @property
    def running(self) -> bool:
        with self._lock:
            return self._state["running"]

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the auto-roll to end; True when it has."""
        t = self._thread
        if t is None:
            return True
        t.join(timeout)
        return not t.is_alive()

    def snapshot(self) -> dict:
        """JSON-able progress: state, frame i of N, running, reason stopped, error, last files."""
        with self._lock:
            s = dict(self._state)
            s["last_files"] = list(s["last_files"])
            s["settle"] = self.settle
        return s

    # -- the loop --------------------------------------------------------------------------
    def _roll_name(self):
        r = self._roll
        try:
            return r() if callable(r) else r
        except Exception:
            return None

    def _set(self, **kw) -> None:
        with self._lock:
            self._state.update(kw)
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change(self.snapshot())
            except Exception:
                log.exception("auto-roll on_change callback failed")

    def _wait_capture(self, fut: Future):
        deadline = time.monotonic() + self.capture_timeout
        while True:
            try:
                return fut.result(timeout=min(0.5, max(0.0, deadline - time.monotonic())))
            except FutureTimeout:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"no file from the camera within {self.capture_timeout:.0f} s") from None

    def _run(self, frames: int) -> None:
        reason, error = DONE, None
        roll = self._roll_name()
        try:
            for i in range(1, frames + 1):
                if self._stop.is_set():
                    reason = self._stop_reason or STOPPED
                    break
                self._set(state=CAPTURING)
                try:
                    files = self._wait_capture(self.capture())
                except Exception as exc:
                    reason, error = "error", f"capture of frame {i} failed: {exc}"
                    break
                if files is None:
                    files = []
                elif isinstance(files, (str, bytes)) or not hasattr(files, "__iter__"):
                    files = [files]
                files = [_path_of(f) for f in files]  # CameraService gives CapturedFile objects
                self._set(frame=i, last_files=files)
                log.info("auto-roll: frame %d of %d captured (%s)", i, frames, ", ".join(map(str, files)) or "-")
                if i == frames:
                    reason = DONE
                    break  # no advance after the last frame
                if self._stop.is_set():
                    reason = self._stop_reason or STOPPED
                    break
                self._set(state=ADVANCING)
                rc = self.hooks.run_sync("advance", timeout=self.advance_timeout, roll=roll, frame=i,
                                         raw=files[0] if files else None)
                if rc == EXIT_END_OF_FILM:
                    reason = END_OF_FILM
                    break
                if rc != 0:
                    what = ("no advance hook is configured" if rc is None and not _has_advance(self.hooks)
                            else "the advance hook timed out" if rc is None
                            else f"the advance hook exited with status {rc}")
                    reason, error = "error", f"{what} after frame {i}"
                    break
                if self._stop.is_set():
                    reason = self._stop_reason or STOPPED
                    break
                self._set(state=SETTLING)
                if self._stop.wait(self.settle):
                    reason = self._stop_reason or STOPPED
                    break
        except Exception as exc:  # a bug must not leave the state "running" forever
            log.exception("auto-roll crashed")
            reason, error = "error", f"auto-roll failed: {exc}"
        with self._lock:
            done = self._state["frame"]
            self._state.update(state=IDLE, running=False, reason=reason, error=error, finished=time.time())
        self._changed()
        if error:
            log.error("auto-roll stopped at frame %d of %d: %s", done, frames, error)
            self.hooks.fire("error", roll=roll, frame=done or None, reason=error)
        else:
            log.info("auto-roll finished at frame %d of %d: %s", done, frames, reason)
            if reason in (DONE, END_OF_FILM):
                self.hooks.fire("roll_complete", roll=roll, frame=done, reason=reason)


def _path_of(f) -> str:
    return str(getattr(f, "path", f))


def _has_advance(hooks) -> bool:
    fn = getattr(hooks, "configured", None)
    return bool(fn("advance")) if callable(fn) else True


# -- configuration and wiring ----------------------------------------------------------------

AUTOROLL_DEFAULTS = {
    "frames": 36,  # default frame count of `station roll auto`
    "settle": 1.0,  # seconds between the advance hook's exit and the next capture
    "advance_timeout": 60.0,  # the advance hook is killed after this (then: error, roll stops)
    "capture_timeout": 60.0,  # no file from the camera within this: error, roll stops
}


def validate_autoroll_config(obj) -> list[str]:
    """`autoroll:` config errors, one line each naming the key."""
    if obj is None:
        return []
    if not isinstance(obj, dict):
        return [f"autoroll: must be a mapping, got {type(obj).__name__}"]
    errors = []
    for k, v in obj.items():
        key = f"autoroll.{k}"
        if k not in AUTOROLL_DEFAULTS:
            errors.append(f"{key}: unknown key (known: {', '.join(AUTOROLL_DEFAULTS)})")
        elif k == "frames":
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                errors.append(f"{key}: must be a whole number ≥ 1, got {v!r}")
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or (k != "settle" and v == 0):
            errors.append(f"{key}: must be a number of seconds {'≥ 0' if k == 'settle' else '> 0'}, got {v!r}")
    return errors


def from_config(capture: Callable[[], Future], hooks: Hooks, cfg: dict | None, **kw) -> AutoRoll:
    """An AutoRoll from the `autoroll:` config mapping (validated) and the camera's capture."""
    c = dict(AUTOROLL_DEFAULTS)
    c.update(cfg or {})
    ar = AutoRoll(capture, hooks, settle=c["settle"], capture_timeout=c["capture_timeout"],
                  advance_timeout=c["advance_timeout"], **kw)
    ar.default_frames = int(c["frames"])
    return ar


def commands(controller: AutoRoll) -> dict[str, Callable]:
    """Control-socket commands: {name: fn(**kw) -> JSON-able}.

    roll_auto(frames=None → autoroll.frames, settle=None) → snapshot;  roll_stop() → snapshot;
    roll_auto_status() → snapshot.
    """
    def roll_auto(frames: int | None = None, settle: float | None = None, **_):
        return controller.start(frames=None if frames is None else int(frames), settle=settle)

    def roll_stop(**_):
        return controller.stop(STOPPED)

    def roll_auto_status(**_):
        return controller.snapshot()

    return {"roll_auto": roll_auto, "roll_stop": roll_stop, "roll_auto_status": roll_auto_status}


def register(app, controller: AutoRoll, name: str = "autoroll") -> AutoRoll:
    """Plug the controller into the daemon: a service (stopped with the app) answering its
    commands, and progress events {"type": "autoroll", "autoroll": snapshot} on the app's bus."""
    if controller.on_change is None and hasattr(app, "publish"):
        controller.on_change = lambda snap: app.publish({"type": "autoroll", "autoroll": snap})
    app.register_service(_Service(controller, name))
    return controller


class _Service:
    """The auto-roll as a boundary.Service."""

    def __init__(self, controller: AutoRoll, name: str = "autoroll"):
        self.controller = controller
        self.name = name

    def start(self):
        pass

    def stop(self):
        self.controller.stop("daemon stopping")
        self.controller.wait(self.controller.capture_timeout + 5)

    def snapshot(self):
        return self.controller.snapshot()

    def commands(self) -> dict:
        return commands(self.controller)


class _NoCamera:
    """Without a camera the auto-roll's commands answer why they cannot run."""
    name = "autoroll"

    def start(self):
        pass

    def stop(self):
        pass

    def snapshot(self):
        return None

    def commands(self) -> dict:
        def no_camera(**_):
            raise RuntimeError("auto-roll needs a camera: set camera.port in the config")

        return {n: no_camera for n in ("roll_auto", "roll_stop", "roll_auto_status")}


def attach(app, hooks=None) -> AutoRoll | None:
    """The daemon plug-in: an auto-roll on the app's camera service (`app.service("camera")`,
    a station.capture.service.CaptureService) with the app's hook runner
    (`app.service("hooks")`).  Attach after station.capture.service and station.hooks.

    Commands roll_auto / roll_stop / roll_auto_status; service "autoroll" (its snapshot
    is the progress); {"type": "autoroll"} events; while an auto-roll runs, a pedal press
    stops it (the capture service's `pedal_action`), otherwise the pedal captures as before.
    """
    cam = app.service("camera")
    hooks = hooks or app.service("hooks")
    if cam is None or not hasattr(cam, "camera"):
        app.register_service(_NoCamera())
        return None

    def roll_name():
        roll = cam.snapshot().roll
        return roll.name if roll else None

    controller = from_config(cam.camera.capture, hooks, app.cfg.get("autoroll"), roll=roll_name)

    def on_change(snap: dict) -> None:
        # the pedal stops a running auto-roll; otherwise it is the capture service's again
        if snap["running"]:
            cam.pedal_action = controller.pedal
        elif getattr(cam, "pedal_action", None) == controller.pedal:
            cam.pedal_action = None
        app.publish({"type": "autoroll", "autoroll": snap})

    controller.on_change = on_change
    register(app, controller)
    return controller
