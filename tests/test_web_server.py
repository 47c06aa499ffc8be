"""The live view's HTTP layer (real WebService, real sockets) over the real App
(station_stub.Station: the daemon's App with a stub camera and the test playing
the worker): SSE delivery, command dispatch, token enforcement, traversal blocking."""
from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from station_stub import Station
from station.web.server import WebConfigError, WebService, parse_address

DEADLINE = 5.0


def jpeg(path: Path, size=(320, 200), colour=(180, 120, 60)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, "JPEG")
    return path


@pytest.fixture
def app(tmp_path):
    st = Station(tmp_path)
    yield st
    st.close()


@pytest.fixture
def out(app) -> Path:
    return app.output


def serve(st, out, address="127.0.0.1:0", token=None, **kw) -> WebService:
    return st.serve(WebService(st.app, address, token, out, **kw))


def request(svc, method, path, body=None, headers=None, host=None):
    conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=DEADLINE)
    h = dict(headers or {})
    if host is not None:
        conn.putrequest(method, path, skip_host=True)
        conn.putheader("Host", host)
        for k, v in h.items():
            conn.putheader(k, v)
        data = body.encode() if isinstance(body, str) else body
        if data is not None:
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
    else:
        conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r, data


def post(svc, name, args=None, headers=None):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    return request(svc, "POST", f"/api/command/{name}", json.dumps(args or {}), h)


class SSE:
    """A minimal event-stream reader over a raw socket."""

    def __init__(self, svc, path="/events", headers=""):
        self.sock = socket.create_connection(("127.0.0.1", svc.port), timeout=DEADLINE)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{svc.port}\r\n{headers}\r\n".encode())
        self.buf = b""
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        self.headers = head.decode("latin-1").lower()

    def _until(self, sep: bytes) -> bytes:
        end = time.monotonic() + DEADLINE
        while sep not in self.buf:
            self.sock.settimeout(max(0.05, end - time.monotonic()))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        part, self.buf = self.buf.split(sep, 1)
        return part

    def next_state(self) -> dict:
        while True:
            block = self._until(b"\n\n").decode()
            lines = block.split("\n")
            if "event: state" in lines:
                data = "".join(line[6:] for line in lines if line.startswith("data: "))
                return json.loads(data)

    def wait_for(self, pred) -> dict:
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            st = self.next_state()
            if pred(st):
                return st
        raise AssertionError("no matching state before the deadline")

    def close(self):
        self.sock.close()


# -- address and token policy ------------------------------------------------------------

def test_parse_address():
    assert parse_address("127.0.0.1:8077") == ("127.0.0.1", 8077)
    assert parse_address("[::1]:9000") == ("::1", 9000)
    assert parse_address("0.0.0.0:80") == ("0.0.0.0", 80)
    for bad in ("8077", "host:port", ":80", "1.2.3.4:70000"):
        with pytest.raises(WebConfigError):
            parse_address(bad)


@pytest.mark.parametrize("address", ["0.0.0.0:0", "192.168.1.20:8077", "[::]:8077"])
def test_non_loopback_without_token_refused(app, out, address):
    with pytest.raises(WebConfigError, match="web.token"):
        WebService(app.app, address, None, out)
    with pytest.raises(WebConfigError, match="web.token"):
        WebService(app.app, address, "", out)


def test_loopback_default_needs_no_token(app, out):
    svc = serve(app, out)
    assert svc.host == "127.0.0.1"
    r, body = request(svc, "GET", "/")
    assert r.status == 200 and b"station" in body
    assert "default-src 'self'" in r.getheader("Content-Security-Policy")


def test_wildcard_bind_with_token_serves_and_enforces(app, out):
    svc = serve(app, out, "0.0.0.0:0", token="s3cret-token")
    r, _ = request(svc, "GET", "/api/state")
    assert r.status == 401
    r, body = request(svc, "GET", "/api/state?token=s3cret-token")
    assert r.status == 200 and json.loads(body)["roll"] == "roll-001"


