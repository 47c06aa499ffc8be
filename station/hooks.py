"""Event hooks: user commands run on station events, in the spirit of gphoto2's `--hook-script`.

Config (YAML)::

    hooks:
      positive_ready: "rsync -a \"$STATION_POSITIVE\" nas:/scans/$STATION_ROLL/"
      advance: ["/usr/local/bin/advance-film", "--one"]      # a list of arguments, no shell
      error: {command: "notify-send station \"$STATION_REASON\"", timeout: 5}

A value is a string (run through ``/bin/sh -c``), a list of strings (run as is) or a
mapping ``{command: STRING|LIST, timeout: SECONDS}``.  Events are listed in `EVENTS`.
Every hook gets the whole environment of the daemon plus, always defined (empty when
unknown): STATION_EVENT, STATION_ROLL, STATION_FRAME, STATION_RAW, STATION_POSITIVE,
STATION_REASON (and STATION_CHECKS, a JSON list, for `frame_flagged`).

`HookRunner.fire(event, ...)` never blocks: the hook runs on a worker thread of its own
event (so a hanging `positive_ready` hook delays neither capture, nor inversion, nor
the hooks of other events; hooks of one event run in order).  A hook that outlives its
timeout has its whole process group terminated (SIGTERM, then SIGKILL after a grace
period); failures and timeouts are logged and counted, never raised.

`HookRunner.run_sync(event, env, timeout) -> exit code` runs a hook in the caller's
thread and waits (the auto-roll's `advance` hook).
"""
from __future__ import annotations

import json
import logging
import os
import queue
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

log = logging.getLogger("station.hooks")

EVENTS = (
    "frame_captured",  # a RAW is downloaded into incoming/ (STATION_RAW)
    "positive_ready",  # once per frame, after its master is written (STATION_POSITIVE)
    "frame_flagged",  # a frame check found something (STATION_REASON, STATION_CHECKS)
    "roll_started",  # a new roll begins (STATION_ROLL)
    "roll_complete",  # a roll ends (STATION_REASON: why)
    "error",  # a frame failed, a capture failed, an advance hook failed (STATION_REASON)
    "advance",  # auto-roll: move the film by one frame; exit 0 = done, 3 = end of film
)
VARIABLES = ("STATION_EVENT", "STATION_ROLL", "STATION_FRAME", "STATION_RAW", "STATION_POSITIVE", "STATION_REASON")

DEFAULT_TIMEOUT = 30.0  # seconds, per hook run
DEFAULT_TIMEOUTS = {"advance": 60.0}
KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL of a timed-out hook's process group
EXIT_NOT_STARTED = 127  # the command could not be started (as the shell says)
QUEUE_LIMIT = 256  # pending runs per event; beyond that new runs are dropped (logged)


@dataclass
class HookSpec:
    event: str
    argv: list[str]
    shell: bool
    timeout: float

    @property
    def display(self) -> str:
        return self.argv[2] if self.shell else " ".join(self.argv)


@dataclass
class HookResult:
    event: str
    command: str
    returncode: int | None  # None when the hook timed out and was killed
    timed_out: bool
    duration: float
    output: str  # last lines of stdout+stderr
    env: dict = field(default_factory=dict)  # the STATION_* variables it got

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


# -- configuration ------------------------------------------------------------------------

def _command_errors(key: str, cmd) -> list[str]:
    if isinstance(cmd, str):
        return [] if cmd.strip() else [f"{key}: empty command"]
    if isinstance(cmd, list):
        if not cmd:
            return [f"{key}: empty argument list"]
        if not all(isinstance(a, str) for a in cmd):
            return [f"{key}: every argument must be a string"]
        return []
    return [f"{key}: must be a string (run by the shell), a list of arguments or a mapping with 'command', "
            f"got {type(cmd).__name__}"]


def validate_hooks_config(obj) -> list[str]:
    """Errors in a `hooks:` config value, one line each naming the key ([] when valid)."""
    if obj is None:
        return []
    if not isinstance(obj, dict):
        return [f"hooks: must be a mapping of event to command, got {type(obj).__name__}"]
    errors = []
    for event, value in obj.items():
        key = f"hooks.{event}"
        if not isinstance(event, str) or event not in EVENTS:
            errors.append(f"{key}: unknown event (known: {', '.join(EVENTS)})")
            continue
        if isinstance(value, dict):
            extra = set(value) - {"command", "timeout"}
            if extra:
                errors.append(f"{key}: unknown key(s) {', '.join(sorted(map(str, extra)))} (allowed: command, timeout)")
            if "command" not in value:
                errors.append(f"{key}.command: missing")
            else:
                errors += _command_errors(f"{key}.command", value["command"])
            if "timeout" in value:
                t = value["timeout"]
                if isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0:
                    errors.append(f"{key}.timeout: must be a positive number of seconds, got {t!r}")
        else:
            errors += _command_errors(key, value)
    return errors


