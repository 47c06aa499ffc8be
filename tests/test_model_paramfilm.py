"""The independent parametric negative generator: plausible negatives, blanks, same contract as film.py."""
import numpy as np
import pytest

from station.model import film, paramfilm
from station.pipeline.base import base_from_blank


def grey(v, n=16):
    return np.full((n, n, 3), v, float)


@pytest.mark.parametrize("stock", list(paramfilm.PARAM_STOCKS))
def test_orange_mask_and_blank_is_the_base(stock):
    p = paramfilm.ParamScanParams(stock=stock, flare=0.0)
    b = paramfilm.blank(p, 32)
    r, g, bl = b.reshape(-1, 3).mean(0)
    assert r > g > bl and r / bl > 2.0          # orange: passes red, absorbs blue
    assert b.std((0, 1)).max() < 0.02 * b.max()  # a blank is uniform
    s = paramfilm.simulate(grey(0.4), p)
    np.testing.assert_allclose(base_from_blank(b).rgb, s.base_rgb, rtol=0.03)
    assert abs(s.base_rgb.max() - paramfilm.BASE_LEVEL) < 1e-5


def test_density_increases_with_exposure_in_every_layer():
    dens = []
    for ev in (-2, -1, 0, 1, 2):
        s = paramfilm.simulate(grey(0.46), stock="param_portrait_400", scene_ev=ev, seed=1)
        dens.append(s.density.mean((0, 1)))
    assert np.all(np.diff(np.array(dens), axis=0) > 0.05)
    assert np.all(np.array(dens) > 0.0)


def test_same_contract_as_the_spectral_generator():
    img, _ = film.scene_with_charts(film.procedural_scene(160, 3))
    s = paramfilm.simulate(img, paramfilm.random_param_params(np.random.default_rng(5)))
    assert isinstance(s, film.NegativeScan)
    assert s.camera_rgb.shape == img.shape and s.camera_rgb.dtype == np.float32
    assert 0.0 <= s.camera_rgb.min() and s.camera_rgb.max() <= 1.0
    np.testing.assert_allclose(s.positive, img, atol=1e-6)   # truth: the scene as seen
    assert np.all(s.clear_rgb > s.base_rgb)
    # the picture is denser than the base nearly everywhere
    assert np.mean(np.all(s.density > -0.02, axis=-1)) > 0.99


def test_more_scan_exposure_same_density_with_its_own_blank():
    img = film.procedural_scene(96, 1)
    Ds = []
    for sev in (-1.0, 0.0, 0.5):
        p = paramfilm.ParamScanParams(stock="param_vivid_100", scan_ev=sev, seed=3)
        base = base_from_blank(paramfilm.blank(p, 32)).rgb
        Ds.append(-np.log10(np.maximum(paramfilm.simulate(img, p).camera_rgb, 1e-6) / base))
    assert np.abs(np.median(Ds[0] - Ds[2], axis=(0, 1))).max() < 0.02
