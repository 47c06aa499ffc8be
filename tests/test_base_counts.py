"""The base always counts (issue 13, item 3): a blank that is not blank is refused with a reason;
a blank shot at another scan exposure than the frames is corrected from the frames' rebate."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import roll_chart  # noqa: E402

from station.pipeline.base import BaseEstimate, NotBlankError, base_from_blank, reconcile  # noqa: E402
from station.pipeline.decode import decode  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def rolls(tmp_path_factory):
    """The chart roll scanned at -1 EV, with a blank at the same exposure and one at +1 EV."""
    d = tmp_path_factory.mktemp("rolls")
    boxes = roll_chart.make_roll(d / "same", scan_ev=-1.0, blank_ev=-1.0)
    roll_chart.make_roll(d / "plus1", scan_ev=-1.0, blank_ev=0.0)
    return d, boxes


def _station(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "station", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_a_picture_is_refused_as_blank_with_a_reason(rolls):
    d, _ = rolls
    with pytest.raises(NotBlankError, match="not a blank frame: its brightness varies by"):
        base_from_blank(decode(d / "same" / "mid.dng").rgb)
    est = base_from_blank(decode(d / "same" / "blank.dng").rgb)  # a real blank is still taken
    assert est.source == "blank frame"


def test_station_invert_refuses_a_non_blank_base(rolls, tmp_path):
    d, _ = rolls
    r = _station("invert", d / "same" / "dark.dng", "--out", tmp_path / "out", "--base", d / "same" / "mid.dng",
                 "--method", "classic")
    assert r.returncode == 2, r.stderr
    assert "mid.dng" in r.stderr and "not a blank frame" in r.stderr
    assert not list((tmp_path / "out").glob("*.tif"))


def test_roll_calibrate_refuses_a_non_blank_and_keeps_the_earlier_blank(rolls, tmp_path):
    d, _ = rolls
    state = tmp_path / "state"
    where = ["--state", state, "--incoming", tmp_path / "in"]
    assert _station("roll", *where, "new", "--name", "r1").returncode == 0
    ok = _station("roll", *where, "calibrate", "--file", d / "same" / "blank.dng")
    assert ok.returncode == 0, ok.stderr
    bad = _station("roll", *where, "calibrate", "--file", d / "same" / "bright.dng")
    assert bad.returncode == 1
    assert "refused" in bad.stderr and "not a blank frame" in bad.stderr and "keeps its earlier blank" in bad.stderr
    manifest = json.loads((state / "rolls" / "r1" / "manifest.json").read_text())
    np.testing.assert_allclose(manifest["base"]["rgb"], base_from_blank(decode(d / "same" / "blank.dng").rgb).rgb,
                               rtol=0.01)


def test_reconcile_scales_only_a_neutral_disagreement():
    blank = BaseEstimate(np.array([0.6, 0.3, 0.09], np.float32), "blank frame")
    twice = BaseEstimate(blank.rgb * 2.0, "rebate")
    used, note = reconcile(blank, twice)
    np.testing.assert_allclose(used.rgb, blank.rgb * 2.0, rtol=1e-5)
    assert "+1.00 EV" in note and "corrected" in used.source
    tinted = BaseEstimate(blank.rgb * np.array([2.0, 1.6, 1.2], np.float32), "rebate")  # another colour: not exposure
    assert reconcile(blank, tinted) == (blank, None)
    assert reconcile(blank, BaseEstimate(blank.rgb * 2, "frame percentile (no rebate found)")) == (blank, None)
    assert reconcile(blank, BaseEstimate(blank.rgb * 1.01, "rebate")) == (blank, None)  # noise


@pytest.mark.parametrize("method,roll", [("classic", False), ("mlp", True)])
def test_a_blank_shot_at_plus_one_ev_gives_the_same_positives(rolls, tmp_path, method, roll):
    import tifffile

    from station.model.metrics import box_means, ciede2000

    d, boxes = rolls
    outs = {}
    for name in ("same", "plus1"):
        out = tmp_path / name
        r = roll_chart.invert(d / name, out, method, roll=roll, base=d / name / "blank.dng")
        assert r.returncode == 0, r.stderr
        outs[name] = out
    for k in roll_chart.SCENES:
        with tifffile.TiffFile(outs["plus1"] / f"{k}.tif") as tf:
            meta = json.loads(tf.pages[0].description)
        with tifffile.TiffFile(outs["same"] / f"{k}.tif") as tf:
            meta_same = json.loads(tf.pages[0].description)
        assert "scan exposure corrected -1.00 EV" in meta["station_base_source"]
        # the base the frame was inverted with is the same-exposure blank's, to 2 %
        np.testing.assert_allclose(meta["station_base"], meta_same["station_base"], rtol=0.02)
        a = box_means(roll_chart.read_positive(outs["same"] / f"{k}.tif"), boxes[k])
        b = box_means(roll_chart.read_positive(outs["plus1"] / f"{k}.tif"), boxes[k])
        assert float(np.mean(ciede2000(a, b))) < 0.5
