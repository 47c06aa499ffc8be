"""Start-up checks of the real daemon (issue 14, item 7 and two Low items): a model or base
file that cannot be used stops `station run` with exit 2 naming the key, before "ready";
`--workers` beyond the CPU cores is capped with one line; `station status | head` ends
quietly."""
import os
import subprocess
import sys

import pytest

from conftest import negative_bytes


def _run_until_exit(d, timeout=120):
    d.start(wait_ready=False)
    d.proc.wait(timeout)
    d.log.close()
    return d.proc.returncode, d.log_text()


@pytest.mark.parametrize("key,name,content", [
    ("model", "bad.npz", b"this is not a model file\n" * 20),
    ("base", "notaraw.NEF", b"hello, I am a text file renamed .NEF\n" * 40),
])
def test_unusable_model_or_base_stops_the_daemon_with_exit_2(daemon_factory, tmp_path, key, name, content):
    bad = tmp_path / name
    bad.write_bytes(content)
    inv = {"method": "mlp", key: str(bad)} if key == "model" else {"method": "classic", key: str(bad)}
    d = daemon_factory(config={"inversion": inv})
    rc, log = _run_until_exit(d)
    assert rc == 2, log
    assert f"config: inversion.{key}:" in log and name in log, log
    assert "ready" not in log, log
    assert "Traceback" not in log, log
    problems = [ln for ln in log.splitlines() if ln.strip() and not ln.startswith("INFO ")]
    assert len(problems) == 1 and problems[0].startswith("station: config: "), log  # one line


def test_good_base_file_starts(daemon_factory, tmp_path):
    from station.capture.samples import blank_dng_bytes

    base = tmp_path / "blank.dng"
    base.write_bytes(blank_dng_bytes())  # a blank: developed, unexposed film
    d = daemon_factory(config={"inversion": {"method": "classic", "base": str(base)}, "workers": {"count": 1}})
    d.start()
    assert d.stop() == 0


def test_a_picture_as_base_file_stops_the_start_with_the_reason(daemon_factory, tmp_path):
    base = tmp_path / "blank.dng"
    base.write_bytes(negative_bytes(tmp_path, 0))  # a picture, not a blank
    d = daemon_factory(config={"inversion": {"method": "classic", "base": str(base)}, "workers": {"count": 1}})
    d.start(wait_ready=False)
    d.wait_for(lambda: d.proc.poll() is not None, 90, "the daemon to stop")
    assert d.proc.returncode == 2
    assert "inversion.base" in d.log_text() and "not a blank frame" in d.log_text()


def test_workers_beyond_the_cores_are_capped_and_status_into_a_closed_pipe_is_quiet(daemon_factory):
    cores = len(os.sched_getaffinity(0))
    d = daemon_factory(extra_args=["--workers", "64"])
    d.start()
    try:
        want = max(2, min(64, cores))
        assert len(d.status()["workers"]) == want
        log = d.log_text()
        if cores < 64:
            lines = [ln for ln in log.splitlines() if "--workers 64" in ln]
            assert len(lines) == 1 and f"{want} workers" in lines[0] and "core" in lines[0], log
        # `station status | head -0`: the reader is gone before the first line is written
        r, w = os.pipe()
        os.close(r)
        p = subprocess.run([sys.executable, "-m", "station", "status", "--state", str(d.state)], env=d.env,
                           stdout=w, stderr=subprocess.PIPE, text=True, timeout=60)
        os.close(w)
        assert p.returncode == 0, p.stderr
        assert p.stderr == "", p.stderr
    finally:
        assert d.stop() == 0