def parse_hooks(obj, default_timeout: float = DEFAULT_TIMEOUT) -> dict[str, HookSpec]:
    """Config value → {event: HookSpec}; raises ValueError with the first error."""
    errors = validate_hooks_config(obj)
    if errors:
        raise ValueError(errors[0])
    specs = {}
    for event, value in (obj or {}).items():
        timeout = DEFAULT_TIMEOUTS.get(event, default_timeout)
        if isinstance(value, dict):
            timeout = float(value.get("timeout", timeout))
            value = value["command"]
        if isinstance(value, str):
            specs[event] = HookSpec(event, ["/bin/sh", "-c", value], True, timeout)
        else:
            specs[event] = HookSpec(event, list(value), False, timeout)
    return specs


def hook_env(event: str, roll=None, frame=None, raw=None, positive=None, reason=None, **extra) -> dict[str, str]:
    """The STATION_* variables of one event (all defined; '' when unknown)."""
    env = {
        "STATION_EVENT": event,
        "STATION_ROLL": "" if roll is None else str(roll),
        "STATION_FRAME": "" if frame is None else str(frame),
        "STATION_RAW": "" if raw is None else str(raw),
        "STATION_POSITIVE": "" if positive is None else str(positive),
        "STATION_REASON": "" if reason is None else str(reason),
    }
    for k, v in extra.items():
        if v is None:
            continue
        env["STATION_" + k.upper()] = v if isinstance(v, str) else json.dumps(v)
    return env


# -- running ------------------------------------------------------------------------------

def _kill_group(proc: subprocess.Popen, grace: float) -> None:
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=wait)
            # The leader is gone; make sure no child of the group lingers either.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            return
        except subprocess.TimeoutExpired:
            continue


def run_hook(spec: HookSpec, env: dict[str, str], timeout: float | None = None, base_env: dict | None = None,
             grace: float = KILL_GRACE) -> HookResult:
    """Run one hook in this thread; wait for it (or kill its process group at the timeout)."""
    timeout = spec.timeout if timeout is None else timeout
    full_env = dict(os.environ if base_env is None else base_env)
    full_env.pop("NOTIFY_SOCKET", None)  # a hook must not talk to systemd as the daemon
    full_env.update(env)
    t0 = time.monotonic()
    # Output goes to a file, not a pipe: a grandchild that keeps a pipe open cannot hang us.
    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.Popen(spec.argv, env=full_env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        except OSError as exc:
            return HookResult(spec.event, spec.display, EXIT_NOT_STARTED, False, time.monotonic() - t0,
                              f"cannot start: {exc}", env)
        timed_out = False
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc, grace)
            rc = None
        out.seek(0, os.SEEK_END)
        size = out.tell()
        out.seek(max(0, size - 2000))
        text = out.read().decode("utf-8", "replace")
    tail = "\n".join(text.strip().splitlines()[-10:])
    return HookResult(spec.event, spec.display, rc, timed_out, time.monotonic() - t0, tail, env)


