"""libgphoto2's virtual camera, as bundled in the `gphoto2` wheel.

How it behaves (found by experiment with gphoto2 2.6 / libgphoto2 2.5.3x):
* The virtual USB port exists only if VCAMERADIR is set *before gphoto2 is
  first imported* (call `enable()` early).  After that, each `gp.Camera()
  .init()` reads VCAMERADIR again, so every session may use its own folder.
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
import sys
import tempfile
from pathlib import Path

SESSION_LIMIT = 20
SERVED_NAME = "frame.jpg"


def enable(folder: str | os.PathLike | None = None) -> Path:
    """Make the virtual camera available: sets VCAMERADIR before gphoto2 is imported.

    Returns the folder VCAMERADIR points to (created with a placeholder if
    needed).  Raises RuntimeError if gphoto2 was imported without it."""
    current = os.environ.get("VCAMERADIR")
    if "gphoto2" in sys.modules and not current:
        raise RuntimeError("gphoto2 was imported before VCAMERADIR was set: the virtual camera is not available "
                           "in this process (call station.capture.virtual.enable() first)")
    if folder is None:
        folder = current or tempfile.mkdtemp(prefix="station-vcamera-")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    served = folder / SERVED_NAME
    if not served.exists():
        served.write_bytes(b"\xff\xd8\xff\xd9")  # a minimal JPEG placeholder
    os.environ["VCAMERADIR"] = str(folder)
    return folder


class VirtualCamera:
    """A folder served by the virtual camera, with the frame swapped between shots.

    frame_size: every served frame is padded to exactly this many bytes.
    frames: optional iterable of bytes/paths served in turn by `next_frame()`
    (hook it as CameraService(before_capture=vc.next_frame))."""

    port = "auto"

    def __init__(self, folder: str | os.PathLike, frame_size: int, frames=None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.frame_size = int(frame_size)
        self._frames = iter(frames) if frames is not None else None
        self.served: list[bytes] = []
        if not (self.folder / SERVED_NAME).exists():
            self.serve(b"\xff\xd8\xff\xd9")

    def before_connect(self) -> None:
        """CameraService hook: point the next session at this folder."""
        enable(self.folder)
        if not (self.folder / SERVED_NAME).exists():
            self.serve(b"\xff\xd8\xff\xd9")

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
        os.replace(tmp, self.folder / SERVED_NAME)
        self.served.append(padded)
        return padded

    def next_frame(self) -> None:
        if self._frames is None:
            return
        try:
            self.serve(next(self._frames))
        except StopIteration:
            self._frames = None
