"""Fine-tuning the shipped model on a few pairs of another 'lab look' improves on that look."""
import numpy as np
import pytest

from station.cli import main
from station.model import film, load_model
from station.model.metrics import ciede2000
from station.model.training import Frame, TrainConfig, fit, generated_frames


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def lab_look(srgb):
    """Another lab's rendering of the same scene: warmer and more contrasty."""
    lin = film.srgb_decode(np.asarray(srgb, np.float64)) * np.array([1.08, 1.0, 0.84])
    v = film.srgb_encode(lin)
    return np.clip(v + 0.35 * (v - 0.5) * (1 - np.abs(2 * v - 1)), 0, 1).astype(np.float32)


def look_frames(n, seed):
    """One lab, one stock (a roll of Portra 400), random scenes, exposures, scanning set-ups."""
    return [Frame(f.D, lab_look(f.positive), None, f.name)
            for f in generated_frames(n, seed=seed, size=80, stocks=("kodak_portra_400",))]


def mean_de(inv, frames):
    return float(np.mean([ciede2000(inv(f.D), f.positive).mean() for f in frames]))


def test_fine_tuning_the_default_learns_the_look_without_washing_out():
    """12 pairs of one roll with the lab's look; judged on 8 other frames of the look."""
    default = load_model()
    train, val, test = look_frames(12, 11), look_frames(3, 12), look_frames(8, 13)
    cfg = TrainConfig(init=default, epochs=12, patience=4, lr=1e-3, pixels_per_frame=3000, batch=1024)
    tuned, hist = fit(train, val, cfg, progress=False)
    assert tuned.config == default.config and tuned.norm.to_dict() == default.norm.to_dict()
    before, after = mean_de(default, test), mean_de(tuned, test)
    assert after < before - 0.5, (before, after)       # better on unseen pairs of the look
    # and still a sane inversion of the scene itself (not washed out): within reach of the default
    plain = generated_frames(3, seed=14, size=80)
    assert mean_de(tuned, plain) < mean_de(default, plain) + 4.0


def test_fine_tuning_keeps_the_initial_model_when_it_cannot_improve():
    default = load_model()
    frames = generated_frames(3, seed=21, size=64)
    cfg = TrainConfig(init=default, epochs=2, patience=1, lr=1e-9, pixels_per_frame=500)
    tuned, hist = fit(frames[:2], frames[2:], cfg, progress=False)
    for k, v in default.weights.items():
        np.testing.assert_allclose(tuned.weights[k], v, atol=1e-6)


def test_train_init_default_command(tmp_path):
    import tifffile
    for i, f in enumerate(film.generate_pairs(3, seed=31, size=64)):
        (tmp_path / "p" / "negatives").mkdir(parents=True, exist_ok=True)
        (tmp_path / "p" / "positives").mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(tmp_path / "p" / "negatives" / f"f{i}.tif", (f.camera_rgb * 65535).astype(np.uint16))
        tifffile.imwrite(tmp_path / "p" / "positives" / f"f{i}.tif", (lab_look(f.positive) * 65535).astype(np.uint16))
    out = tmp_path / "tuned.npz"
    rc = main(["train", "--pairs", str(tmp_path / "p"), "--init", "default", "--no-register", "--epochs", "2",
               "--pixels-per-frame", "500", "--no-progress", "--out", str(out)])
    assert rc == 0
    m = load_model(out)
    assert m.config == load_model().config and m.meta["training"]["init"].endswith("default.npz")
    assert main(["train", "--pairs", str(tmp_path / "p"), "--init", str(tmp_path / "nope.npz"),
                 "--out", str(tmp_path / "x.npz")]) == 2
    assert not (tmp_path / "x.npz").exists()


def test_warm_start_on_a_re_anchored_input(tmp_path):
    """`--init default --anchor A --init-pull 0`: the default's weights as the start, its
    normaliser re-anchored (how the shipped model was remade with anchor 0.5)."""
    out = tmp_path / "warm.npz"
    rc = main(["train", "--generate", "6", "--size", "48", "--init", "default", "--anchor", "0.5", "--init-pull", "0",
               "--epochs", "1", "--pixels-per-frame", "300", "--no-progress", "--out", str(out)])
    assert rc == 0
    m = load_model(out)
    assert m.norm.kind == "base" and m.norm.anchor == 0.5 and m.config == load_model().config
    assert main(["train", "--generate", "6", "--size", "48", "--init", "default", "--anchor", "1.5",
                 "--out", str(tmp_path / "x.npz")]) == 2
    assert not (tmp_path / "x.npz").exists()
