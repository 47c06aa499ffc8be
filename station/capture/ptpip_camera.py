"""The PTP/IP camera itself (in-process): the command and event channels, the card, the
injected faults, live view.  Tests and the demo use it through
station.capture.ptpip_emulator, whose docstring describes it; the wire format is in
station.capture.ptpip_wire.
"""
from __future__ import annotations

import socket
import struct
import threading
import time

from station.capture.ptpip_wire import (  # noqa: F401
    CMD_REQ, CMD_RESP, DATA, DPC_NIKON_LIVEVIEW_STATUS, END_DATA, EVENT, EV_CAPTURE_COMPLETE, EV_OBJECT_ADDED,
    EV_OBJECT_REMOVED, FMT_ASSOCIATION, FMT_DNG, FMT_JPEG, INIT_CMD_ACK, INIT_CMD_REQ, INIT_EVT_ACK,
    INIT_EVT_REQ, LIVE_OPS, LV_HEADER, OPS, Obj, RC_BUSY, RC_DEVICE_PROP_NOT_SUPPORTED, RC_INVALID_HANDLE,
    RC_NIKON_NOT_LIVEVIEW, RC_NOT_SUPPORTED, RC_OK, RC_SESSION_OPEN, START_DATA, STORAGE, VENDOR_NIKON,
    _arr16, _arr32, _packet, _pstr, _read_packet, tiny_jpeg, tiny_raw,
)


