"""Auto-roll controller with a real thread, a camera stand-in and real advance-hook scripts."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from helpers import PluginHost

from station.autoroll import DONE, END_OF_FILM, PEDAL, STOPPED, AutoRoll, AutoRollError, commands, register
from station.hooks import HookRunner

DEADLINE = 30.0


@dataclass
class Captured:
    path: Path


class Camera:
    """capture() → Future of [path]; writes a small file per shot, like a download into incoming/."""

    def __init__(self, folder: Path, gate: threading.Event | None = None, fail_at: int | None = None):
        self.folder = folder
        self.gate = gate
        self.fail_at = fail_at
        self.shots = 0
        self.pool = ThreadPoolExecutor(1)
        self.started = threading.Event()

    def _shoot(self, n: int):
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(DEADLINE)
        if n == self.fail_at:
            raise RuntimeError("camera busy (-110)")
        p = self.folder / f"{n:02d}.dng"
        p.write_bytes(b"raw %d" % n)
        return [Captured(p)]  # like CameraService: objects with a .path

    def capture(self) -> Future:
        self.shots += 1
        return self.pool.submit(self._shoot, self.shots)


def advance_script(tmp_path: Path, end_after: int | None = None, fail_code: int | None = None) -> str:
    """An advance hook: appends its STATION_FRAME to a log; exits 3 after `end_after` advances."""
    log = tmp_path / "advance.log"
    body = f'echo "$STATION_FRAME $STATION_ROLL" >> "{log}"\n'
    if fail_code is not None:
        body += f"exit {fail_code}\n"
    if end_after is not None:
        body += f'n=$(wc -l < "{log}"); if [ "$n" -ge {end_after} ]; then exit 3; fi\n'
    body += "exit 0\n"
    script = tmp_path / "advance.sh"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return str(script)


def hooks_for(tmp_path: Path, **kw) -> HookRunner:
    events = tmp_path / "events.log"
    return HookRunner({
        "advance": [advance_script(tmp_path, **kw)],
        "roll_complete": f'echo "roll_complete $STATION_FRAME $STATION_REASON" >> "{events}"',
        "error": f'echo "error $STATION_FRAME $STATION_REASON" >> "{events}"',
    })


def events_of(tmp_path: Path, hooks: HookRunner) -> list[str]:
    hooks.stop(timeout=DEADLINE)
    p = tmp_path / "events.log"
    return p.read_text().splitlines() if p.exists() else []


def advances(tmp_path: Path) -> list[str]:
    p = tmp_path / "advance.log"
    return p.read_text().splitlines() if p.exists() else []


def test_short_roll_completes_with_advances_between_frames(tmp_path):
    cam, hooks = Camera(tmp_path), hooks_for(tmp_path)
    seen = []
    ar = AutoRoll(cam.capture, hooks, settle=0.0, roll="r1", on_change=seen.append)
    ar.start(frames=4)
    assert ar.wait(DEADLINE)
    snap = ar.snapshot()
    assert snap["state"] == "idle" and not snap["running"]
    assert (snap["frame"], snap["frames"], snap["reason"], snap["error"]) == (4, 4, DONE, None)
    assert cam.shots == 4
    assert snap["last_files"] == [str(tmp_path / "04.dng")]
    assert advances(tmp_path) == ["1 r1", "2 r1", "3 r1"]  # none after the last frame
    assert events_of(tmp_path, hooks) == [f"roll_complete 4 {DONE}"]
    states = [s["state"] for s in seen]
    assert {"capturing", "advancing", "settling"} <= set(states) and states[-1] == "idle"


def test_exit_code_3_means_end_of_film(tmp_path):
    cam, hooks = Camera(tmp_path), hooks_for(tmp_path, end_after=3)
    ar = AutoRoll(cam.capture, hooks, settle=0.0, roll="r2")
    ar.start(frames=36)
    assert ar.wait(DEADLINE)
    snap = ar.snapshot()
    assert (snap["frame"], snap["reason"], snap["error"]) == (3, END_OF_FILM, None)
    assert cam.shots == 3
    assert events_of(tmp_path, hooks) == [f"roll_complete 3 {END_OF_FILM}"]


def test_other_exit_code_is_an_error_and_stops(tmp_path):
    cam, hooks = Camera(tmp_path), hooks_for(tmp_path, fail_code=5)
    ar = AutoRoll(cam.capture, hooks, settle=0.0)
    ar.start(frames=10)
    assert ar.wait(DEADLINE)
    snap = ar.snapshot()
    assert snap["frame"] == 1 and snap["reason"] == "error"
    assert "exited with status 5" in snap["error"]
    assert cam.shots == 1
    ev = events_of(tmp_path, hooks)
    assert len(ev) == 1 and ev[0].startswith("error 1 ") and "status 5" in ev[0]


def test_hanging_advance_hook_times_out_into_an_error(tmp_path):
    cam = Camera(tmp_path)
    hooks = HookRunner({"advance": "sleep 300"}, grace=0.2)
    ar = AutoRoll(cam.capture, hooks, settle=0.0, advance_timeout=0.5)
    ar.start(frames=3)
    assert ar.wait(DEADLINE)
    snap = ar.snapshot()
    assert snap["frame"] == 1 and "timed out" in snap["error"]


def test_stop_during_a_long_settle_ends_the_roll(tmp_path):
    cam, hooks = Camera(tmp_path), hooks_for(tmp_path)
    ar = AutoRoll(cam.capture, hooks, settle=3600.0)
    ar.start(frames=36)
    assert _wait(lambda: ar.snapshot()["state"] == "settling")
    ar.stop()
    assert ar.wait(DEADLINE), "stop() should interrupt the settle wait"
    snap = ar.snapshot()
    assert (snap["frame"], snap["reason"], snap["error"]) == (1, STOPPED, None)
    assert cam.shots == 1
    assert events_of(tmp_path, hooks) == []  # a stopped roll is not complete


def test_pedal_stops_a_running_roll_and_a_capture_in_flight_still_lands(tmp_path):
    gate = threading.Event()
    cam, hooks = Camera(tmp_path, gate=gate), hooks_for(tmp_path)
    ar = AutoRoll(cam.capture, hooks, settle=0.0)
    assert ar.pedal() is False  # nothing running: the pedal captures as usual
    ar.start(frames=36)
    assert cam.started.wait(DEADLINE)
    assert ar.pedal() is True
    gate.set()  # the shot the camera was taking arrives after the press
    assert ar.wait(DEADLINE)
    snap = ar.snapshot()
    assert (snap["frame"], snap["reason"]) == (1, PEDAL)
    assert (tmp_path / "01.dng").exists() and cam.shots == 1
    assert advances(tmp_path) == []


def test_capture_failure_stops_with_an_error(tmp_path):
    cam, hooks = Camera(tmp_path, fail_at=2), hooks_for(tmp_path)
    ar = AutoRoll(cam.capture, hooks, settle=0.0)
    ar.start(frames=5)
    assert ar.wait(DEADLINE)
    snap = ar.snapshot()
    assert snap["frame"] == 1 and snap["reason"] == "error" and "capture of frame 2 failed" in snap["error"]
    assert "-110" in snap["error"]


def test_refusals(tmp_path):
    cam = Camera(tmp_path, gate=threading.Event())
    with pytest.raises(AutoRollError, match="advance hook"):
        AutoRoll(cam.capture, HookRunner({})).start(frames=3)
    ar = AutoRoll(cam.capture, hooks_for(tmp_path), settle=0.0)
    for bad in (0, -1, "3", 2.5):
        with pytest.raises(AutoRollError):
            ar.start(frames=bad)
    ar.start(frames=2)
    with pytest.raises(AutoRollError, match="already running"):
        ar.start(frames=2)
    ar.stop()
    cam.gate.set()
    assert ar.wait(DEADLINE)


def test_register_with_an_app(tmp_path):
    app, cam = PluginHost({}), Camera(tmp_path)
    ar = register(app, AutoRoll(cam.capture, hooks_for(tmp_path), settle=0.0))
    assert set(app.commands) == set(commands(ar)) == {"roll_auto", "roll_stop", "roll_auto_status"}
    snap = app.commands["roll_auto"](frames=2)
    json.dumps(snap)
    assert snap["frames"] == 2
    assert ar.wait(DEADLINE)
    assert app.commands["roll_auto_status"]()["reason"] == DONE
    assert app.published and app.published[-1]["type"] == "autoroll" and app.published[-1]["autoroll"]["frame"] == 2
    app.services["autoroll"].stop()  # the service stop is safe when idle


def _wait(pred, deadline=DEADLINE):
    import time

    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def test_attach_takes_over_the_pedal_only_while_running(tmp_path):
    from station.autoroll import attach

    class CaptureService:  # the parts of station.capture.service.CaptureService attach uses
        def __init__(self):
            self.camera = Camera(tmp_path)
            self.pedal_action = None
            self.pedal_captures = 0

        def snapshot(self):
            from station.boundary import CameraState, RollState

            return CameraState(state="ready", roll=RollState("r9"))

        def press(self):  # what CaptureService._pedal_press does
            if self.pedal_action is not None:
                self.pedal_action()
            else:
                self.pedal_captures += 1

    class App:
        def __init__(self):
            self.cfg = {"autoroll": {"settle": 3600}}
            self.services = {"camera": CaptureService(), "hooks": hooks_for(tmp_path)}
            self.commands, self.events = {}, []

        def service(self, name):
            return self.services.get(name)

        def register_service(self, obj):
            for n, fn in obj.commands().items():
                self.register_command(n, fn)

        def register_command(self, name, fn):
            self.commands[name] = fn

        def publish(self, ev):
            self.events.append(ev)

    app = App()
    cam = app.services["camera"]
    ar = attach(app)
    cam.press()
    assert cam.pedal_captures == 1 and not ar.running  # idle: the pedal captures
    app.commands["roll_auto"](frames=10)
    assert _wait(lambda: ar.snapshot()["state"] == "settling")
    assert advances(tmp_path) == ["1 r9"]  # STATION_ROLL from the capture service's current roll
    cam.press()  # running: the press stops the roll
    assert ar.wait(DEADLINE)
    assert ar.snapshot()["reason"] == PEDAL and cam.pedal_captures == 1
    assert cam.pedal_action is None  # the pedal is the capture service's again
    assert any(e["type"] == "autoroll" for e in app.events)


def test_attach_without_a_camera_gives_clear_commands():
    from station.autoroll import attach

    class App:
        cfg = {}
        commands = {}

        def service(self, name):
            return None

        def register_command(self, name, fn):
            self.commands[name] = fn

        def register_service(self, obj):
            for n, fn in obj.commands().items():
                self.register_command(n, fn)

    app = App()
    assert attach(app) is None
    with pytest.raises(RuntimeError, match="needs a camera"):
        app.commands["roll_auto"](frames=3)
