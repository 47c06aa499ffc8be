"""MLP, model files, the Inverter contract."""
import json
import zipfile

import numpy as np
import pytest

from station.model import MLPInverter, load_model, save_model
from station.model.mlp import MLPConfig, make_module, mlp_apply
from station.model.normalise import Normaliser, apply_affine, frame_affine


def make(cfg=MLPConfig(16, 2, skip=True, activation="silu"), kind="percentile"):
    import torch
    torch.manual_seed(0)
    net = make_module(cfg)
    return MLPInverter(cfg, net.export(), Normaliser(kind), [[-0.2] * 3, [1.2] * 3])


def test_numpy_and_torch_agree():
    import torch
    for cfg in (MLPConfig(), MLPConfig(32, 4, True, "silu"), MLPConfig(8, 1, False, "tanh")):
        net = make_module(cfg)
        z = np.random.default_rng(0).random((100, 3)).astype(np.float32)
        with torch.no_grad():
            t = net(torch.from_numpy(z)).numpy()
        np.testing.assert_allclose(mlp_apply(z, net.export(), cfg), t, atol=1e-5)
    assert MLPConfig().n_params() == 3 * 64 + 64 + 2 * (64 * 64 + 64) + 64 * 3 + 3


def test_normaliser_affine():
    yy, xx = np.mgrid[0:50, 0:40]
    D = np.stack([xx / 40, yy / 50 * 1.5, (xx / 40 + yy / 50)], -1).astype(np.float32)  # smooth frame
    A, b = frame_affine(D, "percentile", 1, 99)
    z = apply_affine(D, A, b)[6:44, 4:36]   # metered on the central region
    lo, hi = np.percentile(z.reshape(-1, 3), [1, 99], axis=0)
    np.testing.assert_allclose(lo, 0, atol=0.03)
    np.testing.assert_allclose(hi, 1, atol=0.03)
    # exposure shift + contrast change of a whole frame is removed
    z2 = Normaliser("percentile", 1, 99)(D * 1.3 + 0.2)
    np.testing.assert_allclose(z2, Normaliser("percentile", 1, 99)(D), atol=2e-3)
    assert np.all(np.isfinite(apply_affine(np.full((2, 2, 3), np.nan), A, b)))
    with pytest.raises(ValueError):
        Normaliser("bogus")


def test_normaliser_ignores_rebate_and_sprockets():
    from station.model import film
    s = film.simulate(film.photo("astronaut", 160, np.random.default_rng(2)), stock="kodak_portra_400")
    framed = film.add_rebate(s, border=0.06)
    D_framed = -np.log10(np.maximum(framed, 1e-6) / s.base_rgb)
    A0, b0 = frame_affine(s.density, "percentile")
    A1, b1 = frame_affine(D_framed, "percentile")
    # the rebate (D=0), sprocket holes (D<0) and black holder barely move the frame's affine
    np.testing.assert_allclose(A1, A0, rtol=0.1)
    np.testing.assert_allclose(b1, b0, atol=0.1)
    # a wrong base estimate (a per-channel shift of D) changes nothing after normalising
    shift = np.array([0.1, -0.2, 0.4], np.float32)
    np.testing.assert_allclose(Normaliser()(s.density + shift), Normaliser()(s.density), atol=1e-4)


def test_save_load_roundtrip(tmp_path):
    inv = make()
    p = save_model(tmp_path / "m.npz", inv, {"note": "test"})
    back = load_model(p)
    D = np.random.default_rng(1).random((30, 20, 3)).astype(np.float32)
    out = back(D)
    assert out.shape == D.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_allclose(out, inv(D), atol=1e-6)
    z = back.normaliser(D)
    np.testing.assert_allclose(back.pixel_fn(z.reshape(-1, 3)), out.reshape(-1, 3), atol=1e-6)
    np.testing.assert_allclose(back.pixel_fn(z.reshape(-1, 3), use_torch=False), out.reshape(-1, 3), atol=1e-5)
    lo, hi = back.z_range
    assert lo.shape == hi.shape == (3,) and np.all(lo < hi)
    assert back.meta["training"] == {"note": "test"}
    with np.load(p, allow_pickle=False) as f:
        assert "meta" in f.files


def test_corrupt_file(tmp_path):
    p = tmp_path / "bad.npz"
    p.write_bytes(b"this is not a zip file")
    with pytest.raises(ValueError, match="bad.npz"):
        load_model(p)
    with pytest.raises(ValueError, match="not found"):
        load_model(tmp_path / "missing.npz")


def test_wrong_shapes_and_other_architecture(tmp_path):
    inv = make()
    p = save_model(tmp_path / "m.npz", inv)
    with np.load(p, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    # weights that do not match the declared architecture
    meta = json.loads(str(arrays["meta"]))
    meta["architecture"]["width"] = 32
    bad = dict(arrays, meta=np.array(json.dumps(meta)))
    np.savez(tmp_path / "arch.npz", **bad)
    with pytest.raises(ValueError, match="arch.npz"):
        load_model(tmp_path / "arch.npz")
    bad = dict(arrays, W0=np.zeros((5, 3), np.float32))
    np.savez(tmp_path / "shape.npz", **bad)
    with pytest.raises(ValueError, match="shape"):
        load_model(tmp_path / "shape.npz")
    meta = json.loads(str(arrays["meta"]))
    meta["format"] = "someone-elses-model"
    np.savez(tmp_path / "fmt.npz", **dict(arrays, meta=np.array(json.dumps(meta))))
    with pytest.raises(ValueError, match="format"):
        load_model(tmp_path / "fmt.npz")
    # a pickled object array must not load
    np.savez(tmp_path / "pickle.npz", **dict(arrays, meta=np.array([{"a": 1}], dtype=object)))
    with pytest.raises(ValueError, match="pickle.npz"):
        load_model(tmp_path / "pickle.npz")


def test_default_model_ships_and_loads():
    from station.model import DEFAULT_MODEL
    assert DEFAULT_MODEL.stat().st_size < 1_000_000
    m = load_model()
    out = m(np.zeros((4, 4, 3), np.float32) + 0.5)
    assert out.shape == (4, 4, 3)
    assert m.meta["training"]["sources"]["generated"]["held_out_stocks"]
