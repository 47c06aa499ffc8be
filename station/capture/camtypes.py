"""The camera service's vocabulary: libgphoto2 error codes, the errors a request fails with
(what the operator reads), capture options, the records of downloaded files, the state line.

Shared by the camera service's parts (station.capture.camera, .supervisor, .cardsync,
.requests); station.capture.camera re-exports all of it, so callers import from there.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from station.capture.names import FileKind

# Error codes (gphoto2's GP_ERROR_*), so this module needs gphoto2 only once a
# camera is really opened (the virtual camera needs VCAMERADIR set first).
GP_OK = 0
GP_ERROR = -1
GP_ERROR_IO = -7
GP_ERROR_TIMEOUT = -10
GP_ERROR_IO_USB_CLAIM = -53
GP_ERROR_IO_USB_FIND = -52
GP_ERROR_MODEL_NOT_FOUND = -105
GP_ERROR_CAMERA_BUSY = -110
GP_ERROR_FILE_NOT_FOUND = -108
GP_ERROR_NOT_SUPPORTED = -6

MAX_FILE_FAILURES = 3  # a card listing or one file's recovery failing this often is not the link
RESCAN_S = 30.0  # seconds between idle re-scans of a card that a scan could not finish

GVFS_HINT = (
    "the camera is claimed by another program (gphoto2 error -53, could not claim the USB device). "
    "On a desktop this is almost always gvfs-gphoto2-volume-monitor, which mounts cameras for the "
    "file manager. Fix: unmount the camera in the file manager, then stop the monitor with "
    "`systemctl --user stop gvfs-gphoto2-volume-monitor.service` and keep it off with "
    "`systemctl --user mask gvfs-gphoto2-volume-monitor.service` (or remove the gvfs-backends "
    "package on a dedicated station)"
)


def keep_fd0_open() -> None:
    """Keep file descriptor 0 open on /dev/null.

    libgphoto2's PTP/IP driver (2.5.3x) closes fd 0 in every camera exit (its
    unused JPEG-stream socket is initialised to 0).  If fd 0 is free, the next
    file the process opens gets it -- a socket, a pipe, the journal -- and the
    next camera exit closes it.  So: fd 0 is re-opened on /dev/null at once
    after every libgphoto2 call.  (If another thread grabbed fd 0 in between,
    that thread keeps it: the window is a few microseconds.)"""
    try:
        os.fstat(0)
        return
    except OSError:
        pass
    fd = os.open(os.devnull, os.O_RDONLY)
    if fd != 0:
        os.close(fd)


def _gp():
    import gphoto2  # imported late: VCAMERADIR must be set before the first import

    return gphoto2


# --------------------------------------------------------------------- errors
class CameraError(Exception):
    """A capture request failed; str(exc) is a message for the operator."""


class NoCameraError(CameraError):
    pass


class CameraBusyError(CameraError):
    pass


class CameraDisconnectedError(CameraError):
    pass


class CameraHungError(CameraDisconnectedError):
    pass


class CaptureTimeoutError(CameraDisconnectedError):
    pass


class ServiceStoppedError(CameraError):
    pass


class NoLiveViewError(CameraError):
    """The camera gives no live view through libgphoto2: asking again will not help."""

    permanent = True


class _Stale(BaseException):
    """Raised inside an abandoned owner thread: unwind without touching state."""


class _Reconnect(Exception):
    """Raised inside the owner: drop this camera and connect a fresh one."""

    def __init__(self, message: str, planned: bool = False):
        super().__init__(message)
        self.planned = planned


def describe_gp_error(exc: BaseException, port: str = "", connecting: bool = False) -> str:
    code = getattr(exc, "code", None)
    where = f" on {port}" if port and port != "auto" else ""
    if code == GP_ERROR_IO_USB_CLAIM:
        return GVFS_HINT
    if connecting and code in (GP_ERROR, GP_ERROR_IO, GP_ERROR_TIMEOUT, -5, -6):
        return f"no camera answering{where} (gphoto2 error {code}: {exc}); is it switched on and connected?"
    if code in (GP_ERROR_MODEL_NOT_FOUND, GP_ERROR_IO_USB_FIND):
        return f"no camera found{where} (is it connected, switched on and awake?)"
    if code == GP_ERROR_CAMERA_BUSY:
        return f"camera busy{where} (gphoto2 error -110)"
    if code is not None:
        return f"camera error{where}: {exc}"
    return f"{exc.__class__.__name__}: {exc}"


# -------------------------------------------------------------------- options
@dataclass
class CaptureOptions:
    keep_on_card: bool = True  # False: delete from the card after a verified download
    keep_jpeg: bool = True  # RAW+JPEG cameras: keep the JPEG, or drop it
    capture_target: str | None = None  # None (leave as is), "card", "ram", or a camera's own choice
    capture_timeout: float = 20.0  # trigger -> all files downloaded
    settle_ms: int = 300  # a TIMEOUT this long after the last file ends a capture without CAPTURE_COMPLETE
    busy_retries: int = 5
    busy_delay: float = 0.3


@dataclass
class CapturedFile:
    path: Path  # final path in incoming/
    camera_path: str  # folder/name on the camera (informative only)
    kind: str  # "raw", "jpeg", ...
    size: int
    shot: int  # captures that belong together (RAW+JPEG) share it
    source: str  # "trigger", "camera" (shutter button), "recovered"
    t_complete: float  # time.time() when the file was in place
    camera: str | None = None  # camera model


@dataclass
class FileInfo:
    """What a namer gets to choose a file's final name from."""
    camera_folder: str
    camera_name: str  # sanitised
    kind: FileKind
    shot: int
    source: str


def default_namer(info: FileInfo) -> str:
    stem = os.path.splitext(info.camera_name)[0] or "frame"
    return stem + info.kind.ext


MIN_THROUGHPUT = 1e6  # bytes/s a download may be slow to before it counts as hung
LATE_FILE_S = 1.0  # a file announced this soon after a capture belongs to it

STATES = ("disconnected", "connecting", "ready", "busy", "reconnecting", "stopped")


def status_line(snap: dict) -> str:
    """One line for `station status` and systemd's STATUS=."""
    state = snap.get("state", "?")
    model = snap.get("model") or "camera"
    if state in ("ready", "busy"):
        return f"{model} {state} on {snap.get('port')}, {snap.get('files', 0)} files"
    err = snap.get("last_error")
    return f"camera {state}" + (f": {err}" if err else "")


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