class HookRunner:
    """Runs the configured hooks (a boundary.Service named "hooks").  Thread-safe; `start()`/`stop()` for the daemon's service list.

    on_result(HookResult) is called (on the hook's worker thread) after every run, so the
    daemon can publish failures to its status and journal.
    """

    def __init__(self, hooks=None, default_timeout: float = DEFAULT_TIMEOUT, base_env: dict | None = None,
                 on_result=None, grace: float = KILL_GRACE, raw_root=None):
        self.raw_root = raw_root  # folder the daemon's relative frame paths are under (incoming/)
        self.specs = parse_hooks(hooks, default_timeout)
        self.base_env = base_env
        self.on_result = on_result
        self.grace = grace
        self._queues: dict[str, queue.Queue] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stopping = False
        self._stats = {e: {"runs": 0, "failures": 0, "timeouts": 0, "dropped": 0, "last": None} for e in self.specs}
        self._recent: deque = deque(maxlen=20)
        self._positive_seen: dict[str, None] = {}  # frames whose positive_ready already fired (ordered set)

    def configured(self, event: str) -> bool:
        return event in self.specs

    # -- service protocol
    name = "hooks"

    def commands(self) -> dict:
        return {"hooks": lambda **_: self.snapshot()}

    def start(self) -> None:
        pass  # workers start lazily, one per event, on the first fire()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting runs; let the workers finish what is queued (each run has its timeout)."""
        with self._lock:
            self._stopping = True
            threads = list(self._threads.values())
            for q in self._queues.values():
                q.put(None)
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))

    # -- asynchronous
    def fire(self, event: str, env: dict | None = None, **variables) -> Future | None:
        """Queue the hook of `event` (if one is configured) and return at once.

        Variables: roll, frame, raw, positive, reason (and extras → STATION_<NAME>), or a
        ready `env` dict.  Returns a Future of the HookResult, None when no hook is
        configured, the runner is stopping or the event's queue is full.
        """
        if event not in EVENTS:
            raise ValueError(f"unknown hook event {event!r}")
        spec = self.specs.get(event)
        if spec is None:
            return None
        env = dict(env) if env is not None else hook_env(event, **variables)
        env["STATION_EVENT"] = event
        fut: Future = Future()
        with self._lock:
            if self._stopping:
                return None
            q = self._queues.get(event)
            if q is None:
                q = self._queues[event] = queue.Queue(maxsize=QUEUE_LIMIT)
                t = threading.Thread(target=self._worker, args=(q,), name=f"hook-{event}", daemon=True)
                self._threads[event] = t
                t.start()
            try:
                q.put_nowait((spec, env, fut))
            except queue.Full:
                self._stats[event]["dropped"] += 1
                log.error("hook %s: %d runs already waiting, this one is dropped", event, QUEUE_LIMIT)
                return None
        return fut

    def _worker(self, q: queue.Queue) -> None:
        while True:
            item = q.get()
            if item is None:
                return
            spec, env, fut = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                res = self._run(spec, env, None)
            except Exception as exc:  # never let a hook kill the worker
                log.exception("hook %s crashed the runner", spec.event)
                fut.set_exception(exc)
                continue
            fut.set_result(res)

    # -- synchronous
    def run_sync(self, event: str, env: dict | None = None, timeout: float | None = None, **variables) -> int | None:
        """Run the hook of `event` now, in this thread, and return its exit code.

        None when no hook is configured for the event; None also when it timed out (it is
        killed; see `run_sync_result` for the details), EXIT_NOT_STARTED (127) when the
        command cannot be started.
        """
        res = self.run_sync_result(event, env, timeout, **variables)
        return None if res is None else res.returncode

    def run_sync_result(self, event: str, env: dict | None = None, timeout: float | None = None,
                        **variables) -> HookResult | None:
        spec = self.specs.get(event)
        if spec is None:
            return None
        full = hook_env(event, **variables)
        if env:
            full.update(env)
        full["STATION_EVENT"] = event
        return self._run(spec, full, timeout)

    def _run(self, spec: HookSpec, env: dict, timeout) -> HookResult:
        res = run_hook(spec, env, timeout, self.base_env, self.grace)
        st = self._stats[spec.event]
        with self._lock:
            st["runs"] += 1
            st["failures"] += 0 if res.ok else 1
            st["timeouts"] += 1 if res.timed_out else 0
            st["last"] = {"returncode": res.returncode, "timed_out": res.timed_out,
                          "duration": round(res.duration, 3), "time": time.time()}
            if not res.ok:
                self._recent.append({"event": spec.event, "command": res.command, "returncode": res.returncode,
                                     "timed_out": res.timed_out, "output": res.output[-500:], "time": time.time()})
        if res.timed_out:
            log.error("hook %s (%s) timed out after %.0f s and was killed%s", spec.event, res.command,
                      spec.timeout if timeout is None else timeout, _fmt_out(res.output))
        elif res.returncode == EXIT_NOT_STARTED and res.output.startswith("cannot start"):
            log.error("hook %s (%s): %s", spec.event, res.command, res.output)
        elif res.returncode != 0:
            log.error("hook %s (%s) exited with status %s%s", spec.event, res.command, res.returncode,
                      _fmt_out(res.output))
        else:
            log.info("hook %s done (%.2f s)", spec.event, res.duration)
        if self.on_result is not None:
            try:
                self.on_result(res)
            except Exception:
                log.exception("hook on_result callback failed")
        return res

    def snapshot(self) -> dict:
        """JSON-able state for `station status`: per-event counts and the recent failures."""
        with self._lock:
            return {
                "configured": {e: s.display for e, s in self.specs.items()},
                "events": {e: dict(v) for e, v in self._stats.items()},
                "pending": {e: q.qsize() for e, q in self._queues.items()},
                "recent_failures": list(self._recent),
            }

    # -- adapter for the daemon's event bus (app.subscribe) ------------------------------
    def on_app_event(self, ev: dict) -> None:
        """Subscriber for the daemon's `app.subscribe`: journal transitions → hooks.

        {"type": "frame", "frame": {state: "master_written", ...}} fires `positive_ready`
        once per frame (STATION_POSITIVE = the TIFF master, else the JPEG, else the
        preview); state "failed" fires `error`.  Other event types are ignored.
        """
        if ev.get("type") == "roll" and ev.get("event") == "new":
            self.fire("roll_started", roll=ev.get("roll"))
            return
        if ev.get("type") == "camera" and ev.get("event") == "file":
            # the capture service downloaded a file: frame_captured, once per RAW
            if ev.get("kind") in ("raw", None) and ev.get("path"):
                path = str(ev["path"])
                self.fire("frame_captured", roll=self._roll_of(path), frame=_frame_name(path), raw=path)
            return
        if ev.get("type") != "frame":
            return
        fr = ev.get("frame") or {}
        path = fr.get("path")
        state = fr.get("state")
        if state == "master_written" and path:
            with self._lock:
                if path in self._positive_seen:
                    return
                self._positive_seen[path] = None
                while len(self._positive_seen) > 10000:
                    self._positive_seen.pop(next(iter(self._positive_seen)))
            positive = fr.get("tiff") or fr.get("jpeg") or fr.get("preview")
            self.fire("positive_ready", roll=fr.get("roll"), frame=_frame_name(path), raw=self._raw(path),
                      positive=positive)
        elif state == "failed":
            self.fire("error", roll=fr.get("roll"), frame=_frame_name(path) if path else None,
                      raw=self._raw(path) if path else None, reason=fr.get("reason"))

    def _roll_of(self, path: str) -> str | None:
        """The roll of a file in incoming/: its first folder (rolls are `{roll}/{frame:02d}`)."""
        if self.raw_root is None:
            return None
        try:
            rel = os.path.relpath(path, str(self.raw_root))
        except ValueError:
            return None
        parts = rel.split(os.sep)
        return parts[0] if len(parts) > 1 and parts[0] != ".." else None

    def _raw(self, path: str) -> str:
        if self.raw_root is None or os.path.isabs(path):
            return str(path)
        return os.path.join(str(self.raw_root), str(path))


