"""The live view inside the real daemon (`station run --web ...` as a subprocess):
the contract for scripts, SSE from real journal transitions, the token policy."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys

import pytest

from conftest import ROOT, write_negative
from test_web_server import SSE, request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Svc:  # what the helpers of test_web_server need: a port
    def __init__(self, port):
        self.port = port


def test_web_off_listens_nowhere(daemon_factory):
    port = free_port()
    d = daemon_factory(extra_args=["--web", "off"],
                       config={"web": {"address": f"127.0.0.1:{port}"}}).start()
    assert "live view off" in d.log_text()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_non_loopback_without_token_refused_at_start(tmp_path):
    for sub in ("in", "out", "st"):
        (tmp_path / sub).mkdir()
    r = subprocess.run([sys.executable, "-m", "station", "run", "--incoming", str(tmp_path / "in"),
                        "--output", str(tmp_path / "out"), "--state", str(tmp_path / "st"),
                        "--web", f"0.0.0.0:{free_port()}"],
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "web.token" in r.stderr


def test_live_view_in_the_daemon(daemon_factory, tmp_path):
    port = free_port()
    d = daemon_factory(extra_args=["--web", f"127.0.0.1:{port}"]).start()
    assert f"live view on http://127.0.0.1:{port}/" in d.log_text()
    svc = _Svc(port)
    r, body = request(svc, "GET", "/")
    assert r.status == 200 and b'id="latest"' in body
    sse = SSE(svc)
    assert sse.next_state()["frames"] == []
    write_negative(tmp_path / "neg.dng", seed=1)
    shutil.copy(tmp_path / "neg.dng", d.incoming / ".IMG_0001.dng.part")
    (d.incoming / ".IMG_0001.dng.part").rename(d.incoming / "IMG_0001.dng")
    end_state = None
    for _ in range(200):  # events until the preview is in (each wait has its own deadline)
        end_state = sse.next_state()
        if end_state["latest"]:
            break
    fr = end_state["frames"][0]
    assert fr["key"] == "IMG_0001.dng" and fr["status"] in ("preview", "master")
    assert fr["latency"]["preview"] is not None
    r, img = request(svc, "GET", end_state["latest"]["url"])
    assert r.status == 200 and img == (d.output / "IMG_0001.preview.jpg").read_bytes()
    (d.incoming / "IMG_0002.CR2").write_bytes(b"this is not a raw file")
    for _ in range(200):
        st = sse.next_state()
        if len(st["frames"]) == 2 and st["frames"][1]["status"] == "failed":
            break
    assert st["frames"][1]["reason"]
    # a command the daemon refuses comes back as 409 with its one-line reason
    r, body = request(svc, "POST", "/api/command/capture", "{}", {"Content-Type": "application/json"})
    assert r.status == 409 and json.loads(body)["error"]
    r, body = request(svc, "POST", "/api/command/retry", "{}", {"Content-Type": "application/json"})
    assert r.status == 200 and json.loads(body)["result"]["requeued"] == ["IMG_0002.CR2"]
    sse.close()
    assert d.stop() == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_port_in_use_does_not_stop_the_daemon(daemon_factory, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        d = daemon_factory(extra_args=["--web", f"127.0.0.1:{port}"]).start()
        assert "live view NOT started" in d.log_text()
        write_negative(d.incoming / "IMG_0001.dng", seed=2)
        d.wait_for(lambda: d.done(["IMG_0001.dng"]), 60, "the frame inverted without the live view")
