"""Training: a tiny run learns, the command writes one file or none."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.transform import SimilarityTransform, warp

from station.cli import main
from station.model import film, load_model
from station.model.mlp import MLPConfig
from station.model.normalise import N_FEATURES, Normaliser
from station.model.training import Frame, TrainConfig, TrainingError, find_pairs, fit, generated_frames, train


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_tiny_training_improves_and_roundtrips(tmp_path):
    frames = generated_frames(8, seed=3, size=64)
    cfg = TrainConfig(mlp=MLPConfig(16, 2), normaliser=Normaliser("percentile"), epochs=6, pixels_per_frame=1500,
                      batch=256, patience=10)
    inv, rep = train(frames, cfg, progress=False)
    assert rep["best_val_mse"] < 0.3 * rep["initial_val_mse"]
    assert rep["val"]["r2"] > 0.3
    from station.model import save_model
    p = save_model(tmp_path / "tiny.npz", inv, rep)
    back = load_model(p)
    np.testing.assert_allclose(back(frames[0].D), inv(frames[0].D), atol=1e-6)


def test_learned_normaliser_trains():
    frames = generated_frames(10, seed=4, size=64)
    cfg = TrainConfig(mlp=MLPConfig(8, 1), normaliser=Normaliser("learned"), epochs=2, pixels_per_frame=500)
    inv, rep = train(frames, cfg, progress=False)
    assert inv.norm.kind == "learned" and inv.norm.weights.shape == (N_FEATURES, 6)


def test_nan_loss_is_an_error():
    frames = generated_frames(4, seed=1, size=48)
    frames = [Frame(f.D, np.full_like(f.positive, np.nan), None, f.name) for f in frames]
    with pytest.raises(TrainingError, match="loss"):
        fit(frames[:3], frames[3:], TrainConfig(mlp=MLPConfig(8, 1), epochs=2, pixels_per_frame=200), progress=False)


def _save(path: Path, arr, bits=8):
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.clip(arr, 0, 1)
    if bits == 16:
        import tifffile
        tifffile.imwrite(path, (a * 65535).astype(np.uint16))
    else:
        Image.fromarray((a * 255).round().astype(np.uint8)).save(path)


def make_pair_folder(root: Path, n=3, moved=True):
    rng = np.random.default_rng(0)
    for i in range(n):
        img = film.photo(["astronaut", "coffee", "chelsea"][i % 3], 200, rng)
        s = film.simulate(img, stock="kodak_portra_400", seed=i)
        pos = s.positive
        if moved:   # a lab scan: slightly rotated, scaled, cropped
            t = SimilarityTransform(rotation=np.radians(rng.uniform(-3, 3)), scale=rng.uniform(1.0, 1.1),
                                    translation=(rng.uniform(-8, 0), rng.uniform(-8, 0)))
            pos = warp(pos, t.inverse, output_shape=(190, 195), order=1)
        _save(root / "negatives" / f"f{i}.tif", s.camera_rgb, bits=16)
        _save(root / "positives" / f"f{i}.png", pos)
    return root


def test_train_command_on_moved_pairs(tmp_path):
    folder = make_pair_folder(tmp_path / "pairs")
    out = tmp_path / "m.npz"
    rc = main(["train", "--pairs", str(folder), "--out", str(out), "--epochs", "2", "--width", "8", "--depth", "1",
               "--pixels-per-frame", "500", "--normaliser", "percentile", "--no-progress"])
    assert rc == 0 and out.is_file()
    m = load_model(out)
    assert m.meta["training"]["sources"]["pairs"]["count"] == 3


def test_train_command_generated(tmp_path):
    out = tmp_path / "g.npz"
    rc = main(["train", "--generate", "6", "--size", "48", "--out", str(out), "--epochs", "1", "--width", "8",
               "--depth", "1", "--pixels-per-frame", "300", "--no-progress"])
    assert rc == 0 and load_model(out).config.width == 8
    # refuses to overwrite
    assert main(["train", "--generate", "6", "--out", str(out)]) == 2


def test_bad_pair_folders_write_nothing(tmp_path, capsys):
    out = tmp_path / "x.npz"
    one = make_pair_folder(tmp_path / "one", n=1, moved=False)
    assert main(["train", "--pairs", str(one), "--out", str(out), "--no-progress"]) == 1
    assert "at least 2" in capsys.readouterr().err
    mism = make_pair_folder(tmp_path / "mism", n=2, moved=False)
    (mism / "positives" / "f1.png").unlink()
    assert main(["train", "--pairs", str(mism), "--out", str(out), "--no-progress"]) == 1
    assert "matching names" in capsys.readouterr().err
    # a pair that does not register
    bad = make_pair_folder(tmp_path / "bad", n=2, moved=False)
    _save(bad / "positives" / "f1.png", np.random.default_rng(0).random((150, 170, 3)))
    assert main(["train", "--pairs", str(bad), "--out", str(out), "--no-progress"]) == 1
    assert "register" in capsys.readouterr().err
    assert main(["train", "--out", str(out)]) == 2
    assert not out.exists()
    assert not list(tmp_path.glob("**/.x.npz*"))


def test_find_pairs_paper_layout(tmp_path):
    for d in ("Original_resized", "Inverted_resized"):
        for i in range(2):
            _save(tmp_path / d / f"{i}.jpg", np.zeros((8, 8, 3)))
    assert len(find_pairs(tmp_path)) == 2
    with pytest.raises(TrainingError):
        find_pairs(tmp_path / "Original_resized")


def test_evaluate_on_user_pairs(tmp_path, capsys):
    folder = make_pair_folder(tmp_path / "pairs", n=2, moved=False)
    rc = main(["evaluate", "--stocks", "kodak_ultramax_400", "--scenes", "1", "--size", "160", "--pairs", str(folder)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "user pairs (2 from" in out and "PSNR" in out
