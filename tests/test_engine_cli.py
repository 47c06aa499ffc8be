"""`station invert` as a user runs it: the contract, outputs, and every bad input."""
import os
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from PIL import Image

from negatives import expose, grey_ramp, with_rebate, write_negative_dng


def station(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "station", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=240)


@pytest.fixture
def negs(tmp_path):
    d = tmp_path / "negs"
    d.mkdir()
    rng = np.random.default_rng(3)
    for i in range(3):
        scene = np.clip(grey_ramp(160, 240) * rng.uniform(0.6, 1.0, 3), 0.01, 1).astype(np.float32)
        write_negative_dng(d / f"frame{i:02d}.dng", with_rebate(expose(scene), border=24), seed=i)
    return d


def test_contract_outputs_and_metadata(negs, tmp_path):
    out = tmp_path / "out"
    r = station("invert", negs / "frame00.dng", negs / "frame01.dng", "--out", out, "--method", "classic")
    assert r.returncode == 0, r.stderr
    assert "2 of 2 converted" in r.stderr
    for stem in ("frame00", "frame01"):
        tif = tifffile.TiffFile(out / f"{stem}.tif")
        page = tif.pages[0]
        assert page.dtype == np.uint16 and page.shape == (208, 288, 3)
        assert 34675 in page.tags  # ICC profile
        assert page.tags[271].value == "Station" and page.tags[272].value == "Test Negative"
        with Image.open(out / f"{stem}.jpg") as im:
            assert im.size == (288, 208)
            assert im.info.get("icc_profile")
            assert im.getexif()[271] == "Station"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_folder_input_and_format_choice(negs, tmp_path):
    out = tmp_path / "out"
    r = station("invert", negs, "--out", out, "--format", "jpeg", "--method", "classic")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["frame00.jpg", "frame01.jpg", "frame02.jpg"]


def test_no_overwrite_unless_asked(negs, tmp_path):
    out = tmp_path / "out"
    assert station("invert", negs / "frame00.dng", "--out", out, "--method", "classic").returncode == 0
    before = (out / "frame00.tif").stat().st_mtime_ns
    r = station("invert", negs / "frame00.dng", "--out", out, "--method", "classic")
    assert r.returncode == 0 and "1 already complete (skipped)" in r.stderr  # the same frame again: done
    assert (out / "frame00.tif").stat().st_mtime_ns == before
    assert station("invert", negs / "frame02.dng", "--out", out, "--method", "classic").returncode == 0
    (out / "frame02.tif").replace(out / "frame00.tif")  # frame00.tif now made from another input
    before = (out / "frame00.tif").stat().st_mtime_ns
    r = station("invert", negs / "frame00.dng", "--out", out, "--method", "classic")
    assert r.returncode == 1
    assert "already exists" in r.stderr and "frame00.tif" in r.stderr
    assert (out / "frame00.tif").stat().st_mtime_ns == before
    r = station("invert", negs / "frame00.dng", "--out", out, "--method", "classic", "--overwrite")
    assert r.returncode == 0, r.stderr


def test_bad_inputs_are_named_and_the_rest_converts(negs, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.NEF").write_bytes(b"")
    (bad / "notes.dng").write_text("not an image at all\n" * 20)
    good = (negs / "frame00.dng").read_bytes()
    (bad / "cut.dng").write_bytes(good[: len(good) // 4])
    originals = {p.name: p.read_bytes() for p in bad.iterdir()}
    out = tmp_path / "out"
    r = station("invert", negs / "frame01.dng", bad / "empty.NEF", bad / "notes.dng", bad / "cut.dng",
                tmp_path / "missing.dng", "--out", out, "--method", "classic")
    assert r.returncode == 1
    err = r.stderr
    assert "empty.NEF: file is empty" in err
    assert "notes.dng:" in err and "cut.dng:" in err
    assert "missing.dng: no such file" in err
    assert "1 of 5 converted, 4 failed" in err
    assert (out / "frame01.tif").exists()
    assert sorted(p.name for p in out.iterdir()) == ["frame01.jpg", "frame01.tif"]  # nothing half-written
    assert {p.name: p.read_bytes() for p in bad.iterdir()} == originals  # originals untouched


def test_unwritable_output_folder_is_a_usage_error(negs, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    r = station("invert", negs / "frame00.dng", "--out", blocker / "out", "--method", "classic")
    assert r.returncode == 2
    assert "--out" in r.stderr and "a-file" in r.stderr
    r = station("invert", negs / "frame00.dng", "--out", "/proc/station-out", "--method", "classic")
    assert r.returncode == 2


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not a model", os.urandom(4096)])
def test_corrupt_model_file_is_a_usage_error(negs, tmp_path, content):
    model = tmp_path / "model.npz"
    model.write_bytes(content)
    r = station("invert", negs / "frame00.dng", "--out", tmp_path / "out", "--method", "mlp", "--model", model)
    assert r.returncode == 2
    assert "model.npz" in r.stderr
    assert not (tmp_path / "out" / "frame00.tif").exists()


def test_blank_frame_base_option(negs, tmp_path):
    from negatives import BASE_DENSITY, LIGHT

    blank = np.tile((LIGHT * 10.0 ** -BASE_DENSITY).astype(np.float32), (120, 160, 1))
    write_negative_dng(tmp_path / "blank.dng", blank)
    r = station("invert", negs / "frame00.dng", "--out", tmp_path / "out", "--base", tmp_path / "blank.dng", "--method", "classic")
    assert r.returncode == 0, r.stderr
    desc = tifffile.TiffFile(tmp_path / "out" / "frame00.tif").pages[0].description
    assert '"station_base_source": "blank frame"' in desc
    r = station("invert", negs / "frame00.dng", "--out", tmp_path / "out2", "--base", tmp_path / "nope.dng")
    assert r.returncode == 2 and "nope.dng" in r.stderr


def test_real_raw_samples_convert(shared_dir, tmp_path):
    raws = sorted((shared_dir / "samples" / "raw").iterdir())
    r = station("invert", *raws, "--out", tmp_path / "out", "--method", "classic", "--format", "jpeg")
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "out").glob("*.jpg"))) == len(raws)
