"""Metrics and the evaluation table."""
import numpy as np

from station.model import evaluate as ev
from station.model import metrics as m


def test_ciede2000_identical_zero_and_positive_otherwise():
    rng = np.random.default_rng(0)
    a = rng.random((8, 8, 3))
    assert np.allclose(m.ciede2000(a, a), 0)
    b = np.clip(a + 0.1, 0, 1)
    assert m.ciede2000(a, b).mean() > 1


def test_r2_psnr():
    rng = np.random.default_rng(1)
    t = rng.random((100, 3))
    assert m.r2(t, t) == 1.0
    assert m.r2(np.tile(t.mean(0), (100, 1)), t) == 0.0
    assert m.psnr(t + 0.1, t) == np.float64(20.0) or abs(m.psnr(t + 0.1, t) - 20.0) < 1e-9


def test_chroma_and_hue():
    assert m.chroma(np.array([[0.5, 0.5, 0.5]]))[0] < 0.01
    assert m.chroma(np.array([[1.0, 0.0, 0.0]]))[0] > 80
    red, orange = np.array([[0.8, 0.1, 0.1]]), np.array([[0.8, 0.4, 0.1]])
    assert m.hue_error_deg(red, red)[0] < 1e-6
    assert 10 < m.hue_error_deg(red, orange)[0] < 60


def test_naive_inversion_and_table():
    D = np.zeros((2, 2, 3), np.float32)
    assert np.allclose(ev.naive_invert(D), 0)          # base -> black
    tab = ev.format_table({"mlp": {"r2": 0.97, "de_mean": 1, "de_p95": 2, "grey_C": 1, "hue_err": 3, "scan_dE": 0.5},
                           "classic": None})
    assert "| classic | n/a" in tab and "0.970" in tab


def test_evaluate_method_perfect_inverter():
    frames = ev.eval_frames(("kodak_ultramax_400",), 1, 160, seed=5)
    f = frames[0]
    lookup = {id(f.D): f.positive}
    res = ev.evaluate_method(lambda D: lookup.get(id(D), f.positive), frames)
    assert res["r2"] == 1.0 and res["de_mean"] < 1e-6 and res["hue_err"] < 1e-6
    assert res["grey_C"] < 0.5           # the ground truth of the ramp is neutral


def test_evaluate_command_table(tmp_path, capsys):
    import json

    import torch

    from station.cli import main
    from station.model import MLPInverter, save_model
    from station.model.mlp import MLPConfig, make_module
    from station.model.normalise import Normaliser
    torch.manual_seed(0)
    cfg = MLPConfig(8, 1)
    p = save_model(tmp_path / "m.npz", MLPInverter(cfg, make_module(cfg).export(), Normaliser()))
    rc = main(["evaluate", "--model", str(p), "--stocks", "kodak_ultramax_400", "--scenes", "1", "--size", "160",
               "--json", str(tmp_path / "r.json")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "| mlp |" in out and "| naive 1−x |" in out and "| classic |" in out
    r = json.loads((tmp_path / "r.json").read_text())
    assert set(r["generated"]["mlp"]) >= {"r2", "de_mean", "de_p95", "grey_C", "hue_err", "scan_dE"}
    assert main(["evaluate", "--model", str(tmp_path / "missing.npz")]) == 2
    assert main(["evaluate", "--model", str(p), "--stocks", "no_such_film"]) == 2