class PtpIpCamera:
    def __init__(self, *, raw_plus_jpeg: bool = False, jpeg_first: bool = False, name: str = "Station PTPIP Emu",
                 port: int = 0, late_second_s: float = 0.0, frame_source=None, serial: str = "0001",
                 live: dict | None = None):
        self.raw_plus_jpeg = raw_plus_jpeg
        self._next_names: list[str] = []  # object names for the next frames (hostile-name tests)
        self.late_second_s = late_second_s  # RAW+JPEG: announce the 2nd file this long after CaptureComplete
        self.jpeg_first = jpeg_first
        self.name = name
        self.serial = serial
        self._made = 0  # frames made (the content); _counter is the camera's file number (names)
        self.objects: dict[int, Obj] = {
            1: Obj(1, "DCIM", b"", 0, FMT_ASSOCIATION, True),
            2: Obj(2, "100EMU", b"", 1, FMT_ASSOCIATION, True),
        }
        self._next_handle = 3
        self._counter = 0
        self.captured: list[Obj] = []  # every frame the camera made (not only through InitiateCapture)
        self.ops: list[str] = []  # operations received, in order
        self.connections = 0
        self._faults: list[dict] = []
        self._lock = threading.RLock()
        self._socks: list[socket.socket] = []
        self._evt: socket.socket | None = None
        self._evt_lock = threading.Lock()
        self._stop = threading.Event()
        self._srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._srv.bind(("127.0.0.1", port))
        self._srv.listen(8)
        self.port = self._srv.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True, name="ptpip-emu")
        self._pending_evt: dict[int, socket.socket] = {}
        self.frame_source = frame_source or tiny_raw  # n -> RAW bytes (a top-level function: it is pickled)
        self.scene = None  # live view: the scripted strip (LiveScene)
        self._lv_on = False
        if live is not None:
            from station.capture.livescene import LiveScene

            self.scene = LiveScene(**live)
            self.scene.live_frame()  # warm: the pictures, the tone table, numba (libgphoto2 waits ~2.5 s)
            self.scene.raw_linear()
            self.scene.start_on_first_frame()  # the demo's operator starts with the first frame libgphoto2 asks for
            if frame_source is None:
                self.frame_source = self.scene.raw_dng

    # ------------------------------------------------------------------ API
    @property
    def address(self) -> str:
        return f"ptpip:127.0.0.1:{self.port}:{self.port}"

    def start(self) -> "PtpIpCamera":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        try:
            self._srv.close()
        except OSError:
            pass
        self.drop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def fail_next(self, kind: str, op: str | None = None, count: int = 1, after: int = 0) -> None:
        """`after`: let that many matching operations through first (a fault mid-listing)."""
        with self._lock:
            self._faults.append({"kind": kind, "op": op, "count": count, "after": after})

    def drop(self) -> None:
        """Close every connection, like a cable pulled out."""
        self.ops.append("#drop")
        with self._lock:
            socks, self._socks = self._socks, []
            self._evt = None
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def next_names(self, names: list[str]) -> None:
        """The next frames get these object names (as a camera might report them), in order."""
        with self._lock:
            self._next_names.extend(names)

    def press_shutter(self) -> Obj:
        """A photo taken with the camera's own button: stored, announced by ObjectAdded."""
        objs = self._make_frame()
        for o in objs:
            self._event(EV_OBJECT_ADDED, 0xFFFFFFFF, o.handle)
        return objs[0]

    def files(self) -> list[Obj]:
        with self._lock:
            return [o for o in self.objects.values() if not o.assoc]

    def format_card(self, reset_numbers: bool = True) -> None:
        """Erase the card (folders stay); the file numbers start again at 1 if `reset_numbers`."""
        with self._lock:
            self.objects = {h: o for h, o in self.objects.items() if o.assoc}
            if reset_numbers:
                self._counter = 0

    # ------------------------------------------------------------ internals
    def _take_fault(self, op: str) -> str | None:
        with self._lock:
            for f in self._faults:
                if f["kind"] == "drop_after_capture":
                    match = op == "InitiateCapture"
                else:
                    match = f["op"] in (None, op)
                if match and f.get("after", 0) > 0:
                    f["after"] -= 1
                    continue
                if match:
                    f["count"] -= 1
                    if f["count"] <= 0:
                        self._faults.remove(f)
                    return f["kind"]
        return None

    def _make_frame(self) -> list[Obj]:
        with self._lock:
            self._counter += 1
            self._made += 1
            n = self._counter
            name = self._next_names.pop(0) if self._next_names else f"DSC_{n:04d}.DNG"
            raw = Obj(self._next_handle, name, self.frame_source(self._made), 2, FMT_DNG, created=time.time())
            self._next_handle += 1
            objs = [raw]
            if self.raw_plus_jpeg:
                jpg = Obj(self._next_handle, f"DSC_{n:04d}.JPG", tiny_jpeg(self._made), 2, FMT_JPEG, created=time.time())
                self._next_handle += 1
                objs = [jpg, raw] if self.jpeg_first else [raw, jpg]
            for o in objs:
                self.objects[o.handle] = o
            self.captured.append(raw)
            return objs

    def _event(self, code: int, tid: int, *params: int) -> None:
        with self._evt_lock:
            sock = self._evt
            if sock is None:
                return
            try:
                sock.sendall(_packet(EVENT, struct.pack("<HI", code, tid) + b"".join(struct.pack("<I", p) for p in params)))
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._srv.accept()
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.01)
                continue
            try:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            with self._lock:
                self._socks.append(conn)
            self.ops.append("#accept")
            threading.Thread(target=self._serve_conn, args=(conn,), daemon=True).start()

    def _serve_conn(self, conn: socket.socket) -> None:
        try:
            ptype, payload = _read_packet(conn)
            if ptype == INIT_CMD_REQ:
                with self._lock:
                    self.connections += 1
                    number = self.connections
                ack = struct.pack("<I", number) + bytes(range(16)) + (self.name + "\0").encode("utf-16-le") + struct.pack("<I", 0x00010000)
                conn.sendall(_packet(INIT_CMD_ACK, ack))
                self._command_loop(conn)
            elif ptype == INIT_EVT_REQ:
                with self._evt_lock:
                    self._evt = conn
                conn.sendall(_packet(INIT_EVT_ACK))
                # keep the socket; libgphoto2 never sends on it after the handshake
                while not self._stop.is_set():
                    data = conn.recv(64)
                    if not data:
                        break
        except (ConnectionError, OSError, struct.error) as exc:
            self.ops.append(f"#closed {exc.__class__.__name__}")
        except Exception as exc:  # a bug in the emulator: make it visible
            self.ops.append(f"#error {exc!r}")
            raise

    def _send_data(self, conn, tid: int, data: bytes) -> None:
        conn.sendall(_packet(START_DATA, struct.pack("<IQ", tid, len(data))))
        block = 65536
        pos = 0
        while len(data) - pos > block:
            conn.sendall(_packet(DATA, struct.pack("<I", tid) + data[pos:pos + block]))
            pos += block
        conn.sendall(_packet(END_DATA, struct.pack("<I", tid) + data[pos:]))

    def _respond(self, conn, code: int, tid: int, *params: int) -> None:
        conn.sendall(_packet(CMD_RESP, struct.pack("<HI", code, tid) + b"".join(struct.pack("<I", p) for p in params)))

    def _command_loop(self, conn: socket.socket) -> None:
        session = False
        while not self._stop.is_set():
            ptype, payload = _read_packet(conn)
            if ptype != CMD_REQ:
                continue
            _phase, code, tid = struct.unpack_from("<IHI", payload, 0)
            params = list(struct.unpack_from(f"<{(len(payload) - 10) // 4}I", payload, 10))
            op = OPS.get(code) or (LIVE_OPS.get(code) if self.scene is not None else None) or f"0x{code:04x}"
            self.ops.append(op)
            fault = self._take_fault(op)
            if fault == "drop":
                self.drop()
                return
            if fault == "hang":
                # stop answering: read and ignore everything until the peer gives up
                while not self._stop.is_set():
                    if not conn.recv(4096):
                        return
                return
            if fault == "busy":
                self._respond(conn, RC_BUSY, tid)
                continue
            if code == 0x1002:  # OpenSession
                if session:
                    self._respond(conn, RC_SESSION_OPEN, tid)
                else:
                    session = True
                    self._respond(conn, RC_OK, tid)
            elif code == 0x1003:  # CloseSession
                session = False
                self._respond(conn, RC_OK, tid)
            elif code == 0x1001:  # GetDeviceInfo
                self._send_data(conn, tid, self._device_info())
                self._respond(conn, RC_OK, tid)
            elif code == 0x1004:  # GetStorageIDs
                self._send_data(conn, tid, _arr32([STORAGE]))
                self._respond(conn, RC_OK, tid)
            elif code == 0x1005:  # GetStorageInfo
                self._send_data(conn, tid, struct.pack("<HHHQQI", 4, 2, 0, 32 << 30, 16 << 30, 999) + _pstr("SD") + _pstr("EMU"))
                self._respond(conn, RC_OK, tid)
            elif code in (0x1007, 0x1006):  # GetObjectHandles / GetNumObjects
                storage = params[0] if params else 0xFFFFFFFF
                parent = params[2] if len(params) > 2 else 0
                with self._lock:
                    hs = [o.handle for o in self.objects.values()
                          if parent == 0 or (parent == 0xFFFFFFFF and o.parent == 0) or o.parent == parent]
                if storage not in (STORAGE, 0xFFFFFFFF):
                    hs = []
                if code == 0x1006:
                    self._respond(conn, RC_OK, tid, len(hs))
                else:
                    self._send_data(conn, tid, _arr32(hs))
                    self._respond(conn, RC_OK, tid)
            elif code == 0x1008:  # GetObjectInfo
                o = self.objects.get(params[0] if params else 0)
                if o is None:
                    self._respond(conn, RC_INVALID_HANDLE, tid)
                    continue
                self._send_data(conn, tid, self._object_info(o))
                self._respond(conn, RC_OK, tid)
            elif code == 0x1009:  # GetObject
                o = self.objects.get(params[0] if params else 0)
                if o is None or o.assoc:
                    self._respond(conn, RC_INVALID_HANDLE, tid)
                    continue
                self._send_data(conn, tid, o.data)
                self._respond(conn, RC_OK, tid)
            elif code == 0x101B:  # GetPartialObject(handle, offset, max)
                o = self.objects.get(params[0] if params else 0)
                if o is None or o.assoc:
                    self._respond(conn, RC_INVALID_HANDLE, tid)
                    continue
                chunk = o.data[params[1]:params[1] + params[2]]
                self._send_data(conn, tid, chunk)
                self._respond(conn, RC_OK, tid, len(chunk))
            elif code == 0x100B:  # DeleteObject
                with self._lock:
                    o = self.objects.get(params[0] if params else 0)
                    if o is None or o.assoc:
                        self._respond(conn, RC_INVALID_HANDLE, tid)
                        continue
                    del self.objects[o.handle]
                self._respond(conn, RC_OK, tid)
                self._event(EV_OBJECT_REMOVED, tid, o.handle)  # libgphoto2 waits for it
            elif code == 0x100E:  # InitiateCapture
                self._respond(conn, RC_OK, tid)
                objs = self._make_frame()
                if fault == "drop_after_capture":
                    time.sleep(0.02)
                    self.drop()
                    return
                time.sleep(0.01)
                late = objs[1:] if self.late_second_s else []
                for o in objs[:len(objs) - len(late)]:
                    self._event(EV_OBJECT_ADDED, tid, o.handle)
                self._event(EV_CAPTURE_COMPLETE, tid)
                for o in late:  # from a timer: the command channel stays free meanwhile
                    threading.Timer(self.late_second_s, self._event, (EV_OBJECT_ADDED, tid, o.handle)).start()
            elif self.scene is not None and code in LIVE_OPS:
                self._live_op(conn, code, tid, params)
            else:
                self._respond(conn, RC_NOT_SUPPORTED, tid)

    def _live_op(self, conn, code: int, tid: int, params: list) -> None:
        """Nikon live view (see the module docstring)."""
        if code == 0x1015:  # GetDevicePropValue
            if params and params[0] == DPC_NIKON_LIVEVIEW_STATUS:
                self._send_data(conn, tid, struct.pack("<B", 1 if self._lv_on else 0))
                self._respond(conn, RC_OK, tid)
            else:
                self._respond(conn, RC_DEVICE_PROP_NOT_SUPPORTED, tid)
        elif code == 0x90C8:  # DeviceReady
            self._respond(conn, RC_OK, tid)
        elif code == 0x9201:  # StartLiveView
            self._lv_on = True
            self._respond(conn, RC_OK, tid)
        elif code == 0x9202:  # EndLiveView
            self._lv_on = False
            self._respond(conn, RC_OK, tid)
        elif code == 0x9203:  # GetLiveViewImg
            if not self._lv_on:
                self._respond(conn, RC_NIKON_NOT_LIVEVIEW, tid)
                return
            self._send_data(conn, tid, bytes(LV_HEADER) + self.scene.live_jpeg())
            self._respond(conn, RC_OK, tid)

    def _device_info(self) -> bytes:
        ops = sorted(OPS) + (sorted(LIVE_OPS) if self.scene is not None else [])
        vendor = VENDOR_NIKON if self.scene is not None else 0
        return (
            struct.pack("<HIH", 100, vendor, 100 if vendor else 0) + _pstr("")  # standard version, vendor extension
            + struct.pack("<H", 0)  # functional mode
            + _arr16(ops)
            + _arr16([EV_OBJECT_ADDED, EV_OBJECT_REMOVED, EV_CAPTURE_COMPLETE])
            + _arr16([])  # device properties
            + _arr16([FMT_DNG, FMT_JPEG])  # capture formats
            + _arr16([FMT_DNG, FMT_JPEG, FMT_ASSOCIATION])  # image formats
            + _pstr("Station") + _pstr("PTPIP Emulator") + _pstr("1.0") + _pstr(self.serial)
        )

    def _object_info(self, o: Obj) -> bytes:
        date = time.strftime("%Y%m%dT%H%M%S", time.localtime(o.created or 1795000000))
        return (
            struct.pack("<IHHI", STORAGE, o.fmt, 0, len(o.data))
            + struct.pack("<HIIIIIIIHII", 0, 0, 0, 0, 0, 0, 0, o.parent, 1 if o.assoc else 0, 0, 0)
            + _pstr(o.name) + _pstr(date) + _pstr(date) + _pstr("")
        )


