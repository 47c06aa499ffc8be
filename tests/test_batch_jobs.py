"""`station invert --jobs N` (issue 17): worker processes give the pixels of a one-process
run; the parent killed mid-batch (SIGKILL) leaves no worker writing behind it and the same
command then finishes (exit 0, complete frames not rewritten); a worker killed mid-batch
costs a retry of its frame; --roll analyses once and converts in parallel; the manifest
records every frame."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from test_batch_cluster import assert_same_pixels, make_negs

N = 8
STEMS = [f"f{i:02d}" for i in range(N)]


def station(*args):
    return subprocess.run([sys.executable, "-m", "station", *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def negs(tmp_path_factory):
    return make_negs(tmp_path_factory.mktemp("batch") / "negs", n=N)


@pytest.fixture(scope="module")
def reference(negs, tmp_path_factory):
    """The frames converted in one process (--jobs 1)."""
    out = tmp_path_factory.mktemp("batch") / "one"
    r = station("invert", negs, "--out", out, "--jobs", "1")
    assert r.returncode == 0 and f"{N} of {N} converted" in r.stderr, r.stderr
    return out


def complete(out):
    return sorted(p.stem for p in out.glob("*.tif") if (out / f"{p.stem}.jpg").exists())


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            kids = [int(x) for x in fh.read().split()]
    except OSError:
        return []
    out = []
    for k in kids:
        try:
            with open(f"/proc/{k}/cmdline", "rb") as fh:
                if b"spawn_main" in fh.read():
                    out.append(k)
        except OSError:
            pass
    return out


@pytest.mark.slow
def test_jobs_match_one_process_and_the_manifest_records_every_frame(negs, reference, tmp_path):
    one, two = reference, tmp_path / "two"
    manifest = tmp_path / "m.jsonl"
    r = station("invert", negs, "--out", two, "--jobs", "2", "--manifest", manifest)
    assert r.returncode == 0 and f"{N} of {N} converted" in r.stderr and "2 workers" in r.stderr, r.stderr
    assert_same_pixels(one, two, STEMS)
    recs = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert sorted(os.path.basename(r["input"]) for r in recs) == [f"{s}.dng" for s in STEMS]
    for rec in recs:
        assert rec["status"] == "converted" and rec["rendering"] is None
        assert rec["sha256"] == hashlib.sha256(open(rec["input"], "rb").read()).hexdigest()
        assert rec["outputs"] == {"tiff": str(two / (os.path.basename(rec["input"])[:-4] + ".tif")),
                                  "jpeg": str(two / (os.path.basename(rec["input"])[:-4] + ".jpg"))}
    # again: nothing to do, the manifest rewritten whole with every frame complete
    r = station("invert", negs, "--out", two, "--jobs", "2", "--manifest", manifest)
    assert r.returncode == 0 and f"{N} already complete" in r.stderr, r.stderr
    recs = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert len(recs) == N and {r["status"] for r in recs} == {"complete"} and all(r["sha256"] for r in recs)


@pytest.mark.slow
def test_roll_is_analysed_once_and_converted_in_parallel(negs, tmp_path):
    r1 = station("invert", negs, "--out", tmp_path / "one", "--roll", "--jobs", "1")
    assert r1.returncode == 0, r1.stderr
    manifest = tmp_path / "m.jsonl"
    r2 = station("invert", negs, "--out", tmp_path / "two", "--roll", "--jobs", "2", "--manifest", manifest)
    assert r2.returncode == 0 and "2 workers" in r2.stderr, r2.stderr
    assert r2.stderr.count("roll: ") == 1  # one analysis, in the parent
    assert_same_pixels(tmp_path / "one", tmp_path / "two", STEMS)
    rid = r2.stderr.split("rendering ")[1].split()[0]
    assert {json.loads(line)["rendering"] for line in manifest.read_text().splitlines()} == {rid}


def test_killed_jobs_batch_resumes_without_rewriting(negs, reference, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "station", "invert", negs, "--out", out, "--jobs", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + 240
        while time.monotonic() < end and len(complete(out) if out.exists() else []) < 2:
            time.sleep(0.01)
        workers = children(proc.pid)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert len(workers) == 2
    deadline = time.monotonic() + 10  # the workers die with their parent (they would keep writing)
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{w}") and
                                              open(f"/proc/{w}/stat").read().split()[2] != "Z" for w in workers):
        time.sleep(0.05)
    assert not [w for w in workers if os.path.exists(f"/proc/{w}") and open(f"/proc/{w}/stat").read().split()[2] != "Z"]
    done = complete(out)
    assert 2 <= len(done) < N, done  # killed mid-batch
    before = {p.name: p.stat().st_mtime_ns for s in done for p in (out / f"{s}.tif", out / f"{s}.jpg")}
    manifest = tmp_path / "m.jsonl"
    r = station("invert", negs, "--out", out, "--jobs", "2", "--manifest", manifest)
    assert r.returncode == 0, r.stderr
    assert f"{N - len(done)} of {N - len(done)} converted, {len(done)} already complete (skipped)" in r.stderr
    assert complete(out) == STEMS
    assert {n: (out / n).stat().st_mtime_ns for n in before} == before  # complete frames not rewritten
    assert sorted(os.listdir(out)) == sorted(f"{s}{e}" for s in STEMS for e in (".tif", ".jpg"))  # no temporaries
    assert_same_pixels(reference, out, STEMS)  # workers and a resumed run: the pixels of one process
    recs = {os.path.basename(r["input"])[:-4]: r["status"] for r in map(json.loads, manifest.read_text().splitlines())}
    assert recs == {s: "complete" if s in done else "converted" for s in STEMS}


@pytest.mark.slow
def test_a_worker_killed_mid_batch_costs_a_retry_of_its_frame(negs, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "station", "invert", negs, "--out", out, "--jobs", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    killed = None
    end = time.monotonic() + 240
    while time.monotonic() < end and proc.poll() is None and killed is None:
        if out.exists() and len(complete(out)) >= 1:
            workers = children(proc.pid)
            writing = [int(n.split(".")[-2]) for n in os.listdir(out) if n.endswith(".part")]
            target = [w for w in workers if w in writing] or workers[:1]
            if target:
                os.kill(target[0], signal.SIGKILL)
                killed = target[0]
        time.sleep(0.005)
    _, stderr = proc.communicate(timeout=300)
    assert killed is not None
    assert proc.returncode == 0, stderr
    assert f"{N} of {N} converted" in stderr or "already complete" in stderr, stderr
    assert sorted(os.listdir(out)) == sorted(f"{s}{e}" for s in STEMS for e in (".tif", ".jpg"))


def test_progress_lines_when_not_a_terminal(monkeypatch):
    import io

    from station.batch import runner

    monkeypatch.setattr(runner, "PROGRESS_EVERY", 0.0)
    s = io.StringIO()
    p = runner.Progress(3, stream=s)
    for name in ("a", "b", "c"):
        p.step(name)
    p.close()
    lines = s.getvalue().splitlines()
    assert lines[0].startswith("progress: 1/3 frames, ") and "frames/s, ETA" in lines[0]
    assert len(lines) == 2  # none for the last frame: the summary line follows
