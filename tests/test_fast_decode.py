"""Fast decode (Bayer binning) against LibRaw half-size, and the one-pass master against the float path."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from station.commands.bench import synth_negative_cfa
from station.io.dng import write_bayer_dng
from station.model.lut import delta_e2000
from station.pipeline import fastdecode as F
from station.pipeline.classic import ClassicInverter
from station.pipeline.convert import ConvertOptions, convert_file
from station.pipeline.decode import _decode_raw, decode
from station.pipeline.lutinvert import LutInverter


@pytest.fixture(scope="module")
def dngs(tmp_path_factory):
    d = tmp_path_factory.mktemp("fast")
    rng = np.random.default_rng(0)
    out = {}
    # a plain RGGB negative, and a GRBG one with a black level and a 14-bit-like white
    out["rggb"] = write_bayer_dng(d / "rggb.dng", synth_negative_cfa(600, 400, seed=1))
    cfa = (rng.random((400, 600)) * 15000 + 600).astype(np.uint16)
    out["grbg"] = write_bayer_dng(d / "grbg.dng", cfa, pattern="GRBG", black=512, white=16383)
    out["dir"] = d
    return out


@pytest.mark.parametrize("name", ["rggb", "grbg"])
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_binning_matches_libraw_half_size(dngs, name, backend):
    if backend == "numba" and not F.HAVE_NUMBA:
        pytest.skip("numba not installed")
    ref = _decode_raw(dngs[name], True).rgb  # LibRaw half_size
    got = F.decode_fast(dngs[name], backend=backend).rgb
    assert got.shape == ref.shape
    # LibRaw rounds to 16 bits (and averages the greens in integers): within 2 LSB of 65535
    assert np.abs(got - ref).max() <= 2.5 / 65535
    assert np.abs(got - ref).mean() <= 1.0 / 65535


def test_binning_factor_is_a_block_average(dngs):
    b = F.read_bayer(dngs["grbg"])
    half = F.bin_bayer(b, 1)
    quarter = F.bin_bayer(b, 2)
    h, w = quarter.shape[:2]
    ref = half[: 2 * h, : 2 * w].reshape(h, 2, w, 2, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(quarter, ref, atol=2e-6)
    np.testing.assert_allclose(F.bin_bayer(b, 3, "numba" if F.HAVE_NUMBA else "numpy"), F.bin_bayer(b, 3, "numpy"), atol=2e-6)


def test_preview_decode_size_and_linear_resize(dngs):
    dec = F.decode_fast(dngs["rggb"], long_side=200)
    assert max(dec.rgb.shape[:2]) == 200 and dec.rgb.shape[2] == 3
    half = F.decode_fast(dngs["rggb"]).rgb
    # area averaging keeps the mean light
    assert abs(float(dec.rgb.mean()) - float(half.mean())) < 1e-3
    assert dec.meta.get("decode", "").startswith("bayer-bin")


def test_area_resize_exact_on_integer_ratio():
    a = np.random.default_rng(0).random((60, 90, 3)).astype(np.float32)
    np.testing.assert_allclose(F.area_resize(a, (45, 30)), a.reshape(30, 2, 45, 2, 3).mean(axis=(1, 3)), atol=1e-6)


def test_tiff_input_falls_back(dngs):
    p = dngs["dir"] / "scan.tif"
    tifffile.imwrite(p, (np.random.default_rng(1).random((80, 120, 3)) * 65535).astype(np.uint16))
    dec = F.decode_fast(p, long_side=40)
    assert max(dec.rgb.shape[:2]) == 40


def test_convert_preview_goes_through_the_fast_path(dngs, tmp_path):
    r = convert_file(dngs["rggb"], {"preview": tmp_path / "p.jpg"},
                     ConvertOptions(inverter=ClassicInverter(), half_size=True, preview_size=256))
    from PIL import Image

    with Image.open(r.outputs["preview"]) as im:
        assert max(im.size) == 256
    assert max(r.positive_shape) == 256  # inverted at preview size, not at half size


def test_fast_master_equals_float_lut_path(dngs, tmp_path):
    inv = ClassicInverter()
    r = convert_file(dngs["rggb"], {"tiff": tmp_path / "m.tif"}, ConvertOptions(inverter=inv))
    assert "normalise" in r.timings and r.positive_shape == (400, 600)
    got = tifffile.imread(r.outputs["tiff"]).astype(np.float64) / 65535
    # the float path with the same LUT: decode -> density -> LutInverter
    from station.pipeline.base import estimate_base
    from station.pipeline.normalise import density

    dec = decode(dngs["rggb"])
    D = density(dec.rgb, estimate_base(dec.rgb).rgb)
    ref = LutInverter(inv)(D)
    assert np.abs(got - ref).max() <= 8 / 65535  # float32 log10 vs the float64 shaper table
    # and the direct (unbaked) classic inversion with the same frame statistics
    lut_inv = LutInverter(inv)
    direct = inv.pixel_fn(inv.normaliser(D, lut_inv.frame_affine(D)).reshape(-1, 3))
    assert delta_e2000(direct, got.reshape(-1, 3)).max() <= 0.5


def test_compiled_false_keeps_the_direct_path(dngs, tmp_path):
    inv = ClassicInverter()
    a = convert_file(dngs["rggb"], {"tiff": tmp_path / "a.tif"}, ConvertOptions(inverter=inv, compiled=False))
    assert "base" in a.timings
    got = tifffile.imread(a.outputs["tiff"]).astype(np.float64) / 65535
    from station.pipeline.base import estimate_base
    from station.pipeline.classic import classic_invert
    from station.pipeline.normalise import density

    dec = decode(dngs["rggb"])
    ref = classic_invert(density(dec.rgb, estimate_base(dec.rgb).rgb))
    assert np.abs(got - ref).max() <= 1 / 65535


SHARED = Path(__file__).resolve().parents[2] / "shared" / "samples" / "raw"


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/samples not present")
@pytest.mark.parametrize("name", ["RAW_NIKON_D1.NEF", "Blackmagic.dng", "canon_eos_6d.dng", "RAW_KODAK_DC50.KDC"])
def test_real_raws_match_libraw_half_size(name):
    """Real camera files: 12-bit NEF, lossless-JPEG CinemaDNG with black 512, a linear
    (demosaiced) DNG that must fall back to LibRaw, a Kodak KDC."""
    p = SHARED / name
    if not p.exists():
        pytest.skip(f"{name} missing")
    ref = _decode_raw(p, True).rgb
    got = F.decode_fast(p).rgb
    if got.shape != ref.shape:  # LibRaw may crop a margin differently: compare the common area
        h, w = min(got.shape[0], ref.shape[0]), min(got.shape[1], ref.shape[1])
        got, ref = got[:h, :w], ref[:h, :w]
    assert np.abs(got - ref).mean() <= 2.0 / 65535
    assert np.percentile(np.abs(got - ref), 99.9) <= 4.0 / 65535


@pytest.mark.parametrize("name", ["rggb", "grbg"])
def test_direct_dng_reader_equals_libraw(dngs, name):
    a = F.read_bayer(dngs[name], direct=True)
    b = F.read_bayer(dngs[name], direct=False)
    assert a.reader == "dng-direct" and b.reader == "libraw"
    np.testing.assert_array_equal(a.cfa, b.cfa)
    np.testing.assert_array_equal(a.chan, b.chan)
    np.testing.assert_allclose(a.black, b.black)
    assert a.white == b.white
    assert a.meta.get("orientation") == b.meta.get("orientation")


def test_truncated_dng_is_an_error_and_left_untouched(dngs, tmp_path):
    from station.errors import DecodeError

    good = dngs["rggb"].read_bytes()
    p = tmp_path / "trunc.dng"
    p.write_bytes(good[: len(good) // 3])
    with pytest.raises(DecodeError, match="truncated"):
        F.decode_fast(p)
    with pytest.raises(DecodeError):
        decode(p, half_size=True)
    assert p.stat().st_size == len(good) // 3  # the input is never modified (no read-write map)
    ro = tmp_path / "ro.dng"
    ro.write_bytes(good)
    ro.chmod(0o444)
    assert F.read_bayer(ro).reader == "dng-direct"  # a read-only original maps fine


def test_truncated_raw_is_caught_on_the_libraw_path(dngs, tmp_path):
    from station.errors import DecodeError

    good = dngs["grbg"].read_bytes()  # black 512
    p = tmp_path / "trunc.dng"
    p.write_bytes(good[: len(good) // 2])
    with pytest.raises(DecodeError, match="truncated"):
        F.read_bayer(p, direct=False)
