"""The roll protocol of `station evaluate --family` and its breakdown (station.model.familyeval)."""
from __future__ import annotations

import numpy as np

from station.model import familyeval as fe
from station.model.film import srgb_decode
from station.pipeline.base import base_from_blank
from station.pipeline.classic import ClassicInverter


def _photo(seed=0, size=48):
    rng = np.random.default_rng(seed)
    img = rng.uniform(0.05, 0.95, (size // 8, size // 8, 3))
    return np.repeat(np.repeat(img, 8, 0), 8, 1)


def test_r2_lost_splits_into_lab_channels():
    t = _photo()
    assert np.allclose(fe.r2_lab_parts(t, t), 0.0, atol=1e-9)
    # a desaturated copy with the same lightness: R² lost only in a* and b*
    lin = srgb_decode(t)
    y = lin @ np.array([0.2126, 0.7152, 0.0722])
    grey = np.clip(lin * 0.3 + y[..., None] * 0.7, 0, 1)
    desat = np.where(grey <= 0.0031308, 12.92 * grey, 1.055 * np.power(grey, 1 / 2.4) - 0.055)
    parts = fe.r2_lab_parts(desat, t)
    assert parts[1] > 0.01 and parts[2] > 0.01 and parts[0] < 0.5 * min(parts[1], parts[2])
    assert abs(fe.r2_lab_affine_L(desat, t) - (1 - parts.sum())) < 1e-12


def test_family_breakdown_per_film_exposure():
    frames = fe.family_frames("param", ("param_vivid_100",), size=160, seed=3, base_from_blank=base_from_blank)
    assert len(frames) == len(fe.FILM_EVS) * len(fe.SCAN_EVS)
    r = fe.evaluate_family(ClassicInverter(), frames)
    assert abs(r["r2_lab"] - (1 - r["r2_lost_L"] - r["r2_lost_a"] - r["r2_lost_b"])) < 1e-9
    table = fe.breakdown({"classic": ClassicInverter()}, frames, "film_ev")
    rows = [ln for ln in table.splitlines() if ln.startswith("| classic |")]
    assert [ln.split("|")[2].strip() for ln in rows] == ["-1", "+0", "+1", "+2"]
