"""Issue 14's low items on the command line: one clear line (no traceback, no misleading
reason), contradictory or invalid flags refused, nothing skipped silently."""
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from negatives import expose, grey_ramp, with_rebate, write_negative_dng


def station(*args, timeout=240, **kw):
    return subprocess.run([sys.executable, "-m", "station", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **kw)


@pytest.fixture
def neg(tmp_path):
    scene = np.clip(grey_ramp(120, 180), 0.01, 1).astype(np.float32)
    return write_negative_dng(tmp_path / "n.dng", with_rebate(expose(scene), border=16))


def test_export_lut_into_a_missing_folder_is_one_line(tmp_path):
    r = station("export-lut", tmp_path / "nonexistent" / "x.cube", "--method", "classic", "--size", "5")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0
    assert "no such folder" in r.stderr and "nonexistent" in r.stderr


def test_junk_model_file_is_not_called_pickled(tmp_path, neg):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(os.urandom(4000))
    r = station("invert", neg, "--out", tmp_path / "out", "--model", junk)
    assert r.returncode == 2
    assert "pickled" not in r.stderr and "not an .npz file" in r.stderr


def test_text_renamed_nef_says_text(tmp_path):
    txt = tmp_path / "notes.NEF"
    txt.write_text("shopping list: film, fixer, sleeves\n" * 300)
    r = station("invert", txt, "--out", tmp_path / "out", "--method", "classic")
    assert r.returncode == 1
    assert "notes.NEF: not an image: the file holds text" in r.stderr
    assert "truncated" not in r.stderr


def test_classic_with_a_model_is_refused(tmp_path, neg):
    r = station("invert", neg, "--out", tmp_path / "out", "--method", "classic", "--model", tmp_path / "m.npz")
    assert r.returncode == 2 and "--model is for --method mlp" in r.stderr
    r = station("export-lut", tmp_path / "x.cube", "--method", "classic", "--model", tmp_path / "m.npz")
    assert r.returncode == 2 and "--model is for --method mlp" in r.stderr


def test_capture_roll_and_no_roll_contradict(tmp_path):
    r = station("capture", "--roll", "x", "--no-roll", "--direct", "--camera", "virtual", "--incoming", tmp_path)
    assert r.returncode == 2 and "contradict" in r.stderr
    assert not list(tmp_path.iterdir())


def test_camera_port_usb_must_be_bus_and_device(tmp_path):
    from station.config import ConfigError, validate

    with pytest.raises(ConfigError, match="camera.port"):
        validate({"camera": {"port": "usb:abc"}}, check_paths=False)
    for ok in ("usb:", "usb:001,004", "auto", "ptpip:10.0.0.2"):
        validate({"camera": {"port": ok}}, check_paths=False)


@pytest.mark.parametrize("args,reason", [
    (["--name", "../evil"], "bad roll name '../evil'"),
    (["--name", "a/b"], "bad roll name 'a/b'"),
    (["--frames", "-3"], "frames must be a whole number of 1 or more"),
    (["--frames", "0"], "frames must be a whole number of 1 or more"),
])
def test_roll_new_refuses_bad_names_and_counts(tmp_path, args, reason):
    r = station("roll", "--state", tmp_path / "st", "--incoming", tmp_path / "in", "new", *args)
    assert r.returncode == 2 and reason in r.stderr
    assert not (tmp_path / "st" / "rolls").exists() or not [p for p in (tmp_path / "st" / "rolls").iterdir()
                                                           if p.name != "current"]


def test_invert_folder_names_sub_folders_and_recursive_converts_them(tmp_path, neg):
    top = tmp_path / "scans"
    (top / "roll2").mkdir(parents=True)
    neg.rename(top / "roll2" / "a.dng")
    write_negative_dng(top / "b.dng", with_rebate(expose(np.clip(grey_ramp(120, 180), 0.01, 1)), border=16))
    out = tmp_path / "out"
    r = station("invert", top, "--out", out, "--method", "classic")
    assert r.returncode == 0
    assert "1 sub-folder(s) with images not searched (roll2): add --recursive" in r.stderr
    r = station("invert", top, "--out", out, "--method", "classic", "--recursive")
    assert r.returncode == 0, r.stderr
    assert (out / "roll2" / "a.tif").exists() and (out / "roll2" / "a.jpg").exists()
    assert "1 already complete" in r.stderr  # b.dng from the first run


def test_demo_does_not_print_the_page_when_its_port_is_taken(tmp_path):
    pytest.importorskip("gphoto2")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = station("demo", "--frames", "1", "--out", tmp_path / "demo", "--web", f"127.0.0.1:{port}", timeout=300)
    assert "watch the roll live" not in r.stdout
    assert "live page is not served" in r.stderr
    assert r.returncode == 0, r.stderr  # the demo goes on without its page


def test_bench_no_peers_does_not_say_not_installed(tmp_path):
    from station.commands import bench
    from station.io.dng import write_bayer_dng

    src = write_bayer_dng(tmp_path / "small.dng", bench.synth_negative_cfa(240, 160, seed=3))
    r = station("bench", src, "--runs", "1", "--method", "classic", "--no-peers")
    assert r.returncode == 0, r.stderr
    assert "not installed" not in r.stdout and "not run (--no-peers)" in r.stdout


def test_roll_new_takes_state_after_the_action(tmp_path):
    """docs/CAPTURE.md: every roll action takes --state DIR --incoming DIR."""
    r = station("roll", "new", "--state", tmp_path / "st", "--incoming", tmp_path / "in", "--name", "r1")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "st" / "rolls" / "r1" / "manifest.json").exists()
    r = station("roll", "list", "--state", tmp_path / "st")
    assert r.returncode == 0 and "r1" in r.stdout


def test_a_photo_of_a_scene_is_inverted_with_a_warning(shared_dir, tmp_path, neg):
    """The shared RAWs are positives of ordinary scenes: each gets a 'looks like a positive'
    warning (still converted); a colour negative gets none."""
    raws = sorted((shared_dir / "samples" / "raw").iterdir())
    r = station("invert", *raws, neg, "--out", tmp_path / "out", "--method", "classic", "--format", "jpeg")
    assert r.returncode == 0, r.stderr
    warned = [ln for ln in r.stderr.splitlines() if "looks like a positive" in ln]
    assert sorted(ln.split(": ")[1] for ln in warned) == sorted(str(p) for p in raws)
    assert str(neg) not in " ".join(warned)
