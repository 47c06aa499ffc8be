"""The print's kernels (station.pipeline.printing): each setting does what its name says."""
from __future__ import annotations

import numpy as np
import pytest

from station.pipeline.printing import (IDENTITY, PrintError, PrintSettings, apply_srgb, linear_to_srgb,
                                       printed_table, srgb_to_linear, wb_gains)


def _ramp(n=4096, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 1.0, (n, 3)).astype(np.float32)


def test_identity_is_an_exact_no_op():
    x = _ramp()
    assert apply_srgb(x, IDENTITY) is x
    assert apply_srgb(x, PrintSettings.from_dict({})) is x
    t = np.random.default_rng(1).uniform(-0.2, 1.3, (5, 5, 5, 3)).astype(np.float32)
    assert printed_table(t, PrintSettings()) is t
    assert np.array_equal(wb_gains(6500.0, 0.0), np.ones(3))


def test_exposure_plus_one_ev_doubles_linear_light():
    x = _ramp() * 0.45  # stays below white after doubling
    out = apply_srgb(x, PrintSettings(exposure=1.0))
    np.testing.assert_allclose(srgb_to_linear(out.astype(np.float64)), 2.0 * srgb_to_linear(x.astype(np.float64)),
                               rtol=1e-4, atol=1e-6)
    down = apply_srgb(x, PrintSettings(exposure=-2.0))
    np.testing.assert_allclose(srgb_to_linear(down.astype(np.float64)), 0.25 * srgb_to_linear(x.astype(np.float64)),
                               rtol=1e-4, atol=1e-6)


def test_white_balance_moves_the_way_its_name_says():
    grey = np.full((1, 3), linear_to_srgb(0.18), np.float64)
    warm = apply_srgb(grey, PrintSettings(temperature=9000))[0]
    cool = apply_srgb(grey, PrintSettings(temperature=4000))[0]
    magenta = apply_srgb(grey, PrintSettings(tint=50))[0]
    assert warm[0] > warm[1] > warm[2], warm  # higher temperature: a warmer picture
    assert cool[2] > cool[1] > cool[0], cool
    assert magenta[1] < magenta[0] and magenta[1] < magenta[2], magenta
    # a neutral's luminance is kept
    for s in (PrintSettings(temperature=9000), PrintSettings(temperature=3200, tint=-40)):
        lin = srgb_to_linear(apply_srgb(grey, s, clip=False)[0])
        assert abs(float(np.array([0.2126, 0.7152, 0.0722]) @ lin) - 0.18) < 1e-6


@pytest.mark.parametrize("pixel", [(0.62, 0.50, 0.38), (0.40, 0.46, 0.54), (0.55, 0.42, 0.56), (0.4, 0.52, 0.41)])
@pytest.mark.parametrize("start", [PrintSettings(), PrintSettings(exposure=0.5, contrast=1.3, temperature=5000, tint=10,
                                                                  black=0.02, white=0.97)])
def test_neutral_picker_makes_the_picked_pixel_neutral(pixel, start):
    # the pixel as displayed with `start`: find the inverter's colour under it, then re-print it
    shown = np.asarray(pixel, np.float64)
    s = start.with_neutral(shown)
    # what the inverter made at that point, recovered by undoing `start` (per channel, monotonic)
    grid = np.linspace(0, 1, 200001)
    under = np.stack([np.interp(shown[c], apply_srgb(np.stack([grid] * 3, 1), start)[:, c], grid) for c in range(3)])
    out = apply_srgb(under[None], s)[0]
    assert np.ptp(out) < 2e-3, (s, out)
    assert s.exposure == start.exposure and s.contrast == start.contrast and s.black == start.black