def _frame_name(path: str) -> str:
    name = os.path.basename(str(path))
    return name.split(".", 1)[0] if name else ""


def _fmt_out(text: str) -> str:
    return f"; output: {text.splitlines()[-1][:300]}" if text.strip() else ""


def register(app, runner: HookRunner) -> HookRunner:
    """Plug the runner into the daemon: a service (stopped with the app, its `hooks` status
    command) and a subscriber that turns the app's events into hooks: journal transitions
    into `positive_ready` / `error`, a new roll into `roll_started`, a download into
    `frame_captured`."""
    app.register_service(runner)
    app.subscribe(runner.on_app_event)
    return runner


def attach(app) -> HookRunner:
    """The daemon plug-in (`station run` calls `attach(app)` of each plug-in module).

    Builds the runner from `app.cfg["hooks"]` and registers it (service "hooks", the
    event-bus subscriber, the `hooks` status command).
    """
    cfg = app.cfg
    runner = HookRunner(cfg.get("hooks") or {}, raw_root=cfg["paths"]["incoming"],
                        on_result=lambda res: _publish_failure(app, res))
    register(app, runner)
    return runner


def _publish_failure(app, res: HookResult) -> None:
    if not res.ok and hasattr(app, "publish"):
        app.publish({"type": "hook", "event": res.event, "command": res.command, "returncode": res.returncode,
                     "timed_out": res.timed_out, "output": res.output[-500:]})
