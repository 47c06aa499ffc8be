"""`station status`: ask the running daemon."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def register(subparsers) -> None:
    from station.commands.run import add_config_args

    p = subparsers.add_parser("status", help="queue, last frame, latencies, camera, errors of the running daemon")
    add_config_args(p, with_paths=False)
    p.add_argument("--json", action="store_true", help="the whole snapshot as JSON")
    p.set_defaults(func=run)


def socket_path(args) -> Path | None:
    """The daemon's control socket (`commands.run.daemon_socket`)."""
    from station.commands.run import daemon_socket

    return daemon_socket(args)


def _fmt(v):
    return "-" if v is None else f"{v:.2f}s"


def run(args) -> int:
    """`station status | head` must end quietly: a reader that goes away is not an error."""
    import os

    try:
        rc = _run(args)
        sys.stdout.flush()
        return rc
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)  # nothing more can reach the reader, not even at exit
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _run(args) -> int:
    from station.control import ControlError, request

    sock = socket_path(args)
    if sock is None:
        return 2
    try:
        snap = request(sock, "status")
    except ControlError as exc:
        print(f"station: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(snap, indent=2, sort_keys=True, default=str))
        return 0
    q = snap["queue"]
    c = snap["counts"]
    print(f"daemon   pid {snap['pid']}, up {snap['uptime']:.0f} s, config {snap['config']}")
    print(f"queue    {q['length']} ({q['preview']} preview, {q['master']} master), {q['tracking']} being written")
    print(f"frames   {c['total']} seen: {c['master_written']} done, {c['preview_written']} preview only, "
          f"{c['seen']} waiting, {c['failed']} failed")
    lf = snap.get("last_frame")
    if lf:
        print(f"last     {lf['path']} ({lf['state']}{', ' + lf['reason'] if lf.get('reason') else ''})")
    if snap.get("last_positive"):
        print(f"positive {snap['last_positive']}")
    for stage in ("preview", "master"):
        l = snap["latency"][stage]
        print(f"latency  complete→{stage}: p50 {_fmt(l['p50'])}  p90 {_fmt(l['p90'])}  p99 {_fmt(l['p99'])}  (n={l['n']})")
    cam = snap.get("camera") or {}
    print(f"camera   {cam.get('state')}" + (f" ({cam['port']})" if cam.get("port") else ""))
    rec = cam.get("card_record")
    if rec and rec.get("path"):
        print(f"card     {rec['camera']}: {rec['files']} card files already taken or recorded"
              + ("" if rec.get("known") else " (not met yet: its card will be recorded, not downloaded)")
              + f" ({rec['path']})")
    for w in snap.get("workers", []):
        job = w.get("job")
        print(f"worker   {w['index']} pid {w['pid']} {'alive' if w['alive'] else 'DOWN'} {'/'.join(w['stages'])}"
              f", restarts {w['restarts']}" + (f", on {job['path']} ({job['stage']})" if job else ""))
    flagged = [f for f in snap.get("frames") or [] if f.get("checks")]
    if flagged:
        print("checks")
        for f in flagged[:10]:
            print(f"  {f['path']}: " + "; ".join(f"{c['check']}: {c['message']}" for c in f["checks"]))
    errs = snap.get("recent_errors") or []
    if errs:
        print("errors")
        for e in errs[:10]:
            when = time.strftime("%H:%M:%S", time.localtime(e["updated"])) if e.get("updated") else ""
            print(f"  {when} {e['path']} ({e.get('stage') or '-'}): {e['reason']}")
    return 0
