"""The baked 3-D LUT against the direct pixel function: CIEDE2000 on a dense sample."""
from __future__ import annotations

import numpy as np
import pytest

from station.model import lut as L
from station.pipeline.classic import ClassicInverter, classic_invert
from station.pipeline.lutinvert import LutInverter, compiled, lut_for

torch = pytest.importorskip("torch")


class RandomMLP:
    """A random-but-smooth 3->64->64->64->3 MLP (SiLU, sigmoid out) following the model contract.

    The weights are scaled up so the output sweeps most of [0,1] over z_range with real
    curvature (a freshly initialised net is nearly constant and would make the test trivial)."""

    name = "mlp"

    def __init__(self, seed: int = 0, gain: float = 2.5):
        g = torch.Generator().manual_seed(seed)
        dims = [3, 64, 64, 64, 3]
        self.weights = {}
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            self.weights[f"w{i}"] = (torch.randn(a, b, generator=g) * gain / np.sqrt(a)).numpy()
            self.weights[f"b{i}"] = (torch.randn(b, generator=g) * 0.5).numpy()
        self.z_range = (np.full(3, -0.25, np.float32), np.full(3, 1.25, np.float32))

    def pixel_fn(self, z):
        x = torch.from_numpy(np.asarray(z, np.float32).reshape(-1, 3))
        with torch.inference_mode():
            for i in range(4):
                x = x @ torch.from_numpy(self.weights[f"w{i}"]) + torch.from_numpy(self.weights[f"b{i}"])
                x = torch.nn.functional.silu(x) if i < 3 else torch.sigmoid(x)
        return x.numpy()

    def frame_affine(self, D):
        s = np.asarray(D, np.float32).reshape(-1, 3)
        lo, hi = np.percentile(s, [0.5, 99.5], axis=0)
        A = 1.0 / np.maximum(hi - lo, 0.05)
        return A.astype(np.float32), (-lo * A).astype(np.float32)

    def normaliser(self, D, affine=None):
        A, b = affine if affine is not None else self.frame_affine(D)
        return (np.asarray(D, np.float32) * A + b).astype(np.float32)

    def __call__(self, D, affine=None):
        z = self.normaliser(D, affine)
        return self.pixel_fn(z.reshape(-1, 3)).reshape(D.shape)


def _density_image(h=160, w=240, seed=1):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    D = np.stack([0.1 + 2.0 * xx / w, 0.2 + 1.7 * yy / h, 0.3 + 0.8 * np.sin(xx / 17.0) ** 2], axis=2)
    return (D + rng.normal(0, 0.03, D.shape)).astype(np.float32)


def test_random_mlp_is_not_trivial():
    m = RandomMLP()
    out = m.pixel_fn(L.dense_sample(*m.z_range, 20000))
    assert out.std(axis=0).min() > 0.1  # the function really varies: the error test below means something


@pytest.mark.parametrize("method", L.METHODS)
def test_mlp_lut_error_dense(method):
    m = RandomMLP()
    lut = L.bake(m.pixel_fn, m.z_range, L.DEFAULT_SIZE)
    err = L.lut_error(lut, m.pixel_fn, L.dense_sample(*m.z_range, 100_000, seed=3), method)
    assert err["max"] <= 0.5, err
    assert err["p99"] <= 0.25, err


def test_smoother_mlp_meets_target_at_33():
    m = RandomMLP(gain=2.0)
    lut = L.bake(m.pixel_fn, m.z_range, 33)
    assert L.lut_error(lut, m.pixel_fn, L.dense_sample(*m.z_range, 100_000, seed=3))["max"] <= 0.5


def test_coarse_lut_fails_the_target():
    """The same check catches an inadequate grid (so the test above could fail)."""
    m = RandomMLP()
    lut = L.bake(m.pixel_fn, m.z_range, 17)
    assert L.lut_error(lut, m.pixel_fn, L.dense_sample(*m.z_range, 50_000))["max"] > 0.5


@pytest.mark.parametrize("method", L.METHODS)
def test_classic_lut_error_dense(method):
    inv = ClassicInverter()
    lut = L.bake(inv.pixel_fn, inv.z_range, 33)
    lo, hi = inv.z_range
    # sample beyond the range too: clamping must be exact there
    err = L.lut_error(lut, inv.pixel_fn, L.dense_sample(lo - 0.3, hi + 0.3, 100_000, seed=4), method)
    assert err["max"] <= 0.5, err


def test_classic_two_part_equals_classic():
    inv = ClassicInverter()
    D = _density_image()
    z = inv.normaliser(D)
    np.testing.assert_allclose(inv.pixel_fn(z.reshape(-1, 3)).reshape(D.shape), classic_invert(D), atol=1e-5)


@pytest.mark.parametrize("make", [RandomMLP, ClassicInverter])
def test_lut_inverter_on_a_frame(make):
    inner = make()
    fast = compiled(inner)
    assert isinstance(fast, LutInverter)
    D = _density_image()
    affine = fast.frame_affine(D)
    got = fast(D, affine)
    ref = inner.pixel_fn(inner.normaliser(D, affine).reshape(-1, 3)).reshape(D.shape)
    de = L.delta_e2000(ref, got)
    assert de.max() <= 0.5 and np.percentile(de, 99) <= 0.25


