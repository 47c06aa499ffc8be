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
    assert len(lines) == 1 and "no picture" in lines[0] and "--base" in lines[0], r.stderr
    assert "3 of 4 converted, 1 failed" in r.stderr
    assert sorted(p.name for p in out.glob("*.tif")) == ["bright.tif", "dark.tif", "mid.tif"]


def test_station_invert_refuses_a_blank_converted_on_its_own(roll, tmp_path):
    """Frame by frame (no --roll), a blank was rendered with its own normaliser: its noise
    stretched into a 'picture' and reported converted.  It is refused as unexposed film, and
    the night frame of the same roll (mostly dark, a small chart) is still converted."""
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "station", "invert", str(roll / "blank.dng"), str(roll / "dark.dng"),
                        "--out", str(out), "--jobs", "1"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1, r.stderr
    lines = [x for x in r.stderr.splitlines() if "blank.dng" in x]
    assert len(lines) == 1 and "unexposed film" in lines[0] and "--base" in lines[0], r.stderr
    assert sorted(p.name for p in out.glob("*")) == ["dark.jpg", "dark.tif"]


def test_the_daemon_fails_a_blank_shot_into_a_roll_folder_with_its_reason(roll, daemon_factory):
    """The daemon's preview of a blank (before the roll's rendering locks) was stretched noise,
    written as a success.  It is a failure naming the reason; no output is written for it."""
    import shutil

    d = daemon_factory(config={"workers": {"count": 1}, "watcher": {"rescan_interval": 1}})
    d.start()
    (d.incoming / "r1").mkdir()
    for name in ("blank.dng", "mid.dng"):
        shutil.copy(roll / name, d.incoming / "r1" / f".{name}.tmp")
        (d.incoming / "r1" / f".{name}.tmp").rename(d.incoming / "r1" / name)
    d.wait_for(lambda: d.done(["r1/blank.dng"], ("failed",)) and d.done(["r1/mid.dng"]), 90, "both frames handled")
    row = d.frames()["r1/blank.dng"]
    assert "unexposed film" in row["reason"], row
    assert not [p for p in d.output.rglob("blank*")], sorted(d.output.rglob("*"))
    assert d.stop() == 0
