"""The daemon plug-in (station.capture.service.attach) against a stand-in app and the PTP/IP emulator."""
import json
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("gphoto2")
sys.path.insert(0, str(Path(__file__).parent))
from ptpip_emulator import EmulatedCamera  # noqa: E402
from station.capture.service import attach  # noqa: E402


class FakeApp:
    def __init__(self, cfg):
        self.cfg = cfg
        self.services = []
        self.events = []
        self.subs = []
        self.commands = {}

    def register_service(self, obj):  # as App.register_service: a boundary.Service, its commands
        from station.boundary import missing_members

        assert not missing_members(obj), missing_members(obj)
        self.services.append((obj.name, obj))
        self.commands.update(obj.commands())

    def register_command(self, name, fn):
        self.commands[name] = fn

    def publish(self, ev):
        self.events.append(ev)
        for cb in list(self.subs):
            cb(ev)

    def subscribe(self, cb):
        self.subs.append(cb)
        return lambda: self.subs.remove(cb) if cb in self.subs else None


def cfg(tmp_path, port):
    (tmp_path / "in").mkdir()
    return {"paths": {"incoming": tmp_path / "in", "state": tmp_path / "state"},
            "camera": {"port": port, "keep_on_card": True, "capture_target": None, "jpeg": "drop"}}


def test_no_camera_configured_registers_nothing(tmp_path):
    app = FakeApp(cfg(tmp_path, None))
    attach(app)
    assert app.services == []


def test_capture_roll_and_positive_wait(tmp_path):
    with EmulatedCamera(raw_plus_jpeg=True) as emu:
        app = FakeApp(cfg(tmp_path, emu.address))
        attach(app)
        (name, svc), = app.services
        assert name == "camera"
        svc.start()
        try:
            assert svc.camera.wait_ready(5)
            r = svc.roll_new(name="r7", stock="Ilford HP5", film="bw")
            assert r["name"] == "r7"
            assert json.loads(Path(r["manifest"]).read_text())["film"] == "bw"  # the daemon renders it as B&W
            # a preview appears for the RAW (published by the daemon's processor; faked here)
            def fake_processor():
                while not any(e.get("event") == "file" for e in app.events):
                    time.sleep(0.01)
                app.publish({"type": "frame", "frame": {"path": "r7/01.dng", "state": "preview_written",
                                                       "preview": "/out/r7/01.preview.jpg"}})
            threading.Thread(target=fake_processor, daemon=True).start()
            out = svc.capture(wait_positive=True, timeout=10)
            assert out["files"] == [str(tmp_path / "in" / "r7" / "01.dng")]  # JPEG dropped (jpeg: drop)
            assert out["preview"] == "/out/r7/01.preview.jpg" and "trigger to preview" in out["latency"]
            snap = svc.snapshot()  # the boundary's CameraState, with the camera's roll
            assert snap.state == "ready" and snap.roll.name == "r7" and snap.roll.frames == 1
            assert "ready" in snap.status
            assert {"type": "roll", "event": "new", "roll": "r7"} in [
                {k: e.get(k) for k in ("type", "event", "roll")} for e in app.events]
            assert set(app.commands) == {"capture", "roll_new", "calibrate", "flatfield"}
            assert any(e.get("type") == "camera" and e.get("state") == "ready" for e in app.events)
        finally:
            svc.stop()
        with pytest.raises(RuntimeError, match="not running|no camera"):
            svc.capture(timeout=1)


def test_sigusr1_fires_the_camera():
    import concurrent.futures as cf
    import os
    import signal

    from station.capture.control import install_sigusr1

    class Svc:
        calls = 0

        def capture(self):
            Svc.calls += 1
            f = cf.Future()
            f.set_result(["x"])
            return f

    results = []
    old = signal.getsignal(signal.SIGUSR1)
    try:
        install_sigusr1(Svc(), on_result=lambda f: results.append(f.result()))
        os.kill(os.getpid(), signal.SIGUSR1)
        deadline = time.monotonic() + 2
        while not results and time.monotonic() < deadline:
            time.sleep(0.01)
        assert Svc.calls == 1 and results == [["x"]]
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_virtual_camera_port_in_the_daemon(tmp_path):
    app = FakeApp(cfg(tmp_path, "virtual"))
    attach(app)
    (_, svc), = app.services
    svc.start()
    try:
        assert svc.camera.wait_ready(10), svc.snapshot()
        out = svc.capture(timeout=20)
        (path,) = out["files"]
        assert path.endswith(".dng")
        from station.capture.names import sniff

        assert sniff(Path(path).read_bytes()).kind == "raw"
    finally:
        svc.stop()


def test_calibrate_shoots_the_roll_base_outside_the_watched_files(tmp_path):
    app = FakeApp(cfg(tmp_path, "virtual"))
    attach(app)
    (_, svc), = app.services
    assert app.commands["calibrate"] == svc.calibrate
    svc.start()
    try:
        assert svc.camera.wait_ready(10), svc.snapshot()
        try:
            svc.calibrate(timeout=20)
            raise AssertionError("calibrate without a roll must be refused")
        except RuntimeError as exc:
            assert "no current roll" in str(exc)
        svc.roll_new(name="r7", stock="Kodak Gold 200", frames=3)
        res = svc.calibrate(timeout=20)
        assert res["roll"] == "r7" and len(res["base"]) == 3 and all(v > 0 for v in res["base"])
        assert Path(res["file"]).is_file() and Path(res["file"]).parent == tmp_path / "state" / "rolls" / "r7"
        manifest = json.loads((tmp_path / "state" / "rolls" / "r7" / "manifest.json").read_text())
        assert manifest["base"]["rgb"] == res["base"] and manifest["frames"] == []
        # nothing the folder watcher would take as a frame
        visible = [p for p in (tmp_path / "in").rglob("*") if p.is_file() and not any(x.startswith(".") for x in p.relative_to(tmp_path / "in").parts)]
        assert visible == []
        # the next shot is frame 1 of the roll
        out = svc.capture(timeout=20)
        assert out["files"][0].endswith("r7/01.dng")
    finally:
        svc.stop()
