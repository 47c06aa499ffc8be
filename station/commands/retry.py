"""`station retry`: re-queue failed frames in the running daemon."""
from __future__ import annotations

import sys


def register(subparsers) -> None:
    from station.commands.run import add_config_args

    p = subparsers.add_parser("retry", help="re-queue failed frames (all, or the ones named)")
    add_config_args(p, with_paths=False)
    p.add_argument("paths", nargs="*", metavar="FRAME", help="frame paths relative to incoming/ (default: all failed)")
    p.set_defaults(func=run)


def run(args) -> int:
    from station.commands.status import socket_path
    from station.control import ControlError, request

    sock = socket_path(args)
    if sock is None:
        return 2
    try:
        res = request(sock, "retry", paths=args.paths or None)
    except ControlError as exc:
        print(f"station: {exc}", file=sys.stderr)
        return 1
    for p in res["requeued"]:
        print(f"re-queued {p}")
    if not res["requeued"]:
        print("no failed frames" + (" among those named" if args.paths else ""))
    return 0
