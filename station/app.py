"""The application: builds the daemon's parts, starts them, stops them in reverse.

Its boundary is typed (station/boundary.py): what it publishes is a `Snapshot`,
and every part it runs beside its own (camera, hooks, auto-roll, checks, live
view, the web page) is a `Service`.

    app.register_service(svc)              # a boundary.Service: svc.name unique, its commands()
                                           # registered (a name taken twice is an error);
                                           # started with the app (or at once if already
                                           # running), stopped in reverse order.
                                           # name "camera" makes it the camera: its snapshot()
                                           # is the CameraState, it answers capture/roll_new/calibrate.
    app.register_command(name, fn)         # a command no service owns: fn(**kw) -> JSON-able
    app.command(name, **kw) -> JSON-able   # what the control socket and the web page call;
                                           # raises CommandError (one-line message)
    app.command("reinvert", path=KEY, reason=TEXT)  # re-render one frame from its RAW with the
                                           # current settings, replacing its outputs
                                           # (`Processor.rerender`, callable directly too)
    app.command("set_print", path=KEY | roll=NAME, settings={...}, neutral={x, y}, reset=False)
                                           # store a frame's / a roll's print and re-render
                                           # (daemon/prints.py); get_print(path=KEY) reads it
    app.commands() -> [name]               # every command the app answers now
    app.state() -> Snapshot                # typed state (see boundary.py)
    app.snapshot() -> dict                 # its JSON form (`station status --json`)
    app.subscribe(callback) -> unsubscribe # callback(event: dict), called on one
                                           # dispatcher thread, never under a lock
    app.publish(event: dict)               # services announce their own changes

Events: {"type": "frame", "frame": FrameView.to_dict()} on every journal transition,
{"type": "job", "path", "stage", "state": "started"}, {"type": "queue", "queue": {...}},
{"type": "camera", ...} and {"type": "roll", "event": "new"|"calibrated", "roll"}
(published by the camera service), {"type": "checks", ...}, {"type": "stopping"}.

The plug-ins `station run` attaches are declared in one list, station/plugins.py.
"""
from __future__ import annotations

import logging
import os
import queue as queue_mod
import re
import signal
import threading
import time
from pathlib import Path

from station import sdnotify
from station.boundary import CameraState, QueueState, Snapshot, FrameView, missing_members
from station.daemon.processor import Processor, frame_view
from station.daemon.workers import WorkerPool
from station.ingest.jobs import MASTER, PREVIEW, JobQueue
from station.ingest.tracker import StabilityTracker
from station.ingest.watcher import Watcher, scan
from station.journal import Journal

log = logging.getLogger("station")


class CommandError(Exception):
    """A command that cannot be done; the message is one line for the user."""


BUILTIN_COMMANDS = ("status", "ping", "retry", "reinvert", "set_print", "get_print", "frames")
# commands the camera service answers; without one they refuse with this line
CAMERA_COMMANDS = {
    "capture": "no camera configured",
    "roll_new": "no roll service configured (rolls come with the camera service: set camera.port)",
    "calibrate": "no camera configured (calibrating the base shoots a blank frame)",
    "flatfield": "no camera configured (the flat field shoots a frame of the bare light)",
}