def test_token_every_carrier_and_every_route(app, out):
    jpeg(out / "a.jpg")
    svc = serve(app, out, token="tok-123")
    routes = ["/", "/static/app.js", "/api/state", "/img/a.jpg", "/events"]
    for path in routes:
        r, _ = request(svc, "GET", path)
        assert r.status == 401, path
        r, _ = request(svc, "GET", path + "?token=wrong")
        assert r.status == 401, path
    r, _ = post(svc, "capture")
    assert r.status == 401 and app.camera.calls == []
    good = [({}, "?token=tok-123"), ({"X-Station-Token": "tok-123"}, ""),
            ({"Authorization": "Bearer tok-123"}, ""), ({"Cookie": "station_token=tok-123"}, "")]
    for headers, q in good:
        for path in routes[:4]:
            r, _ = request(svc, "GET", path + q, headers=headers)
            assert r.status == 200, (path, headers)
        r, _ = post(svc, "capture" + q, headers=headers)
        assert r.status == 200, headers
    assert [c for c, _ in app.camera.calls] == ["capture"] * 4
    # the page opened with ?token= sets an HttpOnly cookie so images, events and commands carry it
    r, _ = request(svc, "GET", "/?token=tok-123")
    cookie = r.getheader("Set-Cookie")
    assert "station_token=tok-123" in cookie and "HttpOnly" in cookie
    sse = SSE(svc, headers="Cookie: station_token=tok-123\r\n")
    assert sse.status == 200 and sse.next_state()["roll"] == "roll-001"
    sse.close()


def test_loopback_without_token_refuses_foreign_host_header(app, out):
    svc = serve(app, out)
    r, _ = request(svc, "GET", "/api/state", host="evil.example:8077")
    assert r.status == 401  # a DNS-rebinding page cannot read the state
    r, _ = request(svc, "GET", "/api/state", host=f"localhost:{svc.port}")
    assert r.status == 200


# -- commands ---------------------------------------------------------------------------------

def test_command_dispatch(app, out, tmp_path):
    svc = serve(app, out)
    r, body = post(svc, "capture")
    assert r.status == 200 and json.loads(body) == {"ok": True, "result": {"ok": True}}
    post(svc, "calibrate")
    assert app.camera.calls == [("capture", {}), ("calibrate", {})]
    # reinvert and retry are the App's own: they reach the journal and the job queue
    k = app.add_frame()
    app.land_preview(k, jpeg(tmp_path / "p.jpg"))
    app.land_master(k)
    r, body = post(svc, "reinvert", {"path": k})
    assert r.status == 200 and json.loads(body)["result"] == {"frame": k, "queued": "preview"}
    assert app.row(k)["rerender"] and app.app.queue.get(("preview",), timeout=1).overwrite
    r, body = post(svc, "reinvert", {"path": "roll-001/nope.CR3"})
    assert r.status == 409 and "nope.CR3" in json.loads(body)["error"]
    f = app.add_frame()
    app.fail(f, "truncated")
    r, body = post(svc, "retry")
    assert r.status == 200 and json.loads(body)["result"] == {"requeued": [f]}
    r, body = post(svc, "roll_new", {"name": "kodak-gold-12"})
    assert r.status == 200 and json.loads(body)["result"] == {"name": "kodak-gold-12"}
    assert app.camera.calls[-1] == ("roll_new", {"name": "kodak-gold-12"})


