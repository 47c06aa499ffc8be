"""libgphoto2's virtual camera, as bundled in the `gphoto2` wheel.

How it behaves (found by experiment with gphoto2 2.6 / libgphoto2 2.5.3x):
* The package's __init__ points IOLIBS at its `vusb` folder (the virtual USB
  port, *instead of* the real USB and PTP/IP port drivers) when VCAMERADIR is
  set at import time.  libgphoto2 reads IOLIBS and VCAMERADIR again at every
  port-list load, so `use_virtual(True/False)` switches between the virtual
  camera and real ports at run time in one process; CameraService does this
  itself for port="virtual" and for every other port.
* The folder must exist at init, or libgphoto2 crashes.
* Every capture serves the first *.jpg of the folder byte for byte (so a DNG
  saved as frame.jpg comes back as the DNG), but with the file *size it had
  when the session started*: frames are padded to one fixed size (trailing
  bytes after a TIFF/DNG's data are ignored by every reader).
* The file is read at download time, so the next frame may be swapped in
  only after the previous one was downloaded (`CameraService` downloads
  before it completes a capture).
* About 26 captures per session, then captures silently stop: the service
  re-initialises every `SESSION_LIMIT` captures.
* Deleting a file on it breaks later captures: keep files on the card.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

SESSION_LIMIT = 20
SERVED_NAME = "frame.jpg"
SERVED_MTIME = 1_767_225_600  # 2026-01-01: the served frame's fixed time (see serve())


def _iolibs_dir(virtual: bool) -> Path:
    import importlib.util

    spec = importlib.util.find_spec("gphoto2")
    if spec is None or not spec.origin:
        raise RuntimeError("the gphoto2 package is not installed")
    return Path(spec.origin).parent / "libgphoto2" / ("vusb" if virtual else "iolibs")


def use_virtual(on: bool) -> None:
    """Select libgphoto2's port drivers for the next camera: the virtual USB
    port (on) or the real USB/PTP-IP/serial drivers (off)."""
    d = _iolibs_dir(on)
    if d.is_dir():
        os.environ["IOLIBS"] = str(d)


def enable(folder: str | os.PathLike | None = None) -> Path:
    """Point VCAMERADIR at `folder` (created, with a placeholder frame) and
    select the virtual port driver.  Returns the folder."""
    current = os.environ.get("VCAMERADIR")
    if folder is None:
        folder = current or tempfile.mkdtemp(prefix="station-vcamera-")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    served = folder / SERVED_NAME
    if not served.exists():
        served.write_bytes(b"\xff\xd8\xff\xd9")  # a minimal JPEG placeholder
        os.utime(served, (SERVED_MTIME, SERVED_MTIME))
    os.environ["VCAMERADIR"] = str(folder)
    use_virtual(True)
    return folder


class VirtualCamera:
    """A folder served by the virtual camera, with the frame swapped between shots.

    frame_size: every served frame is padded to exactly this many bytes.
    frames: optional iterable of bytes/paths served in turn by `next_frame()`
    (hook it as CameraService(before_capture=vc.next_frame))."""

    port = "virtual"

    def __init__(self, folder: str | os.PathLike, frame_size: int, frames=None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.frame_size = int(frame_size)
        self._frames = iter(frames) if frames is not None else None
        self._once: bytes | None = None
        self.served: list[bytes] = []
        self._previous_env = os.environ.get("VCAMERADIR")
        if not (self.folder / SERVED_NAME).exists():
            self.serve(b"\xff\xd8\xff\xd9")

    def before_connect(self) -> None:
        """CameraService hook: point the next session at this folder."""
        enable(self.folder)
        if not (self.folder / SERVED_NAME).exists():
            self.serve(b"\xff\xd8\xff\xd9")

    def close(self) -> None:
        """Point VCAMERADIR back where it was (a folder that goes away would
        crash libgphoto2's next port scan)."""
        if self._previous_env is not None:
            os.environ["VCAMERADIR"] = self._previous_env

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def pad(self, data: bytes) -> bytes:
        if len(data) > self.frame_size:
            raise ValueError(f"frame of {len(data)} bytes is larger than the virtual camera's frame size {self.frame_size}")
        return data + b"\0" * (self.frame_size - len(data))

    def serve(self, data: bytes | str | os.PathLike) -> bytes:
        """Make `data` (bytes or a file) what the next capture returns; returns the padded bytes."""
        if not isinstance(data, (bytes, bytearray)):
            data = Path(data).read_bytes()
        padded = self.pad(bytes(data))
        tmp = self.folder / ".frame.tmp"
        tmp.write_bytes(padded)
        # One file on the card, as the station's card record sees it: one size (the padding)
        # and one time.  A new time would make it look like another file of that name
        # (a reformatted card) and have it downloaded at the next reconnect.
        os.utime(tmp, (SERVED_MTIME, SERVED_MTIME))
        os.replace(tmp, self.folder / SERVED_NAME)
        self.served.append(padded)
        return padded

    def serve_next(self, data: bytes) -> None:
        """The next shot returns `data` (once), before the frames served in turn resume: the
        virtual stand with a blank piece of film in the holder, for a calibration shot."""
        self._once = bytes(data)

    def next_frame(self) -> None:
        if self._once is not None:
            data, self._once = self._once, None
            self.serve(data)
            return
        if self._frames is None:
            return
        try:
            self.serve(next(self._frames))
        except StopIteration:
            self._frames = None
