"""The PTP/IP wire format and the emulator's card objects (station.capture.ptpip_camera).

Packet layouts follow libgphoto2's camlibs/ptp2/ptpip.c and the PTP (ISO 15740)
datasets.  Every PTP/IP packet is `u32 length, u32 type, payload`, little endian:

  1 InitCommandRequest  guid[16], name (UTF-16LE, NUL), u32 version
  2 InitCommandAck      u32 connection number, guid[16], name, u32 version
  3 InitEventRequest    u32 connection number
  4 InitEventAck        -
  6 CmdRequest          u32 dataphase, u16 code, u32 transaction, u32 params...
  7 CmdResponse         u16 code, u32 transaction, u32 params...
  8 Event               u16 code, u32 transaction, u32 params...
  9 StartData           u32 transaction, u64 total length
 10 Data                u32 transaction, bytes
 12 EndData             u32 transaction, bytes
"""
from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

# PTP/IP packet types
INIT_CMD_REQ, INIT_CMD_ACK, INIT_EVT_REQ, INIT_EVT_ACK, INIT_FAIL = 1, 2, 3, 4, 5
CMD_REQ, CMD_RESP, EVENT, START_DATA, DATA, CANCEL, END_DATA, PING, PONG = 6, 7, 8, 9, 10, 11, 12, 13, 14

OPS = {
    0x1001: "GetDeviceInfo", 0x1002: "OpenSession", 0x1003: "CloseSession", 0x1004: "GetStorageIDs",
    0x1005: "GetStorageInfo", 0x1006: "GetNumObjects", 0x1007: "GetObjectHandles", 0x1008: "GetObjectInfo",
    0x1009: "GetObject", 0x100B: "DeleteObject", 0x100E: "InitiateCapture", 0x101B: "GetPartialObject",
}
LIVE_OPS = {0x1015: "GetDevicePropValue", 0x90C8: "DeviceReady", 0x9201: "StartLiveView",
            0x9202: "EndLiveView", 0x9203: "GetLiveViewImg"}
VENDOR_NIKON = 0x0000000A
DPC_NIKON_LIVEVIEW_STATUS = 0xD1A2
RC_DEVICE_PROP_NOT_SUPPORTED, RC_NIKON_NOT_LIVEVIEW = 0x200A, 0xA00B
LV_HEADER = 128  # bytes before the JPEG in a GetLiveViewImg answer (a D-series-sized header)
OP_CODES = {v: k for k, v in OPS.items()}
RC_OK, RC_GENERAL, RC_SESSION_NOT_OPEN, RC_NOT_SUPPORTED = 0x2001, 0x2002, 0x2003, 0x2005
RC_INVALID_STORAGE, RC_INVALID_HANDLE, RC_BUSY, RC_SESSION_OPEN = 0x2008, 0x2009, 0x2019, 0x201E
EV_OBJECT_ADDED, EV_OBJECT_REMOVED, EV_CAPTURE_COMPLETE = 0x4002, 0x4003, 0x400D
FMT_UNDEFINED, FMT_ASSOCIATION, FMT_JPEG, FMT_DNG = 0x3000, 0x3001, 0x3801, 0x3811
STORAGE = 0x00010001


def _pstr(s: str) -> bytes:
    if not s:
        return b"\0"
    return bytes([len(s) + 1]) + (s + "\0").encode("utf-16-le")


def _arr16(xs) -> bytes:
    return struct.pack("<I", len(xs)) + b"".join(struct.pack("<H", x) for x in xs)


def _arr32(xs) -> bytes:
    return struct.pack("<I", len(xs)) + b"".join(struct.pack("<I", x) for x in xs)


def _packet(ptype: int, payload: bytes = b"") -> bytes:
    return struct.pack("<II", 8 + len(payload), ptype) + payload


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("peer closed")
        buf += chunk
    return buf


def _read_packet(sock: socket.socket) -> tuple[int, bytes]:
    length, ptype = struct.unpack("<II", _recv_exact(sock, 8))
    return ptype, _recv_exact(sock, length - 8) if length > 8 else b""


@dataclass
class Obj:
    handle: int
    name: str
    data: bytes
    parent: int
    fmt: int
    assoc: bool = False
    created: float = 0.0  # reported as the capture/modification date (1 s resolution, like PTP)


def tiny_raw(n: int) -> bytes:
    """A small but real DNG (a different frame for each n)."""
    import numpy as np
    import tempfile
    from pathlib import Path

    from station.io.dng import write_bayer_dng

    rng = np.random.default_rng(n)
    cfa = rng.integers(1000, 60000, (32, 48), dtype=np.uint16)
    with tempfile.TemporaryDirectory() as d:
        p = write_bayer_dng(Path(d) / "f.dng", cfa, make="Emu", model="PTPIP")
        return p.read_bytes()


def tiny_jpeg(n: int) -> bytes:
    return b"\xff\xd8\xff\xe0" + struct.pack(">I", n) + b"JFIF-emulated" + b"\xff\xd9"

