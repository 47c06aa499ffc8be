"""The `station` command line.

Each sub-command lives in its own module under `station.commands`; a module
provides `register(subparsers)` that adds its parser and sets `func` (a
callable taking the parsed args and returning an exit status).  Exit
statuses: 0 success, 1 some work failed, 2 usage or configuration error.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Order is the order shown in --help.  Each is a module station.commands.<name> (a missing one is an error).
COMMANDS = [
    "invert", "run", "status", "capture", "roll", "retry", "demo",
    "train", "evaluate", "export_lut", "bench", "bench_print", "install_service",
]


def build_parser() -> argparse.ArgumentParser:
    from station import __version__

    parser = argparse.ArgumentParser(
        prog="station",
        description="Film-scanning station: capture colour negatives and invert them to positives.",
    )
    parser.add_argument("--version", action="version", version=f"station {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"station.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
