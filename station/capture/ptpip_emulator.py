"""A small PTP/IP camera for tests: libgphoto2 talks to it as 'PTP/IP Camera'.

Three modules: the wire format and card objects (station.capture.ptpip_wire), the camera
itself, in-process (station.capture.ptpip_camera.PtpIpCamera), and here the camera in a
child process (`EmulatedCamera`, what tests and the live demo use) with every name of the
other two re-exported (tests import this module as `ptpip_emulator`).

Both channels connect to the same port; the first packet says which is which.
The card persists across connections (like a real camera's), and faults can
be injected for the next matching operation:

  cam.fail_next("busy", op="InitiateCapture", count=2)   -> 0x2019 DeviceBusy (-110)
  cam.fail_next("drop", op="GetObject")                   -> both sockets closed, no reply
  cam.fail_next("hang", op="GetObject")                   -> the camera stops answering
  cam.fail_next("drop_after_capture")                     -> the shot is taken, then the link drops

Live view (`live={...}`, LiveScene keyword arguments; station.capture.livescene): the
camera then says it is a Nikon (vendor extension 0x0000000A) and serves the operations
libgphoto2's ptp2 driver uses for a Nikon's `capture_preview` (camlibs/ptp2/library.c):
GetDevicePropValue(LiveViewStatus 0xD1A2), StartLiveView 0x9201, DeviceReady 0x90C8,
GetLiveViewImg 0x9203 (a 128-byte header, then the JPEG; the driver finds the JPEG's
SOI itself and drops the first image after a start), EndLiveView 0x9202.  Its frames
and its RAWs come from the scripted strip: `cam.advance()` slides it by one frame,
`cam.scene_log()` says where the strip was at every shot.

Binds to 127.0.0.1 only.

`EmulatedCamera` runs the camera in a separate process (spawned): libgphoto2
calls that hold the GIL (python-gphoto2 does not release it in every call,
e.g. file_delete) would otherwise starve an in-process emulator until
libgphoto2's own 2.5 s PTP/IP timeout.  It has the same methods; `captured`,
`files()` and `ops` are fetched from the child.
"""
from __future__ import annotations

import socket
import threading

from station.capture.ptpip_wire import (  # noqa: F401
    CANCEL, CMD_REQ, CMD_RESP, DATA, DPC_NIKON_LIVEVIEW_STATUS, END_DATA, EVENT, EV_CAPTURE_COMPLETE,
    EV_OBJECT_ADDED, EV_OBJECT_REMOVED, FMT_ASSOCIATION, FMT_DNG, FMT_JPEG, FMT_UNDEFINED, INIT_CMD_ACK,
    INIT_CMD_REQ, INIT_EVT_ACK, INIT_EVT_REQ, INIT_FAIL, LIVE_OPS, LV_HEADER, OPS, OP_CODES, Obj, PING, PONG,
    RC_BUSY, RC_DEVICE_PROP_NOT_SUPPORTED, RC_GENERAL, RC_INVALID_HANDLE, RC_INVALID_STORAGE,
    RC_NIKON_NOT_LIVEVIEW, RC_NOT_SUPPORTED, RC_OK, RC_SESSION_NOT_OPEN, RC_SESSION_OPEN, START_DATA, STORAGE,
    VENDOR_NIKON, _arr16, _arr32, _packet, _pstr, _read_packet, _recv_exact, tiny_jpeg, tiny_raw,
)
from station.capture.ptpip_camera import PtpIpCamera  # noqa: F401


# ------------------------------------------------------------ separate process
def _child(conn, kwargs) -> None:
    cam = PtpIpCamera(**kwargs).start()
    conn.send(cam.port)
    while True:
        try:
            name, args = conn.recv()
        except (EOFError, OSError):
            break
        if name == "stop":
            cam.stop()
            conn.send(None)
            break
        if name == "captured":
            conn.send([(o.name, o.data) for o in cam.captured])
        elif name == "files":
            conn.send([(o.name, o.data) for o in cam.files()])
        elif name == "ops":
            conn.send(list(cam.ops))
        elif name == "press":
            conn.send(cam.press_shutter().name)
        elif name == "fail_next":
            cam.fail_next(*args)
            conn.send(None)
        elif name == "drop":
            cam.drop()
            conn.send(None)
        elif name == "next_names":
            cam.next_names(*args)
            conn.send(None)
        elif name == "format_card":
            cam.format_card(*args)
            conn.send(None)
        elif name == "advance":
            conn.send(cam.scene.advance())
        elif name == "scene_log":
            conn.send(list(cam.scene.log))
        elif name == "live_frames":
            conn.send(cam.scene.frames)
    cam.stop()


class _Frame:
    def __init__(self, name, data):
        self.name, self.data = name, data

    def __repr__(self):
        return f"<{self.name} {len(self.data)} bytes>"


class EmulatedCamera:
    """PtpIpCamera in a spawned child process, driven over a pipe."""

    def __init__(self, port: int = 0, **kwargs):
        self._kwargs = dict(kwargs, port=port)
        self.port = port
        self._proc = None
        self._conn = None
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return f"ptpip:127.0.0.1:{self.port}:{self.port}"

    def start(self) -> "EmulatedCamera":
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_child, args=(child, self._kwargs), daemon=True, name="ptpip-emulator")
        self._proc.start()
        if not self._conn.poll(30):
            raise RuntimeError("PTP/IP emulator did not start")
        self.port = self._conn.recv()
        return self

    def _call(self, name, *args):
        with self._lock:
            self._conn.send((name, args))
            if not self._conn.poll(10):
                raise RuntimeError(f"emulator did not answer {name}")
            return self._conn.recv()

    def stop(self) -> None:
        if self._proc is None:
            return
        try:
            self._call("stop")
        except Exception:
            pass
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.kill()
        self._proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def fail_next(self, kind: str, op: str | None = None, count: int = 1, after: int = 0) -> None:
        self._call("fail_next", kind, op, count, after)

    def press_shutter(self) -> str:
        return self._call("press")

    def drop(self) -> None:
        self._call("drop")

    def next_names(self, names: list[str]) -> None:
        self._call("next_names", list(names))

    def format_card(self, reset_numbers: bool = True) -> None:
        self._call("format_card", reset_numbers)

    def advance(self) -> int:
        """Live view: slide the strip to the next picture; returns its index."""
        return self._call("advance")

    def scene_log(self) -> list[dict]:
        """Live view: the strip's state at every shot (t, pos, moving, index, frames)."""
        return self._call("scene_log")

    @property
    def live_frames(self) -> int:
        """Live view: frames served so far."""
        return self._call("live_frames")

    @property
    def captured(self) -> list[_Frame]:
        return [_Frame(n, d) for n, d in self._call("captured")]

    def files(self) -> list[_Frame]:
        return [_Frame(n, d) for n, d in self._call("files")]

    @property
    def ops(self) -> list[str]:
        return self._call("ops")


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def camera_service(incoming, cam, record):
    """A started CameraService on emulator `cam` (fast fault settings), with its card record at
    `record`; a second call with the same record is the station after a restart."""
    from station.capture.camera import CameraService, CaptureOptions

    s = CameraService(incoming, cam.address, options=CaptureOptions(capture_timeout=5, busy_delay=0.05),
                      hang_timeout=3, backoff=(0.1, 0.5), record=record)
    s.start()
    assert s.wait_ready(20), s.snapshot()
    return s

