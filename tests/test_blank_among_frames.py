"""A blank frame among a roll's frames is no picture: a failure with its reason, never
"converted".  Its positive is one flat black with only the sprocket holes and holder edges
around it, which passed the whole-frame tonal check (found converting a roll folder that holds
its blank, README's own `~/scans/roll12/blank.NEF`, without --base)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import roll_chart  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def roll(tmp_path_factory):
    d = tmp_path_factory.mktemp("roll12")
    roll_chart.make_roll(d, blank_ev=0.0)
    return d


def test_station_invert_roll_refuses_the_blank_among_its_frames(roll, tmp_path):
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "station", "invert", str(roll), "--roll", "--out", str(out), "--jobs",
                        "1"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1, r.stderr
    lines = [x for x in r.stderr.splitlines() if "blank.dng" in x]
    assert len(lines) == 1 and "no picture in the positive" in lines[0] and "--base" in lines[0], r.stderr
    assert "3 of 4 converted, 1 failed" in r.stderr
    assert sorted(p.name for p in out.glob("*.tif")) == ["bright.tif", "dark.tif", "mid.tif"]
