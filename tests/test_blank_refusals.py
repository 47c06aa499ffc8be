"""A 'blank' that is no film base is refused with its reason, not used to render the roll.

Two mistakes at the copy stand, both accepted before: the blank shot with the film out of the
holder (the bare light: on a colour roll every frame came out with a strong cyan cast, and the
warning blamed the frames, "looks like a positive"), and a blank shot many stops under (the
light off, a wrong shutter time: a frame whose own rebate could not correct it came out black
and was reported converted).  Found trying README's `--base` and `station roll calibrate`.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import roll_chart  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _station(*args):
    return subprocess.run([sys.executable, "-m", "station", *map(str, args)], capture_output=True, text=True, cwd=ROOT)


@pytest.fixture(scope="module")
def roll(tmp_path_factory):
    """The chart roll with its blank, a frame of the bare light and a blank shot 7 stops under."""
    from station.capture.samples import light_dng_bytes
    from station.model.film import ScanParams, add_rebate, simulate, write_dng

    d = tmp_path_factory.mktemp("roll")
    roll_chart.make_roll(d, blank_ev=0.0)
    (d / "light.dng").write_bytes(light_dng_bytes(falloff=0.1))
    dark = simulate(np.zeros((360, 540, 3)), ScanParams(stock="kodak_portra_400", scan_ev=-7.0, seed=5))
    write_dng(d / "dark-blank.dng", add_rebate(dark, seed=9))
    return d


@pytest.mark.parametrize("blank,reason", [("light.dng", "not colour negative film: no orange film base"),
                                          ("dark-blank.dng", "too dark for a blank")])
def test_station_invert_refuses_a_blank_that_is_no_film_base(roll, tmp_path, blank, reason):
    out = tmp_path / "out"
    r = _station("invert", roll / "mid.dng", roll / "dark.dng", "--base", roll / blank, "--out", out, "--jobs", "1")
    assert r.returncode == 2, r.stderr
    line = [x for x in r.stderr.splitlines() if x.strip()][-1]
    assert blank in line and reason in line, r.stderr
    assert not out.exists() or not list(out.iterdir())


def test_the_real_blank_is_still_taken(roll, tmp_path):
    r = _station("invert", roll / "mid.dng", "--base", roll / "blank.dng", "--out", tmp_path / "out", "--jobs", "1")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "mid.tif").exists()


def test_a_bare_light_is_a_black_and_white_rolls_business(roll, tmp_path):
    """No orange mask is asked of a bw roll's blank (silver film has none)."""
    r = _station("invert", roll / "mid.dng", "--film", "bw", "--base", roll / "light.dng", "--out", tmp_path / "o")
    assert "not colour negative film" not in r.stderr


def test_roll_calibrate_refuses_the_bare_light_on_a_colour_roll(roll, tmp_path):
    where = ["--state", tmp_path / "state", "--incoming", tmp_path / "in"]
    assert _station("roll", *where, "new", "--name", "r1").returncode == 0
    bad = _station("roll", *where, "calibrate", "--file", roll / "light.dng")
    assert bad.returncode == 1, bad.stderr
    assert "refused" in bad.stderr and "no orange film base" in bad.stderr, bad.stderr
    manifest = json.loads((tmp_path / "state" / "rolls" / "r1" / "manifest.json").read_text())
    assert not (manifest.get("base") or {}).get("rgb")
    ok = _station("roll", *where, "calibrate", "--file", roll / "blank.dng")
    assert ok.returncode == 0, ok.stderr
    too_dark = _station("roll", *where, "calibrate", "--file", roll / "dark-blank.dng")
    assert too_dark.returncode == 1 and "too dark for a blank" in too_dark.stderr, too_dark.stderr
