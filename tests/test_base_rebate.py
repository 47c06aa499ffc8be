"""The rebate is found beside picture content whose colour sits an orange step below it.

A frame converted on its own (no --roll, no blank; also the daemon's first previews of a
roll) takes its film base from the rebate.  Picture content in the border band that is
denser than the base by an orange-looking step (a blue sky's yellow dye, a warm mid tone)
made the rebate itself pass for a sprocket hole over it: the frame then fell back to its
percentile (a strong cyan cast) or took the picture as the base.  Found trying the README's
`station invert FRAME` on the roll-chart frames of tools/roll_chart.py.
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

from station.model.film import ScanParams, add_rebate, procedural_scene, simulate  # noqa: E402
from station.pipeline.base import estimate_base  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("seed,stock,scan_ev", [(1, "kodak_portra_400", -0.5), (2, "kodak_gold_200", -2.0),
                                                (2, "kodak_portra_400", 0.5), (3, "kodak_portra_400", -0.5)])
def test_the_rebate_is_the_base_beside_orange_looking_picture_content(seed, stock, scan_ev):
    neg = simulate(procedural_scene(200, seed=seed), ScanParams(stock=stock, scan_ev=scan_ev, seed=seed))
    est = estimate_base(add_rebate(neg, seed=seed))
    assert est.source == "rebate"
    np.testing.assert_allclose(np.log10(est.rgb), np.log10(neg.base_rgb), atol=0.03)


def test_a_frame_converted_alone_uses_its_rebate_and_is_neutral(tmp_path):
    """The README's first command, one frame: the chart's greys come out grey (C* 9.9 before)."""
    from skimage.color import rgb2lab

    from station.model.metrics import box_means

    boxes = roll_chart.make_roll(tmp_path / "roll")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "station", "invert", str(tmp_path / "roll" / "mid.dng"), "--out",
                        str(out), "--jobs", "1"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "looks like a positive" not in r.stderr
    import tifffile

    with tifffile.TiffFile(out / "mid.tif") as t:
        meta = json.loads(t.pages[0].tags["ImageDescription"].value)
    assert meta["station_base_source"] == "rebate"
    patches = box_means(roll_chart.read_positive(out / "mid.tif"), boxes["mid"])
    lab = rgb2lab(np.clip(patches, 0, 1)[None])[0]
    chroma = np.hypot(lab[18:24, 1], lab[18:24, 2])  # the chart's six greys
    assert chroma.mean() < 3.0, chroma


def test_the_live_demos_weak_mask_still_has_its_holes_found():
    """The demo's sample film (station/capture/samples.py) has a weaker mask than the measured
    stocks (blue 0.55, green 0.32 in log10 over bare light) and unclipped sprocket holes: the
    holes must stay holes, not become the base (every frame 'looks like a positive')."""
    from station.capture.livescene import LiveScene
    from station.capture.samples import FILM_BASE

    for seed in (0, 3):
        lin = LiveScene(seed=seed, clock=lambda: 0.0).raw_linear(0.0)
        est = estimate_base(lin)
        assert est.source == "rebate"
        np.testing.assert_allclose(est.rgb, FILM_BASE * 0.85, rtol=0.03)