def test_command_errors_and_refusals(app, out):
    svc = serve(app, out)

    def busy(**kw):
        raise RuntimeError("camera busy")
    app.camera.on_command["capture"] = busy
    r, body = post(svc, "capture")
    assert r.status == 409 and json.loads(body) == {"ok": False, "error": "camera busy"}
    r, _ = post(svc, "format_card")
    assert r.status == 404
    r, _ = request(svc, "GET", "/api/command/capture")
    assert r.status == 404
    r, _ = request(svc, "POST", "/api/command/capture", "{}", {"Content-Type": "text/plain"})
    assert r.status == 415  # a cross-site <form> cannot send JSON
    r, _ = post(svc, "capture", headers={"Origin": "http://evil.example"})
    assert r.status == 403
    r, _ = post(svc, "capture", headers={"Origin": "null"})
    assert r.status == 403
    r, _ = request(svc, "POST", "/api/command/reinvert", "[1]", {"Content-Type": "application/json"})
    assert r.status == 400
    r, _ = request(svc, "POST", "/api/command/reinvert", "{not json", {"Content-Type": "application/json"})
    assert r.status == 400
    r, _ = request(svc, "PUT", "/api/command/capture", "{}", {"Content-Type": "application/json"})
    assert r.status == 405
    assert [c for c, _ in app.camera.calls] == ["capture"]  # only the one that reached the App
    r, _ = post(svc, "capture", headers={"Origin": f"http://127.0.0.1:{svc.port}"})
    assert r.status == 409  # same origin: reaches the App (which is busy)


# -- images and traversal -------------------------------------------------------------------

def test_positives_served_only_from_output(app, out, tmp_path):
    jpeg(out / "roll-001" / "IMG_0001.preview.jpg", size=(1200, 800))
    (tmp_path / "secret.jpg").write_bytes(b"\xff\xd8 secret")
    (out / "notes.txt").write_text("not an image")
    (out / ".IMG_0002.preview.jpg.tmp").write_bytes(b"partial")
    os.symlink(tmp_path / "secret.jpg", out / "link.jpg")
    svc = serve(app, out)
    r, body = request(svc, "GET", "/img/roll-001/IMG_0001.preview.jpg?v=1")
    assert r.status == 200 and r.getheader("Content-Type") == "image/jpeg" and body[:2] == b"\xff\xd8"
    etag = r.getheader("ETag")
    r, _ = request(svc, "GET", "/img/roll-001/IMG_0001.preview.jpg", headers={"If-None-Match": etag})
    assert r.status == 304
    r, body = request(svc, "GET", "/img/roll-001/IMG_0001.preview.jpg?w=240")
    assert r.status == 200
    from io import BytesIO
    assert Image.open(BytesIO(body)).size == (240, 160)
    r, _ = request(svc, "GET", "/img/roll-001/IMG_0001.preview.jpg?w=5000")
    assert r.status == 400
    for bad in ["/img/../secret.jpg", "/img/%2e%2e/secret.jpg", "/img/roll-001/..%2f..%2fsecret.jpg",
                "/img/%2F" + str(tmp_path / "secret.jpg").lstrip("/"), "/img/link.jpg", "/img/notes.txt",
                "/img/.IMG_0002.preview.jpg.tmp", "/img/roll-001%5c..%5c..%5csecret.jpg", "/img/a%00.jpg",
                "/img//etc/passwd"]:
        r, body = request(svc, "GET", bad)
        assert r.status == 403, bad
        assert b"secret" not in body
    r, _ = request(svc, "GET", "/img/roll-001/IMG_9999.preview.jpg")
    assert r.status == 404
    r, _ = request(svc, "GET", "/static/../server.py")
    assert r.status == 404
    r, _ = request(svc, "GET", "/static/app.css")
    assert r.status == 200 and r.getheader("Content-Type").startswith("text/css")


# -- server-sent events ----------------------------------------------------------------------

