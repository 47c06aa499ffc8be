"""The live view: a small HTTP server run inside the daemon.

    svc = WebService(app, "127.0.0.1:8077", token=None, output_dir=cfg_output)
    app.register_service(svc)          # start() now, stop() on shutdown

Why the standard library's ThreadingHTTPServer and no framework: the daemon
is threaded (observer, worker pool, camera thread), the live view has a
handful of clients (the operator's screen, a phone), and each client holds
one long-lived server-sent-events connection.  A thread per connection is
the simplest model that fits, needs no event loop beside the daemon's
threads and adds no dependency to a service that runs unattended.

Routes (every one checks the token when one is set):
    GET  /                     the page (static/index.html)
    GET  /static/<file>        the page's CSS/JS (a fixed list of files)
    GET  /api/state            the view model as JSON (see adapter.py)
    GET  /events               server-sent events: `state` with the view model on
                               connect and on every change the App reports
    GET  /img/<path>[?w=N]     a positive from the output folder (JPEG/PNG only;
                               w = thumbnail width); nothing outside that folder
    GET  /live.mjpg, /live.json  the live positive and its aids (station/web/live.py)
    POST /api/command/<name>   an App command the page sends (adapter.PAGE_COMMANDS:
                               capture | roll_new | calibrate | flatfield | reinvert | retry |
                               set_print | get_print | live); JSON body = its keyword arguments

Security: the default address is 127.0.0.1.  Any other address needs a token
(refused at construction without one).  With a token every request must carry
it: `?token=` (the page then sets an HttpOnly cookie), the `X-Station-Token`
header, `Authorization: Bearer`, or the `station_token` cookie.  Without a
token (loopback only) the Host header must name the loopback, which shuts out
DNS-rebinding pages.  Commands are POST only, with a JSON body and a matching
Origin when the browser sends one, so a foreign page cannot fire the camera.
"""
from __future__ import annotations

import hmac
import io
import ipaddress
import json
import logging
import socket
import threading
import time
from collections import OrderedDict
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from station.web.adapter import PAGE_COMMANDS, AppSource

log = logging.getLogger("station.web")

STATIC_DIR = Path(__file__).with_name("static")
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
                ".ico": "image/x-icon", ".webmanifest": "application/manifest+json"}
IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
THUMB_WIDTHS = (120, 160, 240, 320, 480)
COOKIE = "station_token"
MAX_BODY = 64 * 1024
MIN_INTERVAL = 0.05  # seconds between two state events on one stream
MAX_STREAMS = 32  # concurrent /events clients (each holds a thread)
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


class WebConfigError(ValueError):
    """A bad address or a missing token (message names the config key)."""


def parse_address(address: str) -> tuple[str, int]:
    """'127.0.0.1:8077', 'localhost:8077', '[::1]:8077', '0.0.0.0:8077' -> (host, port)."""
    if not isinstance(address, str) or ":" not in address:
        raise WebConfigError(f"web.address: must be HOST:PORT or off, got {address!r}")
    host, _, port = address.rpartition(":")
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port_n = int(port)
    except ValueError:
        raise WebConfigError(f"web.address: bad port in {address!r}") from None
    if not (0 <= port_n <= 65535) or not host:
        raise WebConfigError(f"web.address: must be HOST:PORT, got {address!r}")
    return host, port_n


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Broker:
    """Wakes the SSE threads when the App reports a change (no polling)."""

    def __init__(self):
        self._cond = threading.Condition()
        self.version = 0
        self.closed = False

    def notify(self) -> None:
        with self._cond:
            self.version += 1
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> int:
        with self._cond:
            self._cond.wait_for(lambda: self.version != seen or self.closed, timeout=timeout)
            return self.version


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 32

    def __init__(self, addr, handler, service: "WebService"):
        host = addr[0]
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.service = service
        super().__init__(addr, handler)


