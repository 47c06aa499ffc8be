"""Film-physics generator: sanity of the simulated negatives."""
import json
from pathlib import Path

import numpy as np
import pytest

from station.model import film

SHARED = Path(__file__).resolve().parents[2] / "shared" / "film-profiles"


def grey(v, n=8):
    return np.full((n, n, 3), v, float)


def test_all_negative_stocks_present_and_held_out():
    names = film.stock_names()
    assert len(names) == 11
    for s in film.HELD_OUT_STOCKS:
        assert s in names and s not in film.training_stocks()
    assert len(film.training_stocks()) == 8


def test_more_exposure_gives_denser_negative():
    dens = [film.simulate(grey(0.46), stock="kodak_portra_400", scene_ev=ev, seed=1).density.mean((0, 1))
            for ev in (-2, -1, 0, 1, 2)]
    assert np.all(np.diff(np.array(dens), axis=0) > 0.05)


def test_orange_base_and_clear_brighter_than_base():
    s = film.simulate(grey(0.5), stock="kodak_gold_200", backlight="daylight")
    r, g, b = s.base_rgb
    assert r > g > b            # orange mask: base passes red, absorbs blue
    assert r / b > 2.0
    assert np.all(s.clear_rgb > s.base_rgb)
    assert abs(s.base_rgb.max() - film.BASE_LEVEL) < 1e-6


def test_grey_ramp_monotone_and_target_neutral():
    ramp, boxes = film.grey_ramp()
    for stock in ("kodak_ektar_100", "kodak_vision3_500t"):
        s = film.simulate(ramp, stock=stock)
        d = np.array([s.density[y0:y1, x0:x1].reshape(-1, 3).mean(0) for y0, y1, x0, x1 in boxes])
        assert np.all(np.diff(d, axis=0) > 0), stock       # lighter grey -> denser in every channel
        # the ground truth of a neutral is that neutral
        np.testing.assert_allclose(s.positive, np.clip(ramp, 0, 1), atol=2e-3)


def test_scan_exposure_scales_signal_but_not_density():
    img = film.procedural_scene(64, seed=3)
    a = film.simulate(img, stock="kodak_portra_160", scan_ev=-1.0, seed=5)
    b = film.simulate(img, stock="kodak_portra_160", scan_ev=0.0, seed=5)
    assert np.isclose(b.camera_rgb.mean() / a.camera_rgb.mean(), 2.0, rtol=0.05)
    assert np.abs(a.density - b.density).mean() < 0.02
    assert a.camera_rgb.dtype == np.float32 and a.camera_rgb.max() <= 1.0
    assert a.positive.min() >= 0 and a.positive.max() <= 1


def test_rebate_has_base_sprockets_and_holder():
    s = film.simulate(film.procedural_scene(96, seed=1), stock="kodak_portra_400")
    reb = film.add_rebate(s, border=0.1)
    h, w, _ = s.camera_rgb.shape
    assert reb.shape[0] > h and reb.shape[1] > w
    assert reb[:2].max() < 0.01                      # black holder edge
    lum = reb.sum(-1)
    b = int(round(0.1 * max(h, w)))
    strip = lum[2:b]                                 # top rebate with sprockets
    assert strip.max() > s.base_rgb.sum() * 1.3      # clear holes brighter than base
    assert np.median(strip) == pytest.approx(s.base_rgb.sum(), rel=0.05)


def test_generate_pairs_varied():
    scans = list(film.generate_pairs(3, seed=2, size=96))
    assert len({s.params.stock for s in scans} | {s.params.camera for s in scans}) >= 2
    for s in scans:
        assert s.camera_rgb.shape == s.positive.shape == (96, 96, 3)
        assert s.params.stock not in film.HELD_OUT_STOCKS


def test_films_json_small_with_provenance():
    p = Path(film.__file__).parent / "data" / "films.json"
    assert p.stat().st_size < 60_000
    d = json.loads(p.read_text())
    assert "spektrafilm" in d["provenance"] and "8f621749" in d["provenance"]


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/film-profiles not present")
def test_fitted_curves_match_measured_profiles():
    for key in film.stock_names():
        prof = json.loads((SHARED / f"{key}.json").read_text())["data"]
        le = np.asarray(prof["log_exposure"])
        dc = np.asarray(prof["density_curves"])
        fit = film.load_stock(key).characteristic(np.repeat(le[:, None], 3, 1))
        assert np.sqrt(np.mean((fit - dc) ** 2)) < 0.02, key


def test_write_dng_roundtrip(tmp_path):
    pytest.importorskip("rawpy")
    from station.pipeline.decode import decode
    s = film.simulate(film.procedural_scene(64, seed=2), stock="kodak_portra_400")
    p = tmp_path / "neg.dng"
    film.write_dng(p, s.camera_rgb)
    dec = decode(p)
    assert dec.rgb.shape[:2] == (64, 64)
    # the base-normalised density survives the DNG round trip (demosaic blurs edges: compare medians)
    d_true = np.median(s.density.reshape(-1, 3), 0)
    d_dng = np.median(-np.log10(np.maximum(dec.rgb, 1e-6) / s.base_rgb).reshape(-1, 3), 0)
    np.testing.assert_allclose(d_dng, d_true, atol=0.05)
