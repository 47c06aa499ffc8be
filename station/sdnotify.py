"""sd_notify(3) in-house: one datagram to $NOTIFY_SOCKET, no dependency.

`notify("READY=1")`, `notify("STATUS=...")`, `notify("WATCHDOG=1")`.  Returns
False (and does nothing) when not started by systemd with Type=notify.
An address starting with '@' is an abstract socket.
"""
from __future__ import annotations

import os
import socket


def notify(state: str, env: dict | None = None) -> bool:
    addr = (env if env is not None else os.environ).get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(addr)
            s.sendall(state.encode("utf-8", "replace"))
        return True
    except OSError:
        return False


def watchdog_interval(env: dict | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of $WATCHDOG_USEC), or None."""
    env = env if env is not None else os.environ
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid.isdigit() and int(pid) != os.getpid()):
        return None
    try:
        return max(0.5, int(usec) / 1e6 / 2)
    except ValueError:
        return None
