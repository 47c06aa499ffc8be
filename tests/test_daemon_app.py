"""The App's plug-in API without starting processes: commands, services,
publish/subscribe, snapshot; and the control socket server+client."""
import threading

import pytest

from station import config
from station.app import App, CommandError
from station.control import ControlError, ControlServer, request


@pytest.fixture
def app(tmp_path):
    for d in ("in", "out", "st"):
        (tmp_path / d).mkdir()
    cfg = config.validate({"paths": {"incoming": str(tmp_path / "in"), "output": str(tmp_path / "out"),
                                     "state": str(tmp_path / "st")}})
    a = App(cfg)
    yield a
    a.journal.close()


class FakeCamera:
    def __init__(self):
        self.calls = []
        self.events = []

    def start(self):
        self.events.append("start")

    def stop(self):
        self.events.append("stop")

    def capture(self, **kw):
        self.calls.append(kw)
        return {"files": ["IMG_0001.CR3"]}

    def state(self):
        return {"state": "connected", "model": "Fake"}


def test_commands_and_camera(app):
    with pytest.raises(CommandError, match="no camera configured"):
        app.command("capture")
    with pytest.raises(CommandError, match="no roll service"):
        app.command("roll_new", name="r1")
    with pytest.raises(CommandError, match="unknown command"):
        app.command("explode")
    assert app.snapshot()["camera"]["state"] == "none"
    cam = FakeCamera()
    app.register_service(cam, name="camera")
    assert app.command("capture", count=1) == {"files": ["IMG_0001.CR3"]} and cam.calls == [{"count": 1}]
    assert app.snapshot()["camera"] == {"state": "connected", "model": "Fake"}
    app.register_command("roll_new", lambda **kw: {"roll": kw["name"]})
    assert app.command("roll_new", name="r1") == {"roll": "r1"}
    assert app.command("retry") == {"requeued": []}
    snap = app.snapshot()
    import json

    json.dumps(snap)  # JSON-able
    for key in ("queue", "frames", "latency", "camera", "last_positive", "counts", "workers", "recent_errors"):
        assert key in snap


def test_publish_subscribe(app):
    got = []
    done = threading.Event()

    def cb(ev):
        got.append(ev)
        if len(got) == 2:
            done.set()

    unsub = app.subscribe(cb)
    app.subscribe(lambda ev: 1 / 0)  # a failing subscriber does not stop the others
    t = threading.Thread(target=app._dispatch_events, daemon=True)
    t.start()
    app.publish({"type": "camera", "state": "busy"})
    app.publish({"type": "frame", "frame": {"path": "a.dng"}})
    assert done.wait(5)
    assert [e["type"] for e in got] == ["camera", "frame"] and "time" in got[0]
    unsub()
    app.publish({"type": "camera", "state": "connected"})
    app._events.put(None)
    t.join(5)
    assert len(got) == 2


def test_control_socket(tmp_path):
    calls = []

    def handler(cmd, /, **kw):
        calls.append((cmd, kw))
        if cmd == "boom":
            raise CommandError("it broke")
        return {"cmd": cmd, **kw}

    path = tmp_path / "c.sock"
    srv = ControlServer(path, handler)
    srv.start()
    try:
        assert path.stat().st_mode & 0o777 == 0o660
        assert request(path, "status") == {"cmd": "status"}
        assert request(path, "retry", paths=["a.dng"]) == {"cmd": "retry", "paths": ["a.dng"]}
        with pytest.raises(ControlError, match="it broke"):
            request(path, "boom")
        import socket

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:  # two requests, one bad line
            s.connect(str(path))
            s.sendall(b'not json\n{"cmd": "ping"}\n')
            f = s.makefile("rb")
            assert b'"ok": false' in f.readline()
            assert b'"ok": true' in f.readline()
        # a second server on the same live socket is refused
        with pytest.raises(ControlError, match="another daemon"):
            ControlServer(path, handler).start()
    finally:
        srv.stop()
    assert not path.exists()
    with pytest.raises(ControlError, match="not running"):
        request(path, "status")
