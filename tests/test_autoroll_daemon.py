"""The whole hands-free chain in the real daemon (App main loop in this process): the capture
service on libgphoto2's virtual camera, the hook runner and the auto-roll plugged in with their
`attach(app)`; `roll_new` and `roll_auto` through app.command, as the control socket calls them."""
from __future__ import annotations

import time
from pathlib import Path

import helpers
import pytest

pytest.importorskip("gphoto2")
app_mod = pytest.importorskip("station.app")
config = pytest.importorskip("station.config")
capture_service = pytest.importorskip("station.capture.service")

from station import autoroll, checks, hooks  # noqa: E402

DEADLINE = 120.0


def wait_for(pred, deadline=DEADLINE):
    return helpers.wait_for(pred, deadline)


def lines(p: Path) -> list[str]:
    return p.read_text().splitlines() if p.exists() else []


def test_auto_roll_in_the_daemon_fires_every_hook_once(tmp_path):
    for d in ("in", "out", "st"):
        (tmp_path / d).mkdir()
    log = tmp_path / "hooks.log"
    adv = tmp_path / "advance.sh"
    adv.write_text(f'#!/bin/sh\necho "advance $STATION_ROLL $STATION_FRAME" >> "{log}"\n'
                   f'[ "$STATION_FRAME" -ge 2 ] && exit 3\nexit 0\n')  # end of film after the 2nd frame
    adv.chmod(0o755)
    rec = 'echo "$STATION_EVENT $STATION_ROLL $STATION_FRAME $STATION_RAW $STATION_POSITIVE $STATION_REASON" >> "%s"' % log
    cfg = config.validate({
        "paths": {"incoming": str(tmp_path / "in"), "output": str(tmp_path / "out"), "state": str(tmp_path / "st")},
        "inversion": {"method": "classic"}, "web": {"address": "off"}, "workers": {"count": 1},
        "hooks": {e: rec for e in ("frame_captured", "positive_ready", "roll_started", "roll_complete", "error")},
    })
    cfg["hooks"]["advance"] = str(adv)
    cfg["camera"]["port"] = "virtual"  # the capture service's virtual camera (generated negatives)
    cfg["autoroll"] = {"settle": 0.0}
    app = app_mod.App(cfg)
    capture_service.attach(app)
    runner = hooks.attach(app)
    controller = autoroll.attach(app)
    assert controller is not None
    checker = checks.attach(app)
    result = {}

    def drive():
        cam = app.service("camera")
        assert cam.camera.wait_ready(30), cam.snapshot()
        assert app.command("roll_new", name="r1")["name"] == "r1"
        assert app.command("roll_auto", frames=5)["running"]
        assert controller.wait(DEADLINE)
        result["snap"] = app.command("roll_auto_status")
        assert wait_for(lambda: sum(ln.startswith("positive_ready") for ln in lines(log)) >= 2
                        and any(ln.startswith("roll_complete") for ln in lines(log)))
        assert wait_for(lambda: checker.snapshot()["checked"] == 2), checker.snapshot()
        result["checks"] = checker.snapshot()
        time.sleep(0.5)  # a late duplicate would show now (not a timing assertion)

    errors = helpers.run_app(app, drive)
    runner.stop(timeout=30)
    if errors:
        raise AssertionError(f"{errors[0]!r}\nhooks log:\n" + "\n".join(lines(log)))
    snap = result["snap"]
    assert (snap["frame"], snap["reason"], snap["error"]) == (2, autoroll.END_OF_FILM, None), snap
    got = lines(log)
    by = {}
    for ln in got:
        by.setdefault(ln.split(" ", 1)[0], []).append(ln.split())
    assert [x[1] for x in by["roll_started"]] == ["r1"]
    assert len(by["frame_captured"]) == 2 and all(x[1] == "r1" and Path(x[3]).is_file() for x in by["frame_captured"])
    assert [x[1:3] for x in by["advance"]] == [["r1", "1"], ["r1", "2"]]
    assert len(by["positive_ready"]) == 2
    for x in by["positive_ready"]:
        assert x[1] == "r1" and Path(x[4]).is_file() and x[4].endswith(".tif")
    assert {x[3] for x in by["positive_ready"]} == {x[3] for x in by["frame_captured"]}  # the same RAWs
    assert len(by["roll_complete"]) == 1 and "end of film" in " ".join(by["roll_complete"][0])
    assert "error" not in by
    print("frame checks on the virtual camera's frames:", result["checks"])
    assert result["checks"]["errors"] == 0
    # the virtual camera's negatives have film rebate on the left edge only: the checks say so
    for r in result["checks"]["recent"]:
        assert [f["check"] for f in r["findings"]] == ["framing"]
        assert "cut at the top, bottom and right" in r["findings"][0]["message"]
