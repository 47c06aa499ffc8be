"""`station bench --json` on a small generated DNG: the keys and sane (positive) numbers, no duration bounds."""
from __future__ import annotations

import json
import shutil

import pytest

from station.cli import main
from station.commands import bench
from station.io.dng import write_bayer_dng


@pytest.fixture
def small_dng(tmp_path):
    return write_bayer_dng(tmp_path / "small.dng", bench.synth_negative_cfa(480, 320, seed=3))


def _run(argv, capsys):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_bench_json_on_a_file(small_dng, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)  # peers absent: skipped cleanly
    out = _run(["bench", str(small_dng), "--json", "--runs", "2", "--method", "classic"], capsys)
    for key in ("preview_s", "master_s", "peak_rss_mb"):
        assert isinstance(out[key], float) and out[key] > 0, key
    assert "rawtherapee_s" not in out and "darktable_s" not in out
    f = out["files"][0]
    for kind in ("preview", "master"):
        for stage in ("read", "decode", "normalise", "invert", "write", "total"):
            assert f[kind][stage] > 0, (kind, stage)
        assert f[kind]["total"] >= f[kind]["decode"]
    assert f["megapixels"] == pytest.approx(0.15, abs=0.01)


def test_bench_generates_dngs(capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    out = _run(["bench", "--json", "--sizes", "0.2", "--runs", "1", "--method", "classic"], capsys)
    assert out["preview_s"] > 0 and out["master_s"] > 0 and len(out["files"]) == 1
    assert out["files"][0]["megapixels"] == pytest.approx(0.2, abs=0.02)


def test_bench_table_and_bad_input(small_dng, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["bench", str(small_dng), "--runs", "1", "--method", "classic"]) == 0
    text = capsys.readouterr().out
    assert "preview" in text and "master" in text and "not run" in text
    assert main(["bench", str(tmp_path / "missing.dng")]) == 2


@pytest.mark.skipif(not (shutil.which("rawtherapee-cli") or shutil.which("darktable-cli")),
                    reason="neither rawtherapee-cli nor darktable-cli installed")
def test_bench_runs_installed_peers(small_dng, capsys):
    out = _run(["bench", str(small_dng), "--json", "--runs", "1", "--peer-runs", "1", "--method", "classic"], capsys)
    f = out["files"][0]
    for name, exe in (("rawtherapee", "rawtherapee-cli"), ("darktable", "darktable-cli")):
        if shutil.which(exe):
            assert "error" not in f[name], f[name]
            assert out[f"{name}_s"] > 0
