"""Registration of non-aligned pairs."""
import numpy as np
import pytest
from skimage.transform import SimilarityTransform, warp

from station.model import film
from station.model.register import RegistrationError, register_pair


@pytest.fixture(scope="module")
def scan():
    img = film.photo("astronaut", 256, np.random.default_rng(3))
    return film.simulate(img, stock="kodak_gold_200")


def test_recovers_crop_rotation_scale(scan):
    pos = scan.positive
    t = SimilarityTransform(rotation=np.radians(4.0), scale=1.15, translation=(-25, -10))
    H, W = pos.shape[:2]
    moved = warp(pos, t.inverse, output_shape=(int(H * 1.05), int(W * 1.1)), order=1)[10:-5, 8:-3]
    r = register_pair(scan.camera_rgb, moved)
    assert r.rotation_deg == pytest.approx(4.0, abs=0.3)
    assert r.scale == pytest.approx(1.15, rel=0.01)
    assert r.mask.mean() > 0.5
    assert np.abs(r.positive - pos)[r.mask].mean() < 0.03


def test_aligned_pair_is_identity(scan):
    r = register_pair(scan.camera_rgb, scan.positive)
    assert r.method == "identity" and r.mask.all()


def test_unrelated_images_refuse(scan):
    noise = np.random.default_rng(0).random(scan.positive.shape)
    with pytest.raises(RegistrationError):
        register_pair(scan.camera_rgb, noise)
