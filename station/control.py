"""The control socket: newline-delimited JSON over a Unix stream socket.

Request:  {"cmd": "status"} | {"cmd": "retry", "paths": [...]} | {"cmd": "capture"}
          | {"cmd": "roll_new", "name": ..., ...} | any command registered on the App
Answer:   {"ok": true, "result": ...}  or  {"ok": false, "error": "one line"}
One request per line; a connection may carry several.  The socket is created
with mode 0660 (owner and the `station` group).
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
from pathlib import Path

log = logging.getLogger("station.control")

MAX_LINE = 1 << 20


class ControlError(Exception):
    pass


class ControlServer:
    def __init__(self, path: Path, handler):
        """handler(cmd: str, **kw) -> JSON-able result; raises on error."""
        self.path = Path(path)
        self.handler = handler
        self._sock = None
        self._stop = threading.Event()
        self._thread = None

    def start(self) -> None:
        p = self.path
        if p.exists() or p.is_symlink():
            # a stale socket from a crash; refuse if another daemon answers on it
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                    probe.settimeout(1)
                    probe.connect(str(p))
                raise ControlError(f"another daemon is running (control socket {p} answers)")
            except (ConnectionRefusedError, FileNotFoundError, socket.timeout, OSError) as exc:
                if isinstance(exc, ControlError):
                    raise
                p.unlink(missing_ok=True)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        old = os.umask(0o117)
        try:
            s.bind(str(p))
        finally:
            os.umask(old)
        os.chmod(p, 0o660)
        s.listen(16)
        s.settimeout(0.5)
        self._sock = s
        self._thread = threading.Thread(target=self._serve, name="control", daemon=True)
        self._thread.start()
        log.info("control socket %s", p)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            threading.Thread(target=self._client, args=(conn,), daemon=True, name="control-client").start()

    def _client(self, conn: socket.socket) -> None:
        conn.settimeout(300)
        with conn, conn.makefile("rwb") as f:
            while not self._stop.is_set():
                try:
                    line = f.readline(MAX_LINE)
                except (OSError, socket.timeout):
                    return
                if not line:
                    return
                reply = self.answer(line)
                try:
                    f.write(json.dumps(reply, default=str).encode() + b"\n")
                    f.flush()
                except OSError:
                    return

    def answer(self, line: bytes) -> dict:
        try:
            req = json.loads(line)
            if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
                raise ValueError('a request is a JSON object {"cmd": NAME, ...}')
        except ValueError as exc:
            return {"ok": False, "error": f"bad request: {exc}"}
        kw = {k: v for k, v in req.items() if k != "cmd"}
        try:
            return {"ok": True, "result": self.handler(req["cmd"], **kw)}
        except Exception as exc:
            return {"ok": False, "error": str(exc) or exc.__class__.__name__}


def request(path: str | Path, cmd: str, timeout: float = 10.0, args: dict | None = None, **kw):
    """Send one command; return its result or raise ControlError with the daemon's message.

    The one client of the control socket (every command-line tool uses it).  The command's
    arguments are `kw`, or `args` for names this function takes itself (`path`, `timeout`)."""
    data = json.dumps({"cmd": cmd, **(args or {}), **kw}).encode() + b"\n"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(path))
            s.sendall(data)
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
    except FileNotFoundError:
        raise ControlError(f"the daemon is not running (no control socket at {path})") from None
    except ConnectionRefusedError:
        raise ControlError(f"the daemon is not running (control socket {path} refuses connections)") from None
    except PermissionError:
        raise ControlError(f"permission denied on {path} (join the 'station' group)") from None
    except socket.timeout:
        raise ControlError(f"the daemon did not answer within {timeout:.0f} s") from None
    if not buf:
        raise ControlError("the daemon closed the connection without an answer")
    reply = json.loads(buf)
    if not reply.get("ok"):
        raise ControlError(reply.get("error") or "error")
    return reply.get("result")