class App:
    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.started_at = time.time()
        self.services: list[tuple[str | None, object]] = []
        self._commands: dict = {}
        self._subscribers: list = []
        self._sub_lock = threading.Lock()
        self._events: queue_mod.Queue = queue_mod.Queue()
        self._stop = threading.Event()
        self._running = False
        self._started: list = []
        paths = cfg["paths"]
        self.journal = Journal(Path(paths["state"]) / "journal.sqlite")
        self.queue = JobQueue()
        self.processor = Processor(cfg, self.journal, self.queue, publish=self.publish)
        from station.daemon.prints import PrintBook

        self.prints = PrintBook(cfg, self.journal, self.processor)
        w = cfg["workers"]
        inv = cfg["inversion"]
        out = cfg["outputs"]
        self.pool = WorkerPool(
            self.queue,
            {"method": inv["method"], "model": str(inv["model"]) if inv["model"] else None,
             "base": str(inv["base"]) if inv["base"] else None,
             "flatfield": str(inv["flatfield"]) if inv.get("flatfield") else None,
             "preview_size": out["preview_size"], "jpeg_quality": out["jpeg_quality"],
             "colour_space": out.get("colour_space", "srgb"), "jpeg_colour_space": out.get("jpeg_colour_space", "srgb"),
             "checks": dict(cfg.get("checks") or {})},
            count=w["count"], start_method=w["start_method"],
            deadlines={PREVIEW: w["preview_deadline"], MASTER: w["master_deadline"]},
            on_result=self._on_result, on_start=self.processor.on_start, on_metrics=self.processor.on_metrics,
            base_for=self.processor.base_for, print_for=self.prints.for_job,
            roll_for=self.processor.roll_for, stages_in_use=self.processor.stages,
        )
        wa = cfg["watcher"]
        self.tracker = StabilityTracker(wa["stable_seconds"])
        self.inbox: queue_mod.Queue = queue_mod.Queue()
        self.watcher = Watcher(paths["incoming"], self.inbox, polling=wa["polling"], poll_interval=wa["poll_interval"])
        self.control = None
        self._last_status = None
        self.subscribe(self._store_checks)

    def _store_checks(self, ev: dict) -> None:
        """The frame checks' findings ({"type": "checks"}, from the checks service) go to the
        frame's journal row (and so to the snapshot, `station status --json` and the page)."""
        if ev.get("type") == "checks" and ev.get("path"):
            self.processor.record_checks(ev["path"], ev.get("findings") or [])

    # -- plug-in API -------------------------------------------------------------------
    def register_service(self, svc, name: str | None = None) -> None:
        """Add a `boundary.Service`; its commands become the app's.  `name` (optional) must
        equal svc.name when given.  Raises TypeError/ValueError for a service that breaks
        the protocol, a name or a command already taken."""
        missing = missing_members(svc)
        if missing:
            raise TypeError(f"{svc!r} is not a station service: it lacks {', '.join(missing)}")
        if name is not None and name != svc.name:
            raise ValueError(f"service {svc!r} is named {svc.name!r}, registered as {name!r}")
        if self.service(svc.name) is not None:
            raise ValueError(f"a service named {svc.name!r} is registered already")
        cmds = dict(svc.commands() or {})
        for cmd in cmds:
            if cmd in self._commands or cmd in BUILTIN_COMMANDS:
                raise ValueError(f"service {svc.name!r}: command {cmd!r} is answered already")
        self.services.append((svc.name, svc))
        self._commands.update(cmds)
        if self._running:
            svc.start()
            self._started.append(svc)

    def service(self, name: str):
        for n, obj in self.services:
            if n == name:
                return obj
        return None

    def register_command(self, name: str, fn) -> None:
        """A command no service owns (e.g. a refusal that names what is missing)."""
        if name in self._commands or name in BUILTIN_COMMANDS:
            raise ValueError(f"command {name!r} is answered already")
        self._commands[name] = fn

    def commands(self) -> list[str]:
        """Every command the app answers (a camera command without a camera answers a refusal)."""
        return sorted({*BUILTIN_COMMANDS, *CAMERA_COMMANDS, *self._commands})

    def subscribe(self, callback):
        with self._sub_lock:
            self._subscribers.append(callback)

        def unsubscribe():
            with self._sub_lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def publish(self, event: dict) -> None:
        event = dict(event)
        event.setdefault("time", time.time())
        self._events.put(event)

    def _dispatch_events(self) -> None:
        while True:
            ev = self._events.get()
            if ev is None:
                return
            with self._sub_lock:
                subs = list(self._subscribers)
            for cb in subs:
                try:
                    cb(ev)
                except Exception:
                    log.exception("subscriber %r failed", cb)

    def command(self, name: str, /, **kw):
        if name in self._commands:
            return self._commands[name](**kw)
        if name == "status":
            return self.snapshot()
        if name == "ping":
            return "pong"
        if name == "retry":
            paths = kw.get("paths")
            if paths is not None and (not isinstance(paths, list) or not all(isinstance(p, str) for p in paths)):
                raise CommandError("retry: paths must be a list of frame paths")
            done = self.processor.retry(paths or None)
            return {"requeued": done}
        if name == "reinvert":
            key = kw.get("path") or kw.get("frame") or kw.get("key")
            if not isinstance(key, str) or not key:
                raise CommandError("reinvert: which frame? (path: the frame's path in the incoming folder)")
            try:
                return self.processor.rerender(key, str(kw.get("reason") or "re-invert asked"))
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        if name in ("set_print", "get_print"):
            try:
                return getattr(self.prints, name)(**kw)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        if name == "frames":
            limit = int(kw.get("limit", 100))
            return [frame_view(r) for r in self.journal.frames(limit=limit, newest_first=True)]
        if name in CAMERA_COMMANDS:
            raise CommandError(CAMERA_COMMANDS[name])
        raise CommandError(f"unknown command {name!r} (known: {', '.join(self.commands())})")

    def camera_state(self) -> CameraState:
        cam = self.service("camera")
        if cam is None:
            return CameraState(state="none", port=self.cfg["camera"]["port"])
        try:
            st = cam.snapshot()
        except Exception as exc:  # a camera's state must never break status
            return CameraState(state="error", port=self.cfg["camera"]["port"], last_error=str(exc))
        if not isinstance(st, CameraState):
            return CameraState(state="error", port=self.cfg["camera"]["port"],
                               last_error=f"the camera service reported {type(st).__name__}, not a CameraState")
        return st

    def state(self) -> Snapshot:
        """The station now, typed (boundary.Snapshot)."""
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
            services=self._service_snapshots(),
            renderings=self.processor.rolls.snapshot(),
        )

    def snapshot(self) -> dict:
        """JSON-able state of the station (`state().to_dict()`)."""
        return self.state().to_dict()

    def _service_snapshots(self) -> dict:
        """Each service's part (the camera's is `camera`); a failing one reports its error."""
        out = {}
        for name, svc in self.services:
            if name == "camera":
                continue
            try:
                part = svc.snapshot()
            except Exception as exc:  # a plug-in's state must never break status
                part = {"error": str(exc)}
            if part is not None:
                out[name] = part
        return out

    # -- life cycle ------------------------------------------------------------------------
    def _on_result(self, job, res) -> None:
        if not res.get("ok") and res.get("reason") in ("decoder crashed", "timed out"):
            # a worker killed mid-write leaves its dot-temporary beside the output: remove it now,
            # not at the next daemon start
            self._clean_temporaries({os.path.dirname(str(p)) for p in (job.outputs or {}).values()})
        self.processor.on_result(job, res)
        self.publish({"type": "queue", "queue": self.queue.counts()})

    def _clean_temporaries(self, folders=None) -> None:
        """Remove the dot-temporaries our writers leave when killed mid-write
        (`.<name>.<pid>.tmp` or `.part` under the output folder, or only in `folders`; only
        ours, only dead pids)."""
        pat = re.compile(r"^\..+\.(\d+)\.(?:tmp|part)$")  # .part: a frame staged by write.publish_frame
        if folders is None:
            walk = ((d, f) for d, _, f in os.walk(self.cfg["paths"]["output"]))
        else:
            walk = ((d, os.listdir(d)) for d in folders if d and os.path.isdir(d))
        for dirpath, files in walk:
            for name in files:
                m = pat.match(name)
                if not m or _pid_alive(int(m.group(1))):
                    continue
                try:
                    os.unlink(os.path.join(dirpath, name))
                    log.info("removed a temporary left by a killed writer: %s", name)
                except OSError:
                    pass

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        from station.control import ControlServer

        # the socket first: a second daemon on the same state is refused before it does anything
        self.control = ControlServer(self.cfg["paths"]["socket"], self.command)
        self.control.start()
        self._started.append(self.control)
        self._clean_temporaries()
        self.start_events()
        self.pool.start()
        self._started.append(self.pool)
        self.watcher.start()  # before the rescan: nothing slips between the two
        self._started.append(self.watcher)
        self.start_services()
        self.rescan(startup=True)

    def start_events(self) -> None:
        """Start the event dispatcher (start() does; a harness without workers calls it alone)."""
        if not getattr(self, "_events_thread", None):
            self._events_thread = threading.Thread(target=self._dispatch_events, name="events", daemon=True)
            self._events_thread.start()

    def start_services(self) -> None:
        """Start the registered services in order; later ones start as they register."""
        for name, obj in list(self.services):
            if obj not in self._started:
                obj.start()
                self._started.append(obj)
        self._running = True

    def stop(self) -> None:
        self._running = False
        self.publish({"type": "stopping"})
        for obj in reversed(self._started):
            try:
                obj.stop()
            except Exception:
                log.exception("stopping %r failed", obj)
        self._started.clear()
        self._events.put(None)
        self._events_thread = None
        try:
            self.journal.close()
        except Exception:
            pass

    def request_stop(self) -> None:
        self._stop.set()

    def rescan(self, startup: bool = False, under: Path | None = None) -> int:
        """Find files the observer missed (or that arrived while we were down)."""
        incoming = Path(self.cfg["paths"]["incoming"])
        now = time.time()
        mono = time.monotonic()  # the tracker's clock: a wall clock step must not make a growing file look still
        n = 0
        for path, size, mtime in scan(incoming, under):
            rel = path.relative_to(incoming).as_posix()
            if self.queue.busy(rel) or self.processor.waiting(rel):
                continue
            row = self.journal.get(rel)
            if row is not None and row["size"] == size and abs((row["mtime"] or 0) - mtime) < 1e-6:
                if row["state"] in ("seen", "preview_written"):
                    self.processor.submit(path, row["t_complete"] or now)  # known complete: resume
                    n += 1
                continue  # done or failed with this very content
            n += self.tracker.found(str(path), mono, size, mtime)
        if startup:  # frames left unfinished whose RAW has gone meanwhile
            for state in ("seen", "preview_written"):
                for row in self.journal.frames(state):
                    if not (incoming / row["path"]).exists():
                        self.processor.fail(row["path"], "file disappeared before it was processed",
                                             PREVIEW if state == "seen" else MASTER)
        if n:
            log.info("%s: %d file(s) to take", "start-up scan" if startup else "rescan", n)
        return n

    def _handle_inbox(self, timeout: float) -> None:
        try:
            kind, path, t = self.inbox.get(timeout=timeout)
        except queue_mod.Empty:
            return
        while True:
            if kind in ("closed", "moved"):
                self.tracker.closed(path, t)
            elif kind in ("changed", "created"):
                st = _stat(path)
                if st is not None:
                    # inotify: writes mean a close event will come (long safety window); a
                    # creation with content already there and no write seen (a hard link, a
                    # file system without close events) gets the short stability window.
                    # (A file moved in from another folder arrives as "moved": complete.)
                    writer = not self.watcher.polling and (kind == "changed" or st[0] == 0)
                    self.tracker.changed(path, t, *st, expect_close=writer)
            elif kind == "gone":
                self.tracker.gone(path)
            elif kind == "rescan":
                self.rescan(under=Path(path))
            try:
                kind, path, t = self.inbox.get_nowait()
            except queue_mod.Empty:
                return

    def _status_line(self) -> str:
        q = self.queue.counts()
        lf = self.processor.last_frame
        last = "none"
        if lf:
            lat = lf.lat_preview
            last = f"{Path(lf.path).name} {lf.state}" + (f" {lat:.1f}s" if lat is not None else "")
        cam = self.camera_state().state
        c = self.journal.counts()
        return (f"queue {q[PREVIEW] + q[MASTER]} ({q[PREVIEW]} preview); last {last}; camera {cam}; "
                f"{c['master_written']} done, {c['failed']} failed")

    def run(self) -> int:
        """Run until SIGTERM/SIGINT.  Returns the exit status."""
        signal.signal(signal.SIGTERM, lambda *_: self.request_stop())
        signal.signal(signal.SIGINT, lambda *_: self.request_stop())
        signal.signal(signal.SIGUSR1, lambda *_: threading.Thread(target=self._sigusr1, daemon=True).start())
        self.start()
        sdnotify.notify("READY=1\nSTATUS=" + self._status_line())
        log.info("ready: %s -> %s (%d workers)", self.cfg["paths"]["incoming"], self.cfg["paths"]["output"],
                 len(self.pool.slots))
        wd = sdnotify.watchdog_interval()
        rescan_every = self.cfg["watcher"]["rescan_interval"]
        next_rescan = time.monotonic() + rescan_every if rescan_every else float("inf")
        next_wd = 0.0
        next_status = 0.0
        try:
            while not self._stop.is_set():
                self._handle_inbox(0.1)
                mono = time.monotonic()
                for path, t_complete in self.tracker.poll(mono, _stat):
                    try:
                        # the tracker and the watcher run on the monotonic clock (soak finding 6:
                        # a forward step of the wall clock took a slow writer's file mid-write);
                        # the journal keeps wall-clock times
                        self.processor.submit(Path(path), time.time() - (mono - t_complete))
                    except Exception:
                        log.exception("could not take %s", path)
                try:
                    self.processor.tick(mono)
                except Exception:
                    log.exception("processor timers failed")
                now = time.monotonic()
                if now >= next_rescan:
                    self.rescan()
                    next_rescan = now + rescan_every
                if wd and now >= next_wd:
                    sdnotify.notify("WATCHDOG=1")
                    next_wd = now + wd
                if now >= next_status:
                    line = self._status_line()
                    if line != self._last_status:
                        sdnotify.notify("STATUS=" + line)
                        self._last_status = line
                    next_status = now + 1.0
        finally:
            sdnotify.notify("STOPPING=1\nSTATUS=stopping after the frame in hand")
            log.info("stopping (finishing the frame in hand)")
            self.stop()
            log.info("stopped")
        return 0

    def _sigusr1(self) -> None:
        try:
            res = self.command("capture")
            log.info("SIGUSR1 capture: %s", res)
        except Exception as exc:
            log.error("SIGUSR1 capture refused: %s", exc)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stat(path: str):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime
