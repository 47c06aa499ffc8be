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

The App only wires and runs; each job is a part of its own (station/daemon/):
    events.EventBus          subscribe / publish, the dispatcher thread
    router.CommandRouter     the command table (the App's own in router.AppCommands,
                             each service's, the camera's refusals)
    snapshots.SnapshotBuilder  Snapshot / CameraState / the status line, read-only
    intake.Intake            watcher events, the stability tracker, rescans; and
                             intake.clean_temporaries (a killed writer's leftovers)
    processor.Processor      journal rows, jobs, results (daemon/processor.py)
"""
from __future__ import annotations

import logging
import os
import queue as queue_mod
import signal
import threading
import time
from pathlib import Path

from station import sdnotify
from station.boundary import CameraState, Snapshot, missing_members
from station.daemon.events import EventBus
from station.daemon.intake import Intake, clean_temporaries
from station.daemon.processor import Processor
from station.daemon.prints import PrintBook
from station.daemon.router import BUILTIN_COMMANDS, CAMERA_COMMANDS, AppCommands, CommandError, CommandRouter
from station.daemon.snapshots import SnapshotBuilder
from station.daemon.workers import WorkerPool
from station.ingest.jobs import MASTER, PREVIEW, JobQueue
from station.ingest.tracker import StabilityTracker
from station.ingest.watcher import Watcher
from station.journal import Journal

log = logging.getLogger("station")

__all__ = ["App", "CommandError", "BUILTIN_COMMANDS", "CAMERA_COMMANDS"]


def worker_settings(cfg: dict) -> dict:
    """What every worker process is started with (the config's inversion and outputs)."""
    inv, out = cfg["inversion"], cfg["outputs"]
    return {"method": inv["method"], "model": str(inv["model"]) if inv["model"] else None,
            "base": str(inv["base"]) if inv["base"] else None,
            "flatfield": str(inv["flatfield"]) if inv.get("flatfield") else None,
            "preview_size": out["preview_size"], "jpeg_quality": out["jpeg_quality"],
            "colour_space": out.get("colour_space", "srgb"), "jpeg_colour_space": out.get("jpeg_colour_space", "srgb"),
            "checks": dict(cfg.get("checks") or {})}


class App:
    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.started_at = time.time()
        self.services: list[tuple[str, object]] = []
        self._running = False
        self._started: list = []
        self._stop = threading.Event()
        self._last_status = None
        self.control = None
        self.bus = EventBus()
        paths, w, wa = cfg["paths"], cfg["workers"], cfg["watcher"]
        self.journal = Journal(Path(paths["state"]) / "journal.sqlite")
        self.queue = JobQueue()
        self.processor = Processor(cfg, self.journal, self.queue, publish=self.publish)
        self.prints = PrintBook(cfg, self.journal, self.processor)
        self.pool = WorkerPool(
            self.queue, worker_settings(cfg),
            count=w["count"], start_method=w["start_method"],
            deadlines={PREVIEW: w["preview_deadline"], MASTER: w["master_deadline"]},
            on_result=self._on_result, on_start=self.processor.on_start, on_metrics=self.processor.on_metrics,
            base_for=self.processor.base_for, print_for=self.prints.for_job,
            roll_for=self.processor.roll_for, stages_in_use=self.processor.stages,
        )
        self.tracker = StabilityTracker(wa["stable_seconds"])
        self.inbox: queue_mod.Queue = queue_mod.Queue()
        self.watcher = Watcher(paths["incoming"], self.inbox, polling=wa["polling"], poll_interval=wa["poll_interval"])
        self.intake = Intake(cfg, self.journal, self.queue, self.processor, self.tracker, self.watcher, self.inbox)
        self.snapshots = SnapshotBuilder(cfg, self.journal, self.queue, self.tracker, self.pool, self.processor,
                                         lambda: list(self.services), self.started_at)
        self.router = CommandRouter(AppCommands(self.processor, self.prints, self.journal, self.snapshot).table())
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
            if self.router.taken(cmd):
                raise ValueError(f"service {svc.name!r}: command {cmd!r} is answered already")
        self.services.append((svc.name, svc))
        for cmd, fn in cmds.items():
            self.router.add(cmd, fn, owner=svc.name)
        if self._running:
            svc.start()
            self._started.append(svc)

    def service(self, name: str):
        return self.snapshots.service(name)

    @property
    def running(self) -> bool:
        """True once the services are started (start_services), until stop()."""
        return self._running

    def register_command(self, name: str, fn) -> None:
        """A command no service owns (e.g. a refusal that names what is missing)."""
        self.router.add(name, fn)

    def commands(self) -> list[str]:
        """Every command the app answers (a camera command without a camera answers a refusal)."""
        return self.router.names()

    def command(self, name: str, /, **kw):
        """What the control socket and the page call; CommandError (one line) when refused."""
        return self.router.call(name, **kw)

    # -- events ------------------------------------------------------------------------
    def subscribe(self, callback):
        return self.bus.subscribe(callback)

    def publish(self, event: dict) -> None:
        self.bus.publish(event)

    @property
    def _subscribers(self) -> list:
        return self.bus.subscribers

    @property
    def _events(self) -> queue_mod.Queue:
        return self.bus.events

    def _dispatch_events(self) -> None:
        self.bus.dispatch()

    # -- state -------------------------------------------------------------------------
    def camera_state(self) -> CameraState:
        return self.snapshots.camera_state()

    def state(self) -> Snapshot:
        """The station now, typed (boundary.Snapshot)."""
        return self.snapshots.state()

    def snapshot(self) -> dict:
        """JSON-able state of the station (`state().to_dict()`)."""
        return self.state().to_dict()

    def rescan(self, startup: bool = False, under: Path | None = None) -> int:
        """Find files the observer missed (or that arrived while we were down)."""
        return self.intake.rescan(startup, under)

    # -- life cycle ------------------------------------------------------------------------
    def _on_result(self, job, res) -> None:
        if not res.get("ok") and res.get("reason") in ("decoder crashed", "timed out"):
            # a worker killed mid-write leaves its dot-temporary beside the output: remove it now,
            # not at the next daemon start
            clean_temporaries(None, {os.path.dirname(str(p)) for p in (job.outputs or {}).values()})
        self.processor.on_result(job, res)
        self.publish({"type": "queue", "queue": self.queue.counts()})

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
        clean_temporaries(self.cfg["paths"]["output"])
        self.start_events()
        self.pool.start()
        self._started.append(self.pool)
        self.watcher.start()  # before the rescan: nothing slips between the two
        self._started.append(self.watcher)
        self.start_services()
        self.rescan(startup=True)

    def start_events(self) -> None:
        """Start the event dispatcher (start() does; a harness without workers calls it alone)."""
        self.bus.start()

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
        self.bus.stop()
        try:
            self.journal.close()
        except Exception:
            pass

    def request_stop(self) -> None:
        self._stop.set()

    def run(self) -> int:
        """Run until SIGTERM/SIGINT.  Returns the exit status."""
        signal.signal(signal.SIGTERM, lambda *_: self.request_stop())
        signal.signal(signal.SIGINT, lambda *_: self.request_stop())
        signal.signal(signal.SIGUSR1, lambda *_: threading.Thread(target=self._sigusr1, daemon=True).start())
        self.start()
        sdnotify.notify("READY=1\nSTATUS=" + self.snapshots.status_line())
        log.info("ready: %s -> %s (%d workers)", self.cfg["paths"]["incoming"], self.cfg["paths"]["output"],
                 len(self.pool.slots))
        wd = sdnotify.watchdog_interval()
        rescan_every = self.cfg["watcher"]["rescan_interval"]
        next_rescan = time.monotonic() + rescan_every if rescan_every else float("inf")
        next_wd = 0.0
        next_status = 0.0
        try:
            while not self._stop.is_set():
                self.intake.step(0.1)
                now = time.monotonic()
                if now >= next_rescan:
                    self.rescan()
                    next_rescan = now + rescan_every
                if wd and now >= next_wd:
                    sdnotify.notify("WATCHDOG=1")
                    next_wd = now + wd
                if now >= next_status:
                    line = self.snapshots.status_line()
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