def test_numba_and_numpy_kernels_agree():
    if not L.HAVE_NUMBA:
        pytest.skip("numba not installed")
    m = RandomMLP(seed=2)
    lut = L.bake(m.pixel_fn, m.z_range, 17)
    z = L.dense_sample(m.z_range[0] - 0.2, m.z_range[1] + 0.2, 50_000, seed=5)
    for method in L.METHODS:
        a = lut.apply(z, method=method, backend="numba")
        b = lut.apply(z, method=method, backend="numpy")
        np.testing.assert_allclose(a, b, atol=2e-6)


def test_lut_reproduces_nodes_and_affine_folding():
    m = RandomMLP(seed=3)
    lut = L.bake(m.pixel_fn, m.z_range, 9)
    nodes = L.grid_points(*m.z_range, 9)
    for method in L.METHODS:  # at the nodes interpolation is exact
        np.testing.assert_allclose(lut.apply(nodes, method=method), lut.table.reshape(-1, 3), atol=1e-4)
    D = _density_image(40, 60)
    A, b = np.array([0.5, 0.7, 1.1]), np.array([0.1, -0.2, 0.05])
    np.testing.assert_allclose(lut.apply(D, A=A, b=b), lut.apply((D * A + b).astype(np.float32)), atol=1e-4)


def test_lut_cache_is_keyed_by_model():
    a1, a2, b = RandomMLP(seed=0), RandomMLP(seed=0), RandomMLP(seed=1)
    assert lut_for(a1) is lut_for(a2)  # same weights: baked once
    assert lut_for(a1) is not lut_for(b)
    assert lut_for(a1, 17) is not lut_for(a1, 33)
    assert lut_for(ClassicInverter()) is lut_for(ClassicInverter())


def test_auto_size_meets_target_and_pads_learned_ranges():
    from station.pipeline.lutinvert import TARGET_DE, bake_range

    smooth, wiggly, classic = LutInverter(RandomMLP(seed=5, gain=1.5)), LutInverter(RandomMLP(gain=2.5)), LutInverter(ClassicInverter())
    assert smooth.size == 33 and classic.size == 33
    assert wiggly.size > 33  # 33^3 is not enough for it (see test_mlp_lut_error_dense)
    for inv in (smooth, wiggly, classic):
        assert inv.lut.meta["error"]["max"] <= TARGET_DE
    lo, hi = RandomMLP().z_range
    np.testing.assert_allclose(wiggly.lut.lo, lo - 0.1 * (hi - lo), atol=1e-6)  # learned: 10% margin
    np.testing.assert_allclose(classic.lut.lo, ClassicInverter().z_range[0], atol=1e-6)  # classic: exact
    np.testing.assert_allclose(bake_range(RandomMLP(), pad=0.0)[1], hi, atol=1e-6)


def test_a_model_that_holds_z_is_baked_over_its_hold_cube():
    """MLPInverter holds z in one common cube (the narrowest of z_range); beyond it the
    function is constant.  Baked exactly over that cube, the hold's kink lies on the LUT's
    faces, not inside cells: closer to the direct function than a table padded around the
    per-channel z_range (what was baked before, BAKE_VERSION 3), on inputs spread beyond."""
    from station.model.io import MLPInverter
    from station.model.mlp import MLPConfig
    from station.model.normalise import Normaliser
    from station.pipeline.lutinvert import PAD, bake_range

    cfg = MLPConfig(width=16, depth=2, activation="silu", prior="classic", neutral=0.05)
    rng = np.random.default_rng(3)
    w = {k: (rng.normal(size=s) * 0.8).astype(np.float32) for k, s in cfg.shapes()}
    inv = MLPInverter(cfg, w, Normaliser("base"), z_range=[[-0.45, -0.3, -0.6], [1.06, 1.1, 1.08]])
    lo, hi = bake_range(inv)
    np.testing.assert_allclose(lo, [-0.3] * 3, atol=1e-6)
    np.testing.assert_allclose(hi, [1.06] * 3, atol=1e-6)
    zl, zh = np.array([-0.45, -0.3, -0.6]), np.array([1.06, 1.1, 1.08])
    z = L.dense_sample(zl - PAD * (zh - zl), zh + PAD * (zh - zl), 20_000, seed=2)
    hold = L.lut_error(L.bake(lambda q: inv.pixel_fn(q, clip=False), (lo, hi), 33), inv.pixel_fn, z)
    padded = L.lut_error(L.bake(lambda q: inv.pixel_fn(q, clip=False), (zl - PAD * (zh - zl), zh + PAD * (zh - zl)), 33),
                         inv.pixel_fn, z)
    assert hold["max"] < padded["max"] and hold["p99"] < padded["p99"], (hold, padded)
