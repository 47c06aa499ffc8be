"""`station roll auto --frames N` and `station roll stop` (docs/RIGS.md) against the real
daemon (`station run` as a subprocess) on libgphoto2's virtual camera (issue 14, item 10)."""
import subprocess
import sys

import pytest


def roll(d, *args):
    return subprocess.run([sys.executable, "-m", "station", "roll", "--state", str(d.state),
                           "--incoming", str(d.incoming), *map(str, args)],
                          env=d.env, capture_output=True, text=True, timeout=60)


def auto_status(d):
    return d.status().get("autoroll") or {}


def test_roll_auto_then_stop_in_the_daemon(daemon_factory, tmp_path):
    pytest.importorskip("gphoto2")
    log = tmp_path / "advance.log"
    adv = tmp_path / "advance.sh"
    adv.write_text(f'#!/bin/sh\necho "advance $STATION_FRAME" >> "{log}"\nsleep 0.3\nexit 0\n')
    adv.chmod(0o755)
    d = daemon_factory(config={"camera": {"port": "virtual"}, "watcher": {"rescan_interval": 0},
                               "inversion": {"method": "classic"}, "hooks": {"advance": str(adv)},
                               "autoroll": {"settle": 0.2}})
    d.start()
    d.wait_for(lambda: (d.status().get("camera") or {}).get("state") == "ready", 60, "camera ready")
    assert roll(d, "new", "--name", "r1", "--frames", "36").returncode == 0
    r = roll(d, "auto", "--frames", "30")
    assert r.returncode == 0, r.stderr
    assert "auto-roll started: 30 frames" in r.stdout
    d.wait_for(lambda: auto_status(d).get("frame", 0) >= 2, 120, "two frames of the auto-roll")
    r = roll(d, "auto", "--frames", "5")  # a second one while the first runs: refused, with the reason
    assert r.returncode == 1 and "already running" in r.stderr
    r = roll(d, "stop")
    assert r.returncode == 0, r.stderr
    assert "stopping" in r.stdout
    d.wait_for(lambda: not auto_status(d).get("running"), 120, "the auto-roll to stop")
    snap = auto_status(d)
    assert snap["reason"] == "stopped by command" and 2 <= snap["frame"] < 30, snap
    r = roll(d, "stop")
    assert r.returncode == 0 and "no auto-roll is running" in r.stdout
    assert d.stop() == 0


def test_roll_auto_without_a_daemon_says_so(tmp_path):
    r = subprocess.run([sys.executable, "-m", "station", "roll", "--state", str(tmp_path), "auto", "--frames", "3"],
                       capture_output=True, text=True, timeout=60, env={**__import__("os").environ, "STATION_SOCKET": ""})
    assert r.returncode == 1
    assert "no running station daemon" in r.stderr and "station run" in r.stderr


def test_roll_auto_rejects_bad_frame_counts(tmp_path):
    r = subprocess.run([sys.executable, "-m", "station", "roll", "--state", str(tmp_path), "auto", "--frames", "0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--frames must be 1 or more" in r.stderr