class WebService:
    """The live view as an App service (boundary.Service "web"): start() binds and serves
    on its own thread.  It answers no command of its own: the page sends the App's."""

    name = "web"

    def __init__(self, app, address: str = "127.0.0.1:8077", token: str | None = None,
                 output_dir=None, *, keepalive: float = 15.0):
        self.host, self.port = parse_address(address)
        if self.host == "localhost":
            self.host = "127.0.0.1"
        self.token = token or None
        if not is_loopback(self.host) and not self.token:
            raise WebConfigError(f"web.token: required when web.address binds beyond this machine ({address})")
        if output_dir is None:
            raise WebConfigError("paths.output: the live view needs the output folder")
        self.source = AppSource(app, output_dir)
        self.keepalive = keepalive
        self.broker = _Broker()
        self.streams = threading.BoundedSemaphore(MAX_STREAMS)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._unsubscribe = None
        self._thumbs: OrderedDict = OrderedDict()
        self._thumbs_lock = threading.Lock()
        self.static_files = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file() and p.suffix in STATIC_TYPES}

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> None:
        if self._server is not None:
            return
        self._server = _Server((self.host, self.port), _Handler, self)
        self.port = self._server.server_address[1]
        self._unsubscribe = self.source.subscribe(self.broker.notify)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.25},
                                        name="web", daemon=True)
        self._thread.start()
        log.info("live view on %s%s", self.url, " (token required)" if self.token else "")

    def stop(self) -> None:
        if self._server is None:
            return
        if self._unsubscribe:
            try:
                self._unsubscribe()
            except Exception:  # noqa: BLE001 - the App may already be gone
                log.debug("unsubscribe failed", exc_info=True)
        self.broker.close()  # ends the SSE loops
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        self._server = None
        log.info("live view stopped")

    def snapshot(self):
        return None

    def commands(self) -> dict:
        return {}

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    # -- helpers used by the handler ---------------------------------------------
    def token_ok(self, presented: str | None) -> bool:
        if not self.token:
            return True
        return bool(presented) and hmac.compare_digest(presented.encode(), self.token.encode())

    def thumbnail(self, path: Path, width: int) -> bytes:
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size, width)
        with self._thumbs_lock:
            if key in self._thumbs:
                self._thumbs.move_to_end(key)
                return self._thumbs[key]
        from PIL import Image

        with Image.open(path) as im:
            im.draft("RGB", (width, width))
            im = im.convert("RGB")
            if im.width > width:
                im = im.resize((width, max(1, round(im.height * width / im.width))), Image.Resampling.BILINEAR)
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=80)
        data = buf.getvalue()
        with self._thumbs_lock:
            self._thumbs[key] = data
            while len(self._thumbs) > 512:
                self._thumbs.popitem(last=False)
        return data


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "station-web"
    sys_version = ""
    timeout = 30  # seconds a socket may stall (half-sent requests, clients that stop reading)

    def log_message(self, fmt, *args):  # quiet: the daemon's log is for frames
        log.debug("%s " + fmt, self.address_string(), *args)

    @property
    def svc(self) -> WebService:
        return self.server.service

    # -- plumbing --------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self._common_headers()
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _common_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Content-Security-Policy", CSP)

    def _json(self, status: int, obj) -> None:
        self._send(status, json.dumps(obj, default=str).encode(), "application/json",
                   {"Cache-Control": "no-store"})

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"ok": False, "error": message})

    def _authorised(self, query: dict) -> tuple[bool, str | None]:
        """(ok, token presented in the query string)."""
        svc = self.svc
        q = (query.get("token") or [None])[0]
        if not svc.token:
            host = (self.headers.get("Host") or "").strip()
            name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]", 1)[0]
            return (name.lower() in LOOPBACK_NAMES or not host), None
        presented = [q, self.headers.get("X-Station-Token")]
        auth = self.headers.get("Authorization") or ""
        if auth.lower().startswith("bearer "):
            presented.append(auth[7:].strip())
        cookie = self.headers.get("Cookie")
        if cookie:
            try:
                c = SimpleCookie(cookie)
                if COOKIE in c:
                    presented.append(unquote(c[COOKIE].value))
            except Exception:  # noqa: BLE001 - a malformed cookie header is no token
                pass
        return any(svc.token_ok(p) for p in presented if p), q

    def _cookie_header(self) -> dict:
        return {"Set-Cookie": f"{COOKIE}={quote(self.svc.token, safe='')}; Path=/; HttpOnly; SameSite=Lax"}

    # -- GET ---------------------------------------------------------------------
    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        ok, qtoken = self._authorised(query)
        if not ok:
            self._unauthorised()
            return
        path = parts.path
        try:
            if path in ("/", "/index.html"):
                extra = self._cookie_header() if qtoken else {}
                self._static("index.html", extra)
            elif path.startswith("/static/"):
                self._static(unquote(path[len("/static/"):]))
            elif path == "/api/state":
                self._json(200, self.svc.source.view())
            elif path == "/events":
                self._events()
            elif path.startswith("/img/"):
                self._image(path[len("/img/"):], query)
            elif path == "/favicon.ico":
                self._send(204, b"", "image/x-icon")
            elif path in ("/live.mjpg", "/live.json"):
                from station.web import live

                live.handle(self, path)
            else:
                self._error(404, "not found")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _unauthorised(self) -> None:
        body = (b"<!doctype html><meta charset=utf-8><title>station</title>"
                b"<p>This live view needs its token: open <code>/?token=...</code> "
                b"(the token is <code>web.token</code> in the station's configuration).</p>")
        self._send(401, body, "text/html; charset=utf-8", {"Cache-Control": "no-store"})

    def _static(self, name: str, extra: dict | None = None) -> None:
        f = self.svc.static_files.get(name)
        if f is None:
            self._error(404, "not found")
            return
        headers = {"Cache-Control": "no-cache"}
        headers.update(extra or {})
        self._send(200, f.read_bytes(), STATIC_TYPES[f.suffix], headers)

    def _image(self, rel: str, query: dict) -> None:
        rel = unquote(rel)
        root = self.svc.source._root
        segments = rel.split("/")
        if "\x00" in rel or "\\" in rel or rel.startswith("/") or ".." in segments:
            self._error(403, "forbidden")
            return
        try:
            p = (root / rel).resolve(strict=True)
        except (OSError, RuntimeError):
            self._error(404, "not found")
            return
        if not p.is_relative_to(root):  # a symlink that leads out of the output folder
            self._error(403, "forbidden")
            return
        ctype = IMAGE_TYPES.get(p.suffix.lower())
        if ctype is None or not p.is_file() or p.name.startswith("."):
            self._error(403, "forbidden")
            return
        st = p.stat()
        width = (query.get("w") or [None])[0]
        etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}-{width or 0}"'
        headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if width:
            try:
                w = int(width)
            except ValueError:
                w = 0
            if w not in THUMB_WIDTHS:
                self._error(400, f"w must be one of {THUMB_WIDTHS}")
                return
            try:
                data = self.svc.thumbnail(p, w)
            except Exception as exc:  # noqa: BLE001 - a half-readable image is a 500, not a crash
                self._error(500, f"thumbnail failed: {exc}")
                return
            self._send(200, data, "image/jpeg", headers)
        else:
            self._send(200, p.read_bytes(), ctype, headers)

    def _events(self) -> None:
        self.stream_capped("text/event-stream; charset=utf-8", self._stream, {"X-Accel-Buffering": "no"})

    def stream_capped(self, ctype: str, serve, headers: dict | None = None) -> None:
        """Serve a long-lived stream (/events, /live.mjpg: each holds a thread) within the
        server's cap of MAX_STREAMS, else 503: the response's head, then serve() (not for HEAD)."""
        if not self.svc.streams.acquire(blocking=False):
            self._error(503, "too many live views open")
            return
        try:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Cache-Control", "no-store")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Connection", "close")
            self._common_headers()
            self.end_headers()
            self.close_connection = True
            if self.command != "HEAD":
                serve()
        finally:
            self.svc.streams.release()

    def _stream(self) -> None:
        svc = self.svc
        seen = svc.broker.version
        last = None
        sent_at = 0.0
        self.wfile.write(b"retry: 1000\n\n")
        while True:
            if svc.broker.closed:
                return
            # a burst of changes (a roll dropped in at once) costs at most one
            # snapshot per MIN_INTERVAL per client; the newest state always goes out
            pause = sent_at + MIN_INTERVAL - time.monotonic()
            if pause > 0:
                time.sleep(pause)
                seen = svc.broker.version
            try:
                body = json.dumps(svc.source.view(), default=str)
            except Exception as exc:  # noqa: BLE001 - report, keep the stream
                log.warning("snapshot failed: %s", exc)
                body = None
            if body is not None and body != last:
                self.wfile.write(b"event: state\ndata: " + body.encode() + b"\n\n")
                self.wfile.flush()
                last = body
                sent_at = time.monotonic()
            new = svc.broker.wait(seen, svc.keepalive)
            if new == seen and not svc.broker.closed:
                self.wfile.write(b": keepalive\n\n")
                self.wfile.flush()
            seen = new

    # -- POST ----------------------------------------------------------------------
    def do_POST(self):
        parts = urlsplit(self.path)
        ok, _ = self._authorised(parse_qs(parts.query))
        if not ok:
            self._unauthorised()
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._error(413, "body too large")
            return
        body = self.rfile.read(length) if length else b""
        if not parts.path.startswith("/api/command/"):
            self._error(404, "not found")
            return
        origin = self.headers.get("Origin")
        if origin and origin != "null":
            if urlsplit(origin).netloc.lower() != (self.headers.get("Host") or "").lower():
                self._error(403, "cross-origin command refused")
                return
        elif origin == "null":
            self._error(403, "cross-origin command refused")
            return
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            self._error(415, "commands take a JSON body (Content-Type: application/json)")
            return
        name = parts.path[len("/api/command/"):]
        if name not in PAGE_COMMANDS:
            self._error(404, f"unknown command {name!r}")
            return
        try:
            kw = json.loads(body or b"{}")
        except ValueError:
            self._error(400, "body is not JSON")
            return
        if not isinstance(kw, dict) or not all(isinstance(k, str) and k.isidentifier() for k in kw):
            self._error(400, "body must be a JSON object of keyword arguments")
            return
        t0 = time.monotonic()
        try:
            result = self.svc.source.command(name, kw)
        except Exception as exc:  # noqa: BLE001 - the App's refusal goes back to the page
            log.warning("command %s from the live view failed: %s", name, exc)
            self._error(409, str(exc) or type(exc).__name__)
            return
        log.info("command %s from the live view (%.2f s)", name, time.monotonic() - t0)
        self._json(200, {"ok": True, "result": result})

    def do_PUT(self):
        self._error(405, "method not allowed")

    do_DELETE = do_PATCH = do_PUT


def attach(app) -> WebService | None:
    """The plug-in (station/plugins.py): the live view from the config.

    `web.address` ("HOST:PORT" or "off", set by `--web`), `web.token`,
    `paths.output`.  Returns the service, or None when the live view is off.
    """
    cfg = getattr(app, "cfg", {}) or {}
    web = cfg.get("web") or {}
    address = web.get("address") or "off"
    if str(address).lower() == "off":
        log.info("live view off")
        return None
    svc = WebService(app, address, web.get("token"), cfg["paths"]["output"])
    app.register_service(_Guarded(svc))
    return svc


class _Guarded:
    """The live view must never take the daemon down: a port already in use is
    logged as an error and the station goes on inverting without its page."""

    name = "web"

    def __init__(self, svc: WebService):
        self.svc = svc

    def snapshot(self):
        return None

    def commands(self) -> dict:
        return {}

    def start(self) -> None:
        try:
            self.svc.start()
        except OSError as exc:
            log.error("live view NOT started on %s:%s: %s", self.svc.host, self.svc.port, exc)

    def stop(self) -> None:
        self.svc.stop()

    def __repr__(self) -> str:
        return f"<live view {self.svc.url}>"