def test_neutral_picker_refuses_a_clipped_or_black_point():
    with pytest.raises(PrintError, match="neutral"):
        IDENTITY.with_neutral((1.0, 0.5, 0.4))
    with pytest.raises(PrintError, match="neutral"):
        IDENTITY.with_neutral((0.0, 0.0, 0.0))
    with pytest.raises(PrintError, match="beyond the white balance"):
        IDENTITY.with_neutral((0.1, 0.3, 0.9))  # no light is that blue: refused, not half-corrected


def test_contrast_pivots_around_mid_grey():
    mid = float(linear_to_srgb(0.18))
    x = np.array([[0.1, 0.1, 0.1], [mid, mid, mid], [0.8, 0.8, 0.8], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    hi = apply_srgb(x, PrintSettings(contrast=1.5))
    lo = apply_srgb(x, PrintSettings(contrast=0.7))
    np.testing.assert_allclose(hi[1], mid, atol=1e-9)
    np.testing.assert_allclose(lo[1], mid, atol=1e-9)
    assert hi[0, 0] < x[0, 0] < lo[0, 0]  # shadows darker with more contrast
    assert hi[2, 0] > x[2, 0] > lo[2, 0]  # highlights lighter
    np.testing.assert_allclose(hi[[3, 4]], x[[3, 4]], atol=1e-9)  # black and white stay
    ramp = np.linspace(-0.1, 1.2, 1001)[:, None] * np.ones(3)
    y = apply_srgb(ramp, PrintSettings(contrast=2.0), clip=False)
    assert np.all(np.diff(y[:, 0]) > 0)  # monotonic, also beyond [0, 1]


def test_black_and_white_points_map_to_black_and_white():
    s = PrintSettings(black=0.1, white=0.85)
    x = np.array([[0.1, 0.1, 0.1], [0.85, 0.85, 0.85], [0.05, 0.5, 0.95]])
    out = apply_srgb(x, s)
    np.testing.assert_allclose(out[0], 0.0, atol=1e-9)
    np.testing.assert_allclose(out[1], 1.0, atol=1e-9)
    assert out[2, 0] == 0.0 and out[2, 2] == 1.0 and 0.5 < out[2, 1] < 0.6
    # in linear light: a straight line between the points
    mid_lin = (srgb_to_linear(0.5) - srgb_to_linear(0.1)) / (srgb_to_linear(0.85) - srgb_to_linear(0.1))
    np.testing.assert_allclose(srgb_to_linear(out[2, 1]), mid_lin, rtol=1e-9)


def test_printed_table_composes_after_the_lut():
    t = np.random.default_rng(2).uniform(-0.05, 1.1, (9, 9, 9, 3)).astype(np.float32)
    s = PrintSettings(exposure=-0.7, temperature=5200, tint=-12, contrast=1.2, black=0.03, white=0.95)
    composed = printed_table(t, s)
    assert composed.shape == t.shape and composed.dtype == np.float32
    np.testing.assert_allclose(np.clip(composed, 0, 1), apply_srgb(t, s), atol=1e-6)


@pytest.mark.parametrize("data, key", [
    ({"exposure": 9}, "print.exposure"), ({"contrast": "high"}, "print.contrast"), ({"gamma": 1}, "print.gamma"),
    ({"wb": "warm"}, "print.wb"), ({"black": 0.6, "white": 0.6}, "print.black"), ({"black": 0.5, "white": 0.52}, "print.white"),
    ({"temperature": 900}, "print.temperature"), ("bright", "print"),
])
def test_bad_settings_name_the_key(data, key):
    with pytest.raises(PrintError) as exc:
        PrintSettings.from_dict(data)
    assert str(exc.value).startswith(key + ": "), str(exc.value)


def test_from_dict_reads_wb_shorthand_and_round_trips():
    s = PrintSettings.from_dict({"wb": "5200,12", "exposure": 0.5})
    assert (s.temperature, s.tint, s.exposure) == (5200.0, 12.0, 0.5)
    assert PrintSettings.from_dict(s.to_dict()) == s
    assert PrintSettings.from_dict({"wb": 4800}).tint == 0.0
