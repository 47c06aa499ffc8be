"""`station bench --batch --json` on small generated frames: every mode ran and made every
frame (a positive frames/s), rawtherapee-cli's batch beside them when installed; no duration bounds."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bench_batch_json():
    pytest.importorskip("distributed")
    r = subprocess.run([sys.executable, "-m", "station", "bench", "--batch", "--json", "--sizes", "0.3",
                        "--frames", "4", "--jobs", "2", "--method", "classic"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["frames"] == 4 and out["jobs"] == 2
    names = ["1 job", "2 jobs", "local cluster (2 workers)"] + (["rawtherapee-cli batch"] if shutil.which("rawtherapee-cli") else [])
    assert sorted(out["modes"]) == sorted(names)
    for name in names:
        assert out["modes"][name]["frames_per_s"] > 0, (name, out["modes"][name])
    assert "1 job" in r.stderr and "frames/s" in r.stderr  # the table goes to stderr with --json
