"""One capture without the daemon, and the daemon's SIGUSR1 trigger.

* `capture_direct()` opens the camera itself (no daemon running) with a
  CameraService, fires once, and closes it.
* With a daemon running, `station capture` asks it over the control socket
  (`station.control.request(sock, "capture", ...)`, the one client; the socket
  and folders come from the configuration, `config.resolve_paths`).

The daemon itself owns a CameraService and calls `service.capture()` from its
socket handler, from the pedal and from SIGUSR1 (`install_sigusr1`).
"""
from __future__ import annotations

import signal
import time
from pathlib import Path

from station.capture.camera import CameraError, CameraService, CaptureOptions, CapturedFile


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