def test_sse_delivers_state_on_connect_and_on_change(app, out, tmp_path):
    svc = serve(app, out)
    sse = SSE(svc)
    assert sse.status == 200 and "text/event-stream" in sse.headers
    first = sse.next_state()
    assert first["frames"] == [] and first["camera"]["state"] == "connected"
    assert first["roll"] == "roll-001"  # the camera's roll (no frame in it yet)
    f = app.add_frame()
    st = sse.wait_for(lambda s: len(s["frames"]) == 1)
    assert st["frames"][0]["status"] == "queued" and st["frames"][0]["url"] is None
    src = jpeg(tmp_path / "p.jpg")
    app.land_preview(f, src, latency=0.84)
    st = sse.wait_for(lambda s: s["latest"] is not None)
    fr = st["frames"][0]
    assert fr["status"] == "preview" and fr["latency"]["preview"] == pytest.approx(0.84, abs=0.1) and fr["number"] == 1
    assert st["latest"]["url"] == fr["url"] and fr["url"].startswith("/img/roll-001/IMG_0001.preview.jpg?v=")
    r, body = request(svc, "GET", fr["url"])
    assert r.status == 200 and body == src.read_bytes()
    g = app.add_frame()
    app.fail(g, "truncated RAW (LibRaw: unexpected end of file)")
    st = sse.wait_for(lambda s: len(s["frames"]) == 2 and s["frames"][1]["status"] == "failed")
    assert st["frames"][1]["reason"] == "truncated RAW (LibRaw: unexpected end of file)"
    app.camera.set_state("reconnecting", "USB cable unplugged; reconnecting")
    st = sse.wait_for(lambda s: s["camera"]["state"] == "reconnecting")
    assert st["camera"]["detail"] == "USB cable unplugged; reconnecting"
    for _ in range(3):
        app.add_frame()
    st = sse.wait_for(lambda s: s["queue"]["total"] == 4)  # three previews and the first frame's master
    assert st["queue"]["detail"] == {"length": 4, "preview": 3, "master": 1, "tracking": 0}
    sse.close()


def test_sse_many_clients_keepalive_and_clean_stop(app, out):
    svc = serve(app, out, keepalive=0.2)
    clients = [SSE(svc) for _ in range(3)]
    for c in clients:
        c.next_state()
    # keepalive comments flow while nothing changes (dead clients are found this way)
    assert b": keepalive" in (clients[0]._until(b": keepalive\n\n") + b": keepalive")
    app.camera.set_state("busy")
    for c in clients:
        assert c.wait_for(lambda s: s["camera"]["state"] == "busy")
    clients[1].close()  # a client going away must not disturb the others
    app.camera.set_state("ready")
    assert clients[0].wait_for(lambda s: s["camera"]["state"] == "connected")
    t0 = threading.active_count()
    app.close()  # the App stops its services: the streams end, the port closes
    for c in (clients[0], clients[2]):
        with pytest.raises((EOFError, ConnectionError)):
            while True:
                c._until(b"\n\n")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", svc.port), timeout=1)
    assert app.app._subscribers == [app.app._store_checks]  # the page unsubscribed (the App's own stays)
    assert threading.active_count() <= t0


def test_roll_filter_and_state_view(app, out, tmp_path):
    svc = serve(app, out)
    a = app.add_frame()
    app.land_preview(a, jpeg(tmp_path / "a.jpg"))
    app.app.command("roll_new", name="roll-002")
    r, body = request(svc, "GET", "/api/state")
    assert json.loads(body)["roll"] == "roll-002"  # the camera's new roll, before any frame is in it
    assert json.loads(body)["frames"] == []
    b = app.add_frame()
    r, body = request(svc, "GET", "/api/state")
    st = json.loads(body)
    assert st["roll"] == "roll-002"
    assert [f["key"] for f in st["frames"]] == [b]  # the strip shows the current roll
    assert st["frames"][0]["number"] == 1
    assert st["latest"]["url"].startswith("/img/roll-001/")  # the last positive is still shown large


def test_event_streams_are_capped(app, out, monkeypatch):
    import station.web.server as server

    monkeypatch.setattr(server, "MAX_STREAMS", 2)
    svc = serve(app, out)
    a, b = SSE(svc), SSE(svc)
    a.next_state()
    b.next_state()
    c = SSE(svc)
    assert c.status == 503
    c.close()
    a.close()
    end = time.monotonic() + DEADLINE  # a's thread notices the closed socket at its next write
    while time.monotonic() < end:
        app.add_frame()  # a change: every stream writes
        d = SSE(svc)
        if d.status == 200:
            d.close()
            break
        d.close()
        time.sleep(0.05)
    else:
        raise AssertionError("a closed stream's slot was not freed")
    b.close()
