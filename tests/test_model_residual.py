"""The shipped model: a bounded residual on the classic inversion, anchored at the film base."""
import numpy as np
import pytest

from station.model import film, load_model, paramfilm
from station.model.metrics import ciede2000
from station.model.mlp import MLPConfig, make_module, mlp_apply, prior_apply


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_residual_is_bounded_whatever_the_weights():
    import torch
    cfg = MLPConfig(16, 2, activation="silu", prior="classic", bound=0.1)
    torch.manual_seed(0)
    net = make_module(cfg)
    w = {k: v * 40.0 for k, v in net.export().items()}   # a wild network
    z = np.random.default_rng(0).uniform(-1.0, 2.0, (5000, 3)).astype(np.float32)
    out = mlp_apply(z, w, cfg)
    prior = prior_apply(z, cfg)
    assert np.abs(out - prior).max() <= 0.1 + 1e-6
    assert np.abs(out - prior).max() > 0.09        # and the network does use its room
    with torch.no_grad():
        t = net.load(w)(torch.from_numpy(z)).numpy()
    np.testing.assert_allclose(t, out, atol=2e-5)  # torch and numpy agree


def test_shipped_model_stays_within_its_bound_of_the_classic_prior():
    m = load_model()
    assert m.config.prior == "classic" and m.config.bound <= 0.2
    s = paramfilm.simulate(film.procedural_scene(96, 4), stock="param_vivid_100", scene_ev=2.0)
    z = m.normaliser(s.density).reshape(-1, 3)
    diff = np.abs(m.pixel_fn(z, clip=False) - prior_apply(z, m.config))
    assert diff.max() <= m.config.bound + 1e-5


def _frame(seed=2):
    img, _ = film.scene_with_charts(film.photo("rocket", 160, np.random.default_rng(seed)))
    return film.simulate(img, stock="kodak_ultramax_400", scene_ev=0.5, seed=seed)


def test_the_base_counts_wrong_base_changes_the_positive_right_base_is_better():
    m = load_model()
    s = _frame()
    D_right = s.density
    wrong = s.base_rgb * np.array([1.12, 1.0, 0.85], np.float32)    # a base estimate off in colour
    D_wrong = -np.log10(np.maximum(s.camera_rgb, 1e-6) / wrong)
    out_r, out_w = m(D_right), m(D_wrong)
    assert np.abs(out_r - out_w).mean() > 0.01          # the base is used (before: <= 1/65535)
    de_r = ciede2000(out_r, s.positive).mean()
    de_w = ciede2000(out_w, s.positive).mean()
    assert de_r < de_w - 0.5


def test_roll_affine_from_pooled_samples_of_several_frames():
    """The roll analysis passes (A, b) from pooled (N,3) densities of many frames."""
    m = load_model()
    scene = film.procedural_scene(64, 5)
    frames = [film.simulate(scene, stock="kodak_portra_400", scene_ev=ev, seed=k).density
              for k, ev in ((1, -1.0), (2, 0.0), (3, 1.0))]
    pooled = np.concatenate([D.reshape(-1, 3)[::3] for D in frames])
    A, b = m.frame_affine(pooled)
    assert A.shape == (3,) and b.shape == (3,) and np.all(np.isfinite(A)) and np.all(A > 0)
    outs = [m(D, affine=(A, b)) for D in frames]
    # one rendering for the roll: a denser negative (more exposure) gives a brighter positive
    assert outs[0].mean() < outs[1].mean() < outs[2].mean()


def test_shipped_model_keeps_neutrals_neutral():
    """A neutral input (equal z in the three channels) gives a neutral output: the residual's
    colour fades out near the grey axis (MLPConfig.neutral), so the learned part cannot put a
    cast into greys (the magenta rock/snow of the real Plustek scan).  Off-axis inputs still
    get their learned colour."""
    import dataclasses

    from station.model import load_model

    m = load_model()
    assert m.config.neutral > 0
    z = np.repeat(np.linspace(-0.1, 1.1, 200, dtype=np.float32)[:, None], 3, axis=1)
    out = m.pixel_fn(z, use_torch=False)
    assert np.abs(out - out.mean(axis=1, keepdims=True)).max() < 1e-5
    out_t = m.pixel_fn(z, use_torch=True)
    assert np.abs(out_t - out_t.mean(axis=1, keepdims=True)).max() < 1e-4
    # without the fade the same network does colour greys (what the option is for)
    m.config = dataclasses.replace(m.config, neutral=0.0)
    m._module = None
    raw = m.pixel_fn(z, use_torch=False)
    assert np.abs(raw - raw.mean(axis=1, keepdims=True)).max() > 0.01
    # and a coloured input (channel spread 0.6, far beyond the fade's width) keeps its learned colour
    zc = np.array([[0.2, 0.5, 0.8]], np.float32)
    raw_c = m.pixel_fn(zc, use_torch=False)  # neutral = 0
    m.config = dataclasses.replace(m.config, neutral=0.1)
    m._module = None
    assert np.allclose(m.pixel_fn(zc, use_torch=False), raw_c, atol=1e-6)


def test_shipped_model_does_not_solarise_beyond_its_range():
    """Densities beyond the range the network was trained on (a frame over-exposed against
    its roll's rendering) clip; the output never turns back down (solarised highlights)."""
    from station.model import load_model

    m = load_model()
    z = np.repeat(np.linspace(0.9, 2.0, 56, dtype=np.float32)[:, None], 3, axis=1)
    y = m.pixel_fn(z, use_torch=False).mean(axis=1)
    top = int(np.argmax(y))
    assert y[top:].min() > y[top] - 0.03, y[top:]  # at most a slight shoulder, never a turn-down
    assert np.ptp(y[-20:]) < 1e-6  # beyond the range: held
    zc = z * np.array([1.3, 1.0, 0.7], np.float32)  # a coloured highlight far out
    assert np.ptp(m.pixel_fn(zc[-10:], use_torch=False), axis=0).max() < 1e-6  # held: one colour
