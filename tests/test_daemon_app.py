"""The App's plug-in API without starting processes: commands, services,
publish/subscribe, snapshot; and the control socket server+client."""
import threading

import pytest

from station import config
from station.app import App, CommandError
from station.boundary import CameraState, RollState
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


class StubCamera:
    """A camera service (boundary.Service) below the App."""
    name = "camera"

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

    def snapshot(self):
        return CameraState(state="ready", model="Stub", roll=RollState("r7", 3, 4))

    def commands(self):
        return {"capture": self.capture}


def test_commands_and_camera(app):
    with pytest.raises(CommandError, match="no camera configured"):
        app.command("capture")
    with pytest.raises(CommandError, match="no roll service"):
        app.command("roll_new", name="r1")
    with pytest.raises(CommandError, match="unknown command"):
        app.command("explode")
    assert {"capture", "roll_new", "calibrate", "reinvert", "retry", "status"} <= set(app.commands())
    assert app.snapshot()["camera"]["state"] == "none"
    assert app.state().roll is None
    cam = StubCamera()
    app.register_service(cam)
    assert app.command("capture", count=1) == {"files": ["IMG_0001.CR3"]} and cam.calls == [{"count": 1}]
    snap = app.snapshot()
    assert snap["camera"]["state"] == "ready" and snap["camera"]["model"] == "Stub"
    assert snap["camera"]["roll"] == {"name": "r7", "frames": 3, "next_frame": 4}
    assert app.state().roll == RollState("r7", 3, 4)
    app.register_command("roll_new", lambda **kw: {"roll": kw["name"]})
    assert app.command("roll_new", name="r1") == {"roll": "r1"}
    assert app.command("retry") == {"requeued": []}
    import json

    json.dumps(snap)  # JSON-able
    for key in ("queue", "frames", "latency", "camera", "last_positive", "counts", "workers", "recent_errors"):
        assert key in snap


def test_services_keep_the_protocol(app):
    class Half:
        def start(self):
            pass

        def stop(self):
            pass

    with pytest.raises(TypeError, match="lacks name, snapshot, commands"):
        app.register_service(Half())
    app.register_service(StubCamera())
    with pytest.raises(ValueError, match="registered already"):
        app.register_service(StubCamera())

    class Other(StubCamera):
        name = "other"

    with pytest.raises(ValueError, match="'capture' is answered already"):
        app.register_service(Other())
    with pytest.raises(ValueError, match="answered already"):
        app.register_command("retry", lambda **kw: None)

    class Broken(StubCamera):
        name = "broken"

        def snapshot(self):
            raise RuntimeError("sensor on fire")

        def commands(self):
            return {}

    app.register_service(Broken())
    assert app.snapshot()["broken"] == {"error": "sensor on fire"}  # a service's part never breaks status


def test_plugins_are_declared_and_a_missing_one_is_an_error(app):
    from station.plugins import PLUGINS, PluginError, attach_all

    assert "station.web.server" in PLUGINS
    with pytest.raises(PluginError, match="station.nonexistent"):
        attach_all(app, ("station.nonexistent",))
    with pytest.raises(PluginError, match="no attach"):
        attach_all(app, ("station.journal",))


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
