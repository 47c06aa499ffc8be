"""A roll's flat field: `station roll flatfield FILE` stores it (refused frames with the reason),
`station roll flatfield` shoots it through the running daemon on libgphoto2's virtual camera and the
daemon's workers apply it to the roll's next frame; `inversion.flatfield` is checked at start-up."""
import json
import subprocess
import sys

import pytest
import tifffile

from conftest import negative_bytes
from station.capture.samples import light_dng_bytes


def roll_cmd(state, incoming, *args, env=None):
    return subprocess.run([sys.executable, "-m", "station", "roll", "--state", str(state), "--incoming", str(incoming),
                           *map(str, args)], capture_output=True, text=True, timeout=180, env=env)


def test_roll_flatfield_from_a_file_is_kept_in_the_rolls_manifest(tmp_path):
    state, incoming = tmp_path / "state", tmp_path / "incoming"
    assert roll_cmd(state, incoming, "new", "--name", "r1").returncode == 0
    (tmp_path / "light.dng").write_bytes(light_dng_bytes())
    r = roll_cmd(state, incoming, "flatfield", tmp_path / "light.dng")
    assert r.returncode == 0, r.stderr
    man = json.loads((state / "rolls" / "r1" / "manifest.json").read_text())
    flat = man["flatfield"]
    assert flat["id"] in r.stdout and 0.15 < flat["falloff"] < 0.25, (r.stdout, flat)
    assert (state / "rolls" / "r1" / flat["npz"]).is_file()
    # a frame with film in it is refused with the reason; the roll keeps its flat field
    (tmp_path / "neg.dng").write_bytes(negative_bytes(tmp_path, 0))
    r = roll_cmd(state, incoming, "flatfield", tmp_path / "neg.dng")
    assert r.returncode == 1 and "refused" in r.stderr and "film in it" in r.stderr, r.stderr
    assert f"keeps its earlier flat field {flat['id']}" in r.stderr
    man = json.loads((state / "rolls" / "r1" / "manifest.json").read_text())
    assert man["flatfield"]["id"] == flat["id"] and "film in it" in man["flatfield_error"]


def test_a_station_wide_flatfield_that_is_not_a_bare_light_stops_the_daemon(daemon_factory, tmp_path):
    neg = tmp_path / "neg.dng"
    neg.write_bytes(negative_bytes(tmp_path, 0))
    d = daemon_factory(config={"inversion": {"method": "classic", "flatfield": str(neg)}, "workers": {"count": 1}})
    d.start(wait_ready=False)
    d.wait_for(lambda: d.proc.poll() is not None, 90, "the daemon to stop")
    assert d.proc.returncode == 2
    assert "inversion.flatfield" in d.log_text() and "film in it" in d.log_text()


def test_roll_flatfield_through_the_daemon_is_applied_to_the_rolls_frames(daemon_factory, tmp_path):
    pytest.importorskip("gphoto2")
    from station.control import request

    d = daemon_factory(extra_args=["--camera", "virtual"], config={"workers": {"count": 1}, "watcher": {"rescan_interval": 1}})
    d.start()
    sock = d.state / "station.sock"
    d.wait_for(lambda: request(sock, "status")["camera"].get("state") == "ready", 60, "the virtual camera")
    assert request(sock, "roll_new", name="r1")["name"] == "r1"
    r = roll_cmd(d.state, d.incoming, "flatfield", env=d.env)
    assert r.returncode == 0, r.stdout + r.stderr
    flat_id = json.loads((d.state / "rolls" / "r1" / "manifest.json").read_text())["flatfield"]["id"]
    assert flat_id in r.stdout
    shot = request(sock, "capture", wait_positive=True, timeout=60)
    rel = shot["files"][0].split(str(d.incoming) + "/", 1)[1]
    d.wait_for(lambda: d.done([rel]), 90, "the frame after the flat field")
    assert list(d.frames()) == [rel]  # the flat-field shot never became a frame
    tif = d.output / (rel.rsplit(".", 1)[0] + ".tif")
    with tifffile.TiffFile(tif) as t:
        assert json.loads(t.pages[0].description)["station_flatfield"] == flat_id
