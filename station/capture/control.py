"""The triggers' common ground: where things are, and one capture done two ways.

* `capture_via_daemon()` asks the running daemon over its control socket (a
  Unix socket, one JSON object per line each way, see docs/DAEMON.md):
  {"cmd": "capture", "wait_positive": true} ->
  {"ok": true, "result": {"files": [...], "preview": ..., "latency": ...}}
  or {"ok": false, "error": "..."}.
* `capture_direct()` opens the camera itself (no daemon running) with a
  CameraService, fires once, and closes it.

The daemon itself owns a CameraService and calls `service.capture()` from its
socket handler, from the pedal and from SIGUSR1 (`install_sigusr1`).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

from station.capture.camera import CameraError, CameraService, CaptureOptions, CapturedFile


def default_state_dir() -> Path:
    env = os.environ.get("STATION_STATE") or os.environ.get("STATE_DIRECTORY")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "station"


def default_incoming() -> Path:
    return Path(os.environ.get("STATION_INCOMING") or "incoming")


def control_socket_path(state_dir: Path | None = None) -> Path:
    """$STATION_SOCKET, else the first that exists of $RUNTIME_DIRECTORY/station.sock,
    <state>/station.sock, /run/station/station.sock (the daemon's defaults)."""
    env = os.environ.get("STATION_SOCKET")
    if env:
        return Path(env)
    cands = []
    if os.environ.get("RUNTIME_DIRECTORY"):
        cands.append(Path(os.environ["RUNTIME_DIRECTORY"]) / "station.sock")
    cands.append(Path(state_dir or default_state_dir()) / "station.sock")
    cands.append(Path("/run/station/station.sock"))
    for c in cands:
        if c.exists():
            return c
    return cands[0]


class DaemonUnavailable(Exception):
    pass


def daemon_request(request: dict, path: Path | None = None, timeout: float = 60.0) -> dict:
    path = Path(path or control_socket_path())
    if not path.exists():
        raise DaemonUnavailable(f"no station daemon control socket at {path}")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(path))
        s.sendall((json.dumps(request) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except (ConnectionRefusedError, FileNotFoundError) as exc:
        raise DaemonUnavailable(f"station daemon not answering on {path} ({exc.strerror})") from None
    finally:
        s.close()
    if not buf.strip():
        raise DaemonUnavailable(f"station daemon on {path} closed the connection without an answer")
    return json.loads(buf.decode())


def capture_via_daemon(path: Path | None = None, timeout: float = 60.0, wait_positive: bool = True) -> dict:
    return daemon_request({"cmd": "capture", "wait_positive": wait_positive, "timeout": timeout}, path, timeout + 5)


def capture_direct(port: str, incoming: Path, *, options: CaptureOptions | None = None, namer=None,
                   on_captured=None, connect_timeout: float = 10.0, before_connect=None,
                   before_capture=None) -> list[CapturedFile]:
    """Open the camera, fire once, download, close.  Raises CameraError with a
    message for the operator when no camera answers."""
    svc = CameraService(incoming, port, options=options, namer=namer, on_captured=on_captured,
                        before_connect=before_connect, before_capture=before_capture, backoff=(0.5, 2.0))
    svc.start()
    try:
        end = time.monotonic() + connect_timeout
        while time.monotonic() < end and svc.state not in ("ready", "busy"):
            time.sleep(0.05)
        if svc.state not in ("ready", "busy"):
            err = svc.snapshot()["last_error"] or f"no camera answered on {port} within {connect_timeout:g} s"
            raise CameraError(err)
        return svc.capture_sync()
    finally:
        svc.stop()


def install_sigusr1(service: CameraService, on_result=None) -> None:
    """SIGUSR1 fires the shutter (as `gphoto2 --capture-tethered` does).

    The handler only queues the request; the result (files or the error)
    goes to on_result(future) when done."""

    def handler(signum, frame):
        fut = service.capture()
        if on_result:
            fut.add_done_callback(on_result)

    signal.signal(signal.SIGUSR1, handler)
