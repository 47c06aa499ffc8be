"""Calibration frames are not pictures (issue 14, item 6): `station roll calibrate` and
POST /api/command/calibrate through the real daemon on libgphoto2's virtual camera give no
preview, no FAILED row, no error hook and no orphan output; the next frame is inverted with
the measured base."""
import subprocess
import sys

import pytest

pytest.importorskip("gphoto2")


def test_calibration_shot_through_the_daemon_is_not_taken_as_a_picture(daemon_factory, tmp_path):
    from station.control import request

    errors = tmp_path / "errors.log"
    d = daemon_factory(extra_args=["--camera", "virtual"], config={
        "workers": {"count": 1}, "watcher": {"rescan_interval": 1},
        "hooks": {"error": f"echo \"$STATION_FRAME $STATION_REASON\" >> {errors}"}})
    d.start()
    sock = d.state / "station.sock"
    d.wait_for(lambda: request(sock, "status")["camera"].get("state") == "ready", 60, "the virtual camera")
    assert request(sock, "roll_new", name="r1")["name"] == "r1"
    res = subprocess.run([sys.executable, "-m", "station", "roll", "--state", str(d.state),
                          "--incoming", str(d.incoming), "calibrate"],
                         env=d.env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "film base frame" in res.stdout
    request(sock, "calibrate", timeout=60)  # the page's button: the same command
    shot = request(sock, "capture", wait_positive=True, timeout=60)  # a real frame after the blanks
    rel = shot["files"][0].split(str(d.incoming) + "/", 1)[1]
    d.wait_for(lambda: d.done([rel]), 90, "the frame after calibration")
    frames = d.frames()
    assert list(frames) == [rel], frames  # the calibration shots never became frames
    log = d.log_text()
    assert "FAILED" not in log, log
    assert not errors.exists(), errors.read_text()
    outs = sorted(p.relative_to(d.output).as_posix() for p in d.output.rglob("*") if p.is_file())
    stem = rel.rsplit(".", 1)[0]
    assert outs == sorted(f"{stem}{s}" for s in (".preview.jpg", ".tif", ".jpg")), outs
    assert d.stop() == 0


def test_the_page_calibrate_button_refuses_a_slide_roll(daemon_factory):
    """A slide has no film base: the daemon's calibrate command (the page's Calibrate base button)
    shot a black blank of a slide roll and kept it as the roll's base (`station roll calibrate`
    refuses it before the daemon is asked)."""
    from station.control import ControlError, request

    d = daemon_factory(extra_args=["--camera", "virtual"], config={"workers": {"count": 1}})
    d.start()
    sock = d.state / "station.sock"
    d.wait_for(lambda: request(sock, "status")["camera"].get("state") == "ready", 60, "the virtual camera")
    assert request(sock, "roll_new", name="e6", film="slide")["name"] == "e6"
    with pytest.raises(ControlError, match="slide roll: a slide has no film base"):
        request(sock, "calibrate", timeout=60)
    assert not list((d.state / "rolls" / "e6").glob("base*"))
    assert d.stop() == 0
