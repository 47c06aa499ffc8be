"""Film base, density and the classic inversion on generated negatives."""
import numpy as np
import pytest
from scipy import ndimage
from skimage.color import rgb2lab

from negatives import BASE_DENSITY, LIGHT, expose, grey_ramp, with_rebate, write_negative_dng
from station.pipeline.base import base_from_blank, estimate_base
from station.pipeline.classic import classic_invert
from station.pipeline.convert import ConvertOptions, convert_file
from station.pipeline.crop import tilt_degrees
from station.pipeline.decode import decode
from station.pipeline.invert import get_inverter
from station.pipeline.normalise import density

TRUE_BASE = LIGHT * 10.0 ** (-BASE_DENSITY)


def ramp_steps(pos: np.ndarray, border: int, steps: int = 12) -> np.ndarray:
    """Mean colour of each ramp band of a positive (border = rebate width)."""
    h, w = pos.shape[0] - 2 * border, pos.shape[1] - 2 * border
    band = pos[border + h // 3: border + 2 * h // 3, border: border + w]
    bw = w // steps
    return np.array([band[:, i * bw + bw // 4: (i + 1) * bw - bw // 4].reshape(-1, 3).mean(0) for i in range(steps)])


@pytest.mark.parametrize("holes,holder,scan_ev", [(True, 0, 0.0), (True, 12, 0.0), (False, 0, -1.0), (True, 8, 0.5)])
def test_base_estimate_ignores_sprocket_holes_and_holder(tmp_path, holes, holder, scan_ev):
    scan = with_rebate(expose(grey_ramp(), scan_ev=scan_ev), holes=holes, holder=holder, scan_ev=scan_ev)
    dec = decode(write_negative_dng(tmp_path / "n.dng", scan))
    est = estimate_base(dec.rgb)
    assert est.source == "rebate"
    np.testing.assert_allclose(est.rgb, TRUE_BASE * 2.0**scan_ev, rtol=0.02)


def test_base_without_rebate_falls_back_and_says_so():
    scene = np.full((200, 300, 3), 0.2, np.float32)
    scene[:, 150:] = 0.6  # two halves: no uniform rebate-like band on every side
    scene[50:150, 50:250] = np.linspace(0.05, 0.9, 200)[None, :, None]
    est = estimate_base(expose(scene)[20:-20, 20:-20])
    assert "no rebate" in est.source
    thinnest = expose(np.full((1, 1, 3), 0.05, np.float32))[0, 0]  # the scene's darkest shadow
    np.testing.assert_allclose(np.log10(est.rgb), np.log10(thinnest), atol=0.05)


def test_blank_frame_base(tmp_path):
    blank = with_rebate(np.tile(TRUE_BASE.astype(np.float32), (200, 300, 1)), holes=True)
    est = base_from_blank(decode(write_negative_dng(tmp_path / "blank.dng", blank)).rgb)
    assert est.source == "blank frame"
    np.testing.assert_allclose(est.rgb, TRUE_BASE, rtol=0.02)


def test_density_is_zero_at_base_and_positive_on_image():
    scan = expose(grey_ramp())
    D = density(scan, TRUE_BASE)
    assert D.dtype == np.float32
    assert np.all(D > 0)
    np.testing.assert_allclose(density(TRUE_BASE[None, None, :].astype(np.float32), TRUE_BASE), 0, atol=1e-5)


def test_density_is_invariant_to_scan_exposure():
    scene = grey_ramp()
    d0 = density(expose(scene), TRUE_BASE)
    d1 = density(expose(scene, scan_ev=1.0), TRUE_BASE * 2.0)
    np.testing.assert_allclose(d0, d1, atol=1e-4)


def test_grey_ramp_comes_out_neutral_and_in_order(tmp_path):
    scan = with_rebate(expose(grey_ramp()), holes=True, holder=10)
    src = write_negative_dng(tmp_path / "ramp.dng", scan)
    res = convert_file(src, {"tiff": tmp_path / "ramp.tif"}, ConvertOptions(inverter=get_inverter("classic")))
    import tifffile

    pos = tifffile.imread(res.outputs["tiff"]).astype(np.float32) / 65535.0
    lab = rgb2lab(ramp_steps(pos, 40)[None])[0]
    L, chroma = lab[:, 0], np.hypot(lab[:, 1], lab[:, 2])
    assert np.all(np.diff(L) > 2.0), f"tones out of order: {L}"
    assert L[0] < 30 and L[-1] > 75  # a full tonal range
    assert chroma.max() < 4.0, f"greys not neutral: C* = {chroma}"


def test_classic_inversion_is_stable_across_scan_exposure():
    scene = grey_ramp()
    out = []
    for ev in (-1.0, 0.5):
        scan = with_rebate(expose(scene, scan_ev=ev), scan_ev=ev)
        est = estimate_base(scan)
        out.append(classic_invert(density(scan, est.rgb)))
    lab = [rgb2lab(o) for o in out]
    assert np.abs(lab[0] - lab[1]).max() < 1.0


def test_auto_crop_straightens_and_removes_rebate(tmp_path):
    scan = with_rebate(expose(grey_ramp()), holes=True, holder=10)
    scan = ndimage.rotate(scan, 3.0, axes=(1, 0), reshape=False, order=1, mode="nearest")
    base = estimate_base(scan).rgb
    assert abs(tilt_degrees(density(scan, base)) - 3.0) < 0.5
    src = write_negative_dng(tmp_path / "tilted.dng", scan)
    res = convert_file(src, {"jpeg": tmp_path / "t.jpg"}, ConvertOptions(inverter=get_inverter("classic"), crop="auto"))
    h, w = res.positive_shape
    assert 220 <= h <= 240 and 340 <= w <= 360  # the 240x360 picture, minus a small inset
