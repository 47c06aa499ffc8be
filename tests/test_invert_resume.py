"""A frame's outputs appear together or not at all, and `station invert` resumes
(issue 14, item 8): killed mid-batch, the same command again finishes what is missing,
skips complete frames (not rewritten) and exits 0."""
import errno
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from negatives import expose, grey_ramp, with_rebate, write_negative_dng

N = 6


def station(*args):
    return subprocess.run([sys.executable, "-m", "station", *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture
def negs(tmp_path):
    d = tmp_path / "negs"
    d.mkdir()
    rng = np.random.default_rng(7)
    for i in range(N):
        scene = np.clip(grey_ramp(400, 600) * rng.uniform(0.6, 1.0, 3), 0.01, 1).astype(np.float32)
        write_negative_dng(d / f"f{i}.dng", with_rebate(expose(scene), border=30), seed=i)
    return d


def complete(out):
    return sorted(p.stem for p in out.glob("*.tif") if (out / f"{p.stem}.jpg").exists())


def test_killed_batch_resumes_without_rewriting(negs, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "station", "invert", negs, "--out", out, "--method", "classic"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + 240
        while time.monotonic() < end and len(complete(out) if out.exists() else []) < 2:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = complete(out)
    assert 2 <= len(done) < N, done  # killed mid-batch
    before = {p.name: p.stat().st_mtime_ns for s in done for p in (out / f"{s}.tif", out / f"{s}.jpg")}
    r = station("invert", negs, "--out", out, "--method", "classic")
    assert r.returncode == 0, r.stderr
    assert f"{len(done)} already complete (skipped)" in r.stderr
    assert complete(out) == [f"f{i}" for i in range(N)]
    assert {n: (out / n).stat().st_mtime_ns for n in before} == before  # complete frames not rewritten
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # the killed run's temporaries are gone
    # and once more: nothing to do, still exit 0
    r = station("invert", negs, "--out", out, "--method", "classic")
    assert r.returncode == 0 and f"0 of 0 converted, {N} already complete" in r.stderr


def test_half_frame_is_remade_whole_and_overwrite_replaces(negs, tmp_path):
    out = tmp_path / "out"
    src = negs / "f0.dng"
    assert station("invert", src, "--out", out, "--method", "classic").returncode == 0
    (out / "f0.jpg").unlink()  # what a run killed between the two outputs leaves
    tif_before = (out / "f0.tif").stat().st_mtime_ns
    r = station("invert", src, "--out", out, "--method", "classic")
    assert r.returncode == 0, r.stderr
    assert (out / "f0.jpg").exists() and (out / "f0.tif").stat().st_mtime_ns != tif_before  # remade together
    before = (out / "f0.tif").stat().st_mtime_ns
    r = station("invert", src, "--out", out, "--method", "classic", "--overwrite")
    assert r.returncode == 0 and "1 of 1 converted" in r.stderr
    assert (out / "f0.tif").stat().st_mtime_ns != before


def test_a_file_of_another_origin_is_never_replaced(negs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "f0.tif").write_bytes(b"someone else's file")
    r = station("invert", negs / "f0.dng", "--out", out, "--method", "classic")
    assert r.returncode == 1
    assert "f0.tif already exists and was not made from this input" in r.stderr
    assert (out / "f0.tif").read_bytes() == b"someone else's file" and not (out / "f0.jpg").exists()


def test_disk_full_before_the_jpeg_leaves_no_half_frame(tmp_path):
    """The TIFF is written, the JPEG's write fails (ENOSPC): neither is published."""
    from station.errors import OutputError
    from station.pipeline.write import publish_frame

    def full(fh):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OutputError, match="no space left") as info:
        publish_frame({"tiff": (tmp_path / "x.tif", lambda fh: fh.write(b"II*\x00data")),
                       "jpeg": (tmp_path / "x.jpg", full)})
    assert info.value.path == tmp_path / "x.jpg"
    assert list(tmp_path.iterdir()) == []  # no x.tif, no temporaries


def test_publish_refuses_before_writing_anything(tmp_path):
    from station.errors import OutputError
    from station.pipeline.write import publish_frame

    (tmp_path / "x.jpg").write_bytes(b"old")
    with pytest.raises(OutputError, match="already exists"):
        publish_frame({"tiff": (tmp_path / "x.tif", lambda fh: fh.write(b"new")),
                       "jpeg": (tmp_path / "x.jpg", lambda fh: fh.write(b"new"))})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.jpg"]


def test_ctrl_c_mid_batch_leaves_no_half_frame(negs, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "station", "invert", negs, "--out", out, "--method", "classic"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 240
        while time.monotonic() < end and len(complete(out) if out.exists() else []) < 1:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    if proc.returncode == 0:
        pytest.skip("the batch finished before the interrupt arrived")
    assert proc.returncode == 130, err
    assert "interrupted" in err and "run the same command again" in err
    stems = {p.stem for p in out.iterdir()}
    assert sorted(stems) == complete(out)  # every output present has its partner
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    r = station("invert", negs, "--out", out, "--method", "classic")
    assert r.returncode == 0 and complete(out) == [f"f{i}" for i in range(N)]


def test_rerun_with_another_print_remakes_instead_of_skipping(negs, tmp_path):
    """A re-run with other settings is not "the same command": the station's own outputs of
    each input are remade with the new print (a skip would leave the old look silently)."""
    from PIL import Image

    out = tmp_path / "out"
    one = negs / "f0.dng"
    r = station("invert", one, "--out", out, "--method", "classic")
    assert r.returncode == 0, r.stderr
    before = np.asarray(Image.open(out / "f0.jpg"), dtype=np.float32).mean()
    r = station("invert", one, "--out", out, "--method", "classic", "--exposure", "1")
    assert r.returncode == 0, r.stderr
    assert "already complete" not in r.stderr
    after = np.asarray(Image.open(out / "f0.jpg"), dtype=np.float32).mean()
    assert after > before + 10  # one stop brighter, not the old file
    r = station("invert", one, "--out", out, "--method", "classic", "--exposure", "1")
    assert r.returncode == 0 and "1 already complete (skipped)" in r.stderr, r.stderr
