"""`station run`: the daemon."""
from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger("station")


def add_config_args(p, with_paths: bool = True, suppress: bool = False) -> None:
    """--config and the path flags every command takes.  `suppress`: for a sub-action's parser
    when its parent has them too (a flag given before the action is not reset after it)."""
    kw = {"default": argparse.SUPPRESS} if suppress else {}
    p.add_argument("--config", metavar="FILE", help="config file (default: $STATION_CONFIG, "
                   "/etc/station/station.yaml, ~/.config/station/station.yaml)", **kw)
    if with_paths:
        p.add_argument("--incoming", metavar="DIR", help="folder the RAWs land in (paths.incoming)", **kw)
        p.add_argument("--output", metavar="DIR", help="folder for the positives (paths.output)", **kw)
    p.add_argument("--state", metavar="DIR", help="folder for the journal, rolls and socket (paths.state)", **kw)
    p.add_argument("--socket", metavar="PATH", help="control socket (paths.socket)", **kw)


def client_paths(args) -> dict | None:
    """The folders and socket a client command (status, retry, roll, capture) works with:
    the config file (--config, $STATION_CONFIG, ...) with the flags on top, resolved as the
    daemon resolves them (`config.resolve_paths`), nothing created.  None after printing
    one line (the caller exits 2)."""
    from station.config import resolve_paths

    cfg = load_config(args, check_paths=False)
    return None if cfg is None else resolve_paths(cfg)


def daemon_socket(args):
    """The running daemon's control socket for this configuration: the first that exists of
    `config.socket_candidates`, else the first.  None after printing one line (exit 2)."""
    from station.config import socket_candidates

    cfg = load_config(args, check_paths=False)
    if cfg is None:
        return None
    cands = socket_candidates(cfg)
    return next((c for c in cands if c.exists()), cands[0])


def overrides_from(args) -> dict:
    o = {
        "paths.incoming": getattr(args, "incoming", None),
        "paths.output": getattr(args, "output", None),
        "paths.state": getattr(args, "state", None),
        "paths.socket": getattr(args, "socket", None),
        "camera.port": getattr(args, "camera", None),
        "web.address": getattr(args, "web", None),
    }
    if getattr(args, "workers", None) is not None:
        o["workers.count"] = args.workers
    if getattr(args, "polling", False):
        o["watcher.polling"] = True
    return o


def load_config(args, check_paths: bool = True):
    """Load and validate; on error print ONE line and return None (caller exits 2)."""
    from station.config import ConfigError, load

    try:
        return load(getattr(args, "config", None), overrides_from(args), check_paths=check_paths)
    except ConfigError as exc:
        print(f"station: {exc}", file=sys.stderr)
        return None


def register(subparsers) -> None:
    p = subparsers.add_parser("run", help="the daemon: watch the incoming folder and invert every RAW",
                              description="Watch the incoming folder; write <stem>.preview.jpg, then <stem>.tif "
                                          "and <stem>.jpg for every RAW.  Flags override the config file.")
    add_config_args(p)
    p.add_argument("--camera", metavar="PORT", help="camera port: auto, usb:..., ptpip:HOST[:PORT[:PORT]], off")
    p.add_argument("--web", metavar="ADDR", help="live view address HOST:PORT, or off")
    p.add_argument("--workers", type=int, metavar="N", help="decoder worker processes (workers.count)")
    p.add_argument("--polling", action="store_true", help="use the polling observer (network shares)")
    p.set_defaults(func=run)


def cap_workers(cfg: dict, flag: bool) -> None:
    """More decoder workers than CPU cores only slows every frame down: cap them at the
    cores (at least 2, so that one worker stays free for previews), saying so in one line."""
    import os

    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    n = cfg["workers"]["count"]
    limit = max(2, cores)
    if n > limit:
        print(f"station: {'--workers' if flag else 'workers.count:'} {n}: this machine has {cores} CPU core(s); "
              f"using {limit} workers", file=sys.stderr)
        cfg["workers"]["count"] = limit


def run(args) -> int:
    cfg = load_config(args)
    if cfg is None:
        return 2
    cap_workers(cfg, getattr(args, "workers", None) is not None)
    from station.app import App
    from station.control import ControlError
    from station.daemon.workers import WorkerConfigError

    try:
        app = App(cfg)
    except Exception as exc:
        print(f"station: cannot start: {exc}", file=sys.stderr)
        return 1
    from station.plugins import PluginError

    try:
        _plug_in_services(app)
    except (PluginError, ValueError, TypeError) as exc:
        print(f"station: cannot start: {exc}", file=sys.stderr)
        return 1
    try:
        return app.run()
    except WorkerConfigError as exc:  # the model or base frame named by the config is unusable
        print(f"station: {exc}", file=sys.stderr)
        return 2
    except ControlError as exc:
        print(f"station: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:  # workers that cannot start
        print(f"station: cannot start: {exc}", file=sys.stderr)
        return 1


def _plug_in_services(app) -> None:
    """The plug-ins of station/plugins.py (a missing one is an error)."""
    from station.plugins import attach_all

    attach_all(app)
