"""`station invert --cluster` on a real Dask scheduler with two real workers on loopback
(issue 17): a worker killed with SIGKILL mid-batch costs only a retry of its frames —
every output exists once, the pixels are those of a local run, the manifest is complete;
and without dask installed `--cluster` is a usage error naming the install line."""
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile
from PIL import Image

from negatives import expose, grey_ramp, with_rebate, write_negative_dng

N = 10


def station(*args, **kw):
    return subprocess.run([sys.executable, "-m", "station", *map(str, args)], capture_output=True, text=True,
                          timeout=300, **kw)


def make_negs(d, n=N, h=400, w=600):
    d.mkdir()
    rng = np.random.default_rng(17)
    for i in range(n):
        scene = np.clip(grey_ramp(h, w) * rng.uniform(0.6, 1.0, 3), 0.01, 1).astype(np.float32)
        write_negative_dng(d / f"f{i:02d}.dng", with_rebate(expose(scene), border=30), seed=i)
    return d


def pixels(path):
    return tifffile.imread(path) if path.suffix == ".tif" else np.asarray(Image.open(path))


def assert_same_pixels(a_dir, b_dir, stems):
    for s in stems:
        for ext in (".tif", ".jpg"):
            assert np.array_equal(pixels(a_dir / f"{s}{ext}"), pixels(b_dir / f"{s}{ext}")), f"{s}{ext} differs"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, "the scheduler exited"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the scheduler did not start")


def test_cluster_survives_a_worker_killed_mid_batch(tmp_path):
    pytest.importorskip("distributed")
    negs = make_negs(tmp_path / "negs")
    stems = [f"f{i:02d}" for i in range(N)]
    # the reference: a local run in this process's way (one process)
    ref = tmp_path / "ref"
    r = station("invert", negs, "--out", ref, "--jobs", "1")
    assert r.returncode == 0, r.stderr
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, DASK_DISTRIBUTED__WORKER__DAEMON="False")
    procs = []
    logs = open(tmp_path / "dask.log", "wb")
    try:
        sched = subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard"], stdout=logs, stderr=logs, env=env)
        procs.append(sched)
        wait_port(port, sched)
        workers = [subprocess.Popen([sys.executable, "-m", "dask", "worker", address, "--nthreads", "1", "--no-nanny",
                                     "--host", "127.0.0.1", "--no-dashboard", "--name", f"w{i}"],
                                    stdout=logs, stderr=logs, env=env) for i in range(2)]
        procs += workers
        out = tmp_path / "out"
        manifest = tmp_path / "batch.jsonl"
        # the client waits for the two workers to register before it starts
        wait = subprocess.run([sys.executable, "-c", "import sys; from distributed import Client; "
                               "c = Client(sys.argv[1], timeout=60); c.wait_for_workers(2, timeout=120); c.close()",
                               address], capture_output=True, text=True, timeout=180)
        assert wait.returncode == 0, wait.stderr
        inv = subprocess.Popen([sys.executable, "-m", "station", "invert", negs, "--out", out,
                                "--cluster", address, "--manifest", manifest],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # kill -9 a worker mid-batch: the one writing a frame when we look (else the first), once
        # two frames are out
        pids = {w.pid: w for w in workers}
        victim, mid_write = None, False
        end = time.monotonic() + 240
        while time.monotonic() < end and inv.poll() is None:
            names = os.listdir(out) if out.exists() else []
            done = sum(1 for n in names if n.endswith(".jpg") and not n.startswith("."))
            writing = [int(n.split(".")[-2]) for n in names if n.startswith(".") and n.endswith(".part")]
            writing = [p for p in writing if p in pids]
            if done >= 2 and writing:
                victim, mid_write = pids[writing[0]], True
            elif done >= 4:
                victim = workers[0]
            if victim is not None:
                victim.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
        assert victim is not None, "the batch ended before a worker could be killed: make it longer"
        stdout, stderr = inv.communicate(timeout=300)
        assert victim.wait(timeout=30) == -signal.SIGKILL
        assert inv.returncode == 0, stderr
        assert f"{N} of {N} converted" in stderr or "already complete" in stderr, stderr
        # every output once: the frames' two files, nothing else (no duplicate, no temporary)
        assert sorted(os.listdir(out)) == sorted(f"{s}{e}" for s in stems for e in (".tif", ".jpg")), os.listdir(out)
        assert_same_pixels(ref, out, stems)
        records = [json.loads(line) for line in manifest.read_text().splitlines()]
        assert sorted(os.path.basename(r["input"]) for r in records) == [f"{s}.dng" for s in stems]
        for rec in records:
            assert rec["status"] in ("converted", "complete"), rec
            src = negs / os.path.basename(rec["input"])
            assert rec["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
            assert sorted(rec["outputs"]) == ["jpeg", "tiff"] and all(os.path.exists(p) for p in rec["outputs"].values())
        print(f"killed worker {victim.pid} {'while writing' if mid_write else 'mid-batch'}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        logs.close()


@pytest.mark.slow
def test_local_cluster_sending_the_outputs_back_matches_a_local_run(tmp_path):
    """local:N, with --send-back: the workers convert into folders of their own and the
    command publishes what they send (for an --out the workers cannot see)."""
    pytest.importorskip("distributed")
    negs = make_negs(tmp_path / "negs", n=3)
    stems = [f"f{i:02d}" for i in range(3)]
    assert station("invert", negs, "--out", tmp_path / "ref", "--jobs", "1").returncode == 0
    out = tmp_path / "lc"
    out.mkdir()
    (out / "f01.jpg").write_bytes((tmp_path / "ref" / "f01.jpg").read_bytes())  # a half frame: remade whole
    r = station("invert", negs, "--out", out, "--cluster", "local:2", "--send-back")
    assert r.returncode == 0, r.stderr
    assert "3 of 3 converted" in r.stderr and "cluster local:2" in r.stderr
    assert "INFO distributed" not in r.stderr  # the cluster's own log stays quiet without -v
    assert sorted(os.listdir(out)) == sorted(f"{s}{e}" for s in stems for e in (".tif", ".jpg"))
    assert_same_pixels(tmp_path / "ref", out, stems)
    r = station("invert", negs, "--out", out, "--send-back")
    assert r.returncode == 2 and "--send-back is for --cluster" in r.stderr


def test_without_dask_cluster_is_a_usage_error_naming_the_install(tmp_path):
    negs = make_negs(tmp_path / "negs", n=1)
    # dask distributed made unimportable in the child: as on an install without the extra
    code = ("import sys; sys.modules['distributed'] = None; from station.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    r = subprocess.run([sys.executable, "-c", code, "invert", str(negs), "--out", str(tmp_path / "out"),
                        "--cluster", "tcp://127.0.0.1:8786"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "pip install 'station[cluster]'" in r.stderr and "--cluster" in r.stderr
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")
    r = station("invert", negs, "--out", tmp_path / "out", "--cluster", "local:x")
    assert r.returncode == 2 and "local:N needs a number" in r.stderr
