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


def _blank_under_falloff(fall: float = 0.25, h: int = 400, w: int = 600) -> bytes:
    """A blank (the film base alone) under a light with a radial corner fall-off, as DNG bytes."""
    import tempfile
    from pathlib import Path

    import numpy as np

    from station.capture.samples import FILM_BASE
    from station.io.dng import mosaic, write_bayer_dng

    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((x - (w - 1) / 2) ** 2 + (y - (h - 1) / 2) ** 2) / (((w - 1) / 2) ** 2 + ((h - 1) / 2) ** 2)
    rgb = FILM_BASE * 0.85 * (1 - fall * r2)[..., None]
    rgb = np.clip(rgb + np.random.default_rng(3).normal(0, 0.002, rgb.shape), 0, 1)
    with tempfile.TemporaryDirectory() as d:
        p = write_bayer_dng(Path(d) / "blank.dng", mosaic(np.round(rgb * 65535).astype(np.uint16), "RGGB"), "RGGB",
                            black=0, white=65535, make="Station", model="Virtual Negative")
        return Path(p).read_bytes()


def test_the_rolls_blank_is_measured_through_its_flat_field_whichever_comes_first(tmp_path):
    """Under a light 25 % darker in the corners, the blank's base (its central half) reads dark
    by the fall-off; with the roll's flat field it is the film base at the centre.  A blank set
    before the flat field is measured again when the flat field comes."""
    import numpy as np

    from station.capture.roll import RollStore
    from station.pipeline.decode import decode

    blank = _blank_under_falloff()
    (tmp_path / "b.dng").write_bytes(blank)
    rgb = decode(tmp_path / "b.dng", half_size=True).rgb
    h, w = rgb.shape[:2]
    centre = rgb[h // 2 - 4:h // 2 + 4, w // 2 - 4:w // 2 + 4].reshape(-1, 3).mean(axis=0)

    store = RollStore(tmp_path / "state", tmp_path / "incoming")
    plain = store.new(name="plain")
    plain.set_base(blank, ".dng")
    uncorrected = np.array(plain.data["base"]["rgb"])
    assert (uncorrected / centre).max() < 0.99, (uncorrected, centre)  # the fall-off shows in the base

    roll = store.new(name="r1")
    roll.set_base(blank, ".dng")  # before the flat field: as dark as the plain roll's
    assert np.allclose(roll.data["base"]["rgb"], uncorrected, rtol=1e-3)
    roll.set_flat(light_dng_bytes(falloff=0.25), ".dng")
    flat_id = roll.data["flatfield"]["id"]
    base = store.get("r1").data["base"]  # as on disk
    assert base["flatfield"] == flat_id
    assert np.abs(np.array(base["rgb"]) / centre - 1).max() < 0.005, (base["rgb"], centre)
    roll.set_base(blank, ".dng")  # a blank after the flat field: measured through it at once
    base2 = store.get("r1").data["base"]
    assert base2["file"] != base["file"] and base2["flatfield"] == flat_id
    assert np.allclose(base2["rgb"], base["rgb"], rtol=1e-3)


def test_the_roll_analysis_samples_a_frame_through_the_flat_field(tmp_path):
    """`station invert --roll` (pipeline.roll.analyse_files): each frame's sample is taken through
    the roll's flat field: a frame of the bare light samples flat (1 %), not 25 % dark at the edges."""
    import numpy as np

    from station.pipeline.flatfield import load_flat
    from station.pipeline.roll import sample_file

    light = tmp_path / "light.dng"
    light.write_bytes(light_dng_bytes(falloff=0.25))
    flat = load_flat(light)

    def spread(sample):
        m = np.asarray(sample.rgb, np.float64).reshape(-1, 3)
        return float((m.max(axis=0) / m.min(axis=0)).max() - 1)

    assert spread(sample_file(light)) > 0.05
    assert spread(sample_file(light, flat=flat)) < 0.02
