"""Small helpers the test files share (tests/ is on sys.path: `from helpers import ...`)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def wait_for(pred, deadline: float = 60.0, step: float = 0.05):
    """Poll `pred` until it is truthy or `deadline` seconds pass; returns its last value."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()



def run_station_config(cfg: Path, *extra: str) -> subprocess.CompletedProcess:
    """`station run --config CFG EXTRA...` as a subprocess (no STATION_CONFIG), to its exit."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("STATION_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "station", "run", "--config", str(cfg), *extra], env=env,
                          capture_output=True, text=True, timeout=60)


def config_dirs(root: Path) -> dict:
    """A raw config whose incoming/output/state folders exist under `root` (in, out, st)."""
    d = {k: Path(root) / k for k in ("in", "out", "st")}
    for p in d.values():
        p.mkdir(parents=True)
    return {"paths": {"incoming": str(d["in"]), "output": str(d["out"]), "state": str(d["st"])}}


class PluginHost:
    """What a plug-in's attach(app) uses of the App, recorded: for unit tests of one
    plug-in (the real App is tested with plug-ins in test_daemon_app.py and the daemon tests)."""

    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.services: dict = {}
        self.subs: list = []
        self.commands: dict = {}
        self.published: list = []

    def service(self, name):
        return self.services.get(name)

    def register_service(self, obj):  # as App.register_service: a boundary.Service, its commands
        from station.boundary import missing_members

        assert not missing_members(obj), missing_members(obj)
        self.services[obj.name] = obj
        for n, fn in obj.commands().items():
            self.register_command(n, fn)

    def subscribe(self, cb):
        self.subs.append(cb)

    def register_command(self, name, fn):
        self.commands[name] = fn

    def publish(self, ev):
        self.published.append(ev)


def run_app(app, body, started: float = 60.0) -> list[BaseException]:
    """Run the real App's main loop here (app.run() installs signal handlers: main thread only)
    while `body()` runs on another thread once the App is running; the App stops when body
    returns or raises.  The signal handlers are restored; returns what body raised ([] if nothing)."""
    import signal
    import threading

    errors: list[BaseException] = []

    def drive():
        try:
            if not wait_for(lambda: app.running, started):
                raise AssertionError("the App did not start")
            body()
        except BaseException as exc:  # reported to the caller, in the main thread
            errors.append(exc)
        finally:
            app.request_stop()

    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    t = threading.Thread(target=drive, daemon=True)
    t.start()
    try:
        app.run()
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
    t.join(10)
    return errors
