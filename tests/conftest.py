"""Shared fixtures: small negative DNGs and a real daemon in a subprocess."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))  # tests/negatives.py and other helpers

SHARED = TESTS.parent.parent / "shared"


@pytest.fixture
def torch_one_thread():
    """torch on one thread for the test (the model tests: steadier on a shared machine), then
    as it was.  Use: pytestmark = pytest.mark.usefixtures("torch_one_thread")."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def shared_dir() -> Path:
    if not (SHARED / "samples").is_dir():
        pytest.skip(f"{SHARED} is absent: the real RAW samples are not available here")
    return SHARED


def negative_cfa(h: int = 400, w: int = 600, seed: int = 0) -> np.ndarray:
    """A Bayer mosaic of a colour negative: orange base rebate + inverted gradients inside."""
    from station.io.dng import mosaic

    rng = np.random.default_rng(seed)
    base = np.array([0.80, 0.45, 0.25], dtype=np.float32)  # orange mask, linear
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    scene = np.stack([xx / w, yy / h, 0.5 + 0.4 * np.sin((xx + yy) / (40 + 5 * seed))], axis=2)
    scene = np.clip(scene + rng.normal(0, 0.01, scene.shape), 0.02, 0.98)
    dens = 0.2 + 1.6 * scene  # positive-bright → dense negative
    img = base * 10.0 ** (-dens)
    b = max(8, h // 12)
    img[:b], img[-b:], img[:, :b], img[:, -b:] = base, base, base, base
    return (np.clip(mosaic(img.astype(np.float32)), 0, 1) * 60000).astype(np.uint16)


def write_negative(path, h=400, w=600, seed=0) -> Path:
    from station.io.dng import write_bayer_dng

    return write_bayer_dng(path, negative_cfa(h, w, seed))


def negative_bytes(tmp_dir: Path, seed: int = 0, h=400, w=600) -> bytes:
    p = Path(tmp_dir) / f".gen-{seed}-{h}x{w}.dng"
    if not p.exists():
        write_negative(p, h, w, seed)
    return p.read_bytes()


@pytest.fixture(scope="session")
def dng_bytes(tmp_path_factory):
    """Bytes of a few different small negative DNGs: dng_bytes(i)."""
    d = tmp_path_factory.mktemp("dngs")
    cache = {}

    def get(i: int = 0) -> bytes:
        if i not in cache:
            cache[i] = negative_bytes(d, i % 4)
        return cache[i]

    return get


class Daemon:
    """`python -m station run ...` on temporary folders."""

    def __init__(self, root: Path, env_extra: dict | None = None, extra_args=(), config: dict | None = None):
        self.root = root
        self.incoming = root / "incoming"
        self.output = root / "output"
        self.state = root / "state"
        for d in (self.incoming, self.output, self.state):
            d.mkdir(exist_ok=True)
        self.log_path = root / "daemon.log"
        self.env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        self.env.pop("NOTIFY_SOCKET", None)
        self.env.pop("STATION_CONFIG", None)
        self.env.update(env_extra or {})
        self.config_path = None
        if config is not None:
            import yaml

            self.config_path = root / "station.yaml"
            self.config_path.write_text(yaml.safe_dump(config))
        self.extra_args = list(extra_args)
        self.proc = None

    def args(self):
        a = [sys.executable, "-m", "station", "run", "--incoming", str(self.incoming), "--output", str(self.output),
             "--state", str(self.state), "--web", "off"]
        if self.config_path:
            a += ["--config", str(self.config_path)]
        return a + self.extra_args

    def start(self, wait_ready: bool = True):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args(), env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=str(self.root))
        if wait_ready:
            self.wait_for(lambda: "ready:" in self.log_text(), 90, "daemon ready")
        return self

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for(self, cond, timeout=60.0, what="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = cond()
            if v:
                return v
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"daemon exited ({self.proc.returncode}) waiting for {what}:\n{self.log_text()[-4000:]}")
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log_text()[-4000:]}")

    def status(self) -> dict:
        out = subprocess.run([sys.executable, "-m", "station", "status", "--json", "--state", str(self.state)],
                             env=self.env, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def frames(self) -> dict:
        """path -> journal row, read straight from the SQLite file."""
        import sqlite3

        db = sqlite3.connect(str(self.state / "journal.sqlite"), timeout=10)
        db.row_factory = sqlite3.Row
        try:
            return {r["path"]: dict(r) for r in db.execute("SELECT * FROM frames")}
        finally:
            db.close()

    def outputs(self, suffix: str) -> list[Path]:
        return sorted(p for p in self.output.rglob("*" + suffix) if not p.name.startswith("."))

    def done(self, names, states=("master_written",)) -> bool:
        fr = self.frames() if (self.state / "journal.sqlite").exists() else {}
        return all(fr.get(n, {}).get("state") in states for n in names)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if getattr(self, "log", None):
            self.log.close()
        return self.proc.returncode if self.proc else None


@pytest.fixture
def daemon_factory(tmp_path):
    made = []

    def make(**kw):
        d = Daemon(tmp_path, **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop(signal.SIGKILL if d.proc and d.proc.poll() is None else signal.SIGTERM)


class Ran:
    """What `station ...` run in this process gave: its exit status and what it wrote to stderr."""

    def __init__(self, returncode: int, stderr: str):
        self.returncode, self.stderr = returncode, stderr


@pytest.fixture
def cli(capsys):
    """`station ...` in this process (the same entry point, without a fresh interpreter)."""
    from station.cli import main

    def run(*args):
        capsys.readouterr()
        code = main([str(a) for a in args])
        return Ran(code, capsys.readouterr().err)

    return run
