"""station demo / capture / roll on the command line (real libgphoto2, virtual camera and PTP/IP emulator)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("gphoto2")
sys.path.insert(0, str(Path(__file__).parent))
from ptpip_emulator import EmulatedCamera, free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def station(*args, timeout=120):
    import os

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "station", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def test_demo_runs_the_station_on_the_virtual_camera(tmp_path):
    r = station("demo", "--frames", 3, "--out", tmp_path / "demo", "--web", "off")
    assert r.returncode == 0, r.stderr[-2000:]
    previews = sorted((tmp_path / "demo" / "positives").rglob("*.preview.jpg"))
    masters = sorted((tmp_path / "demo" / "positives").rglob("*.tif"))
    assert [p.name for p in previews] == ["01.preview.jpg", "02.preview.jpg", "03.preview.jpg"]
    assert [p.name for p in masters] == ["01.tif", "02.tif", "03.tif"]
    for n in ("01", "02", "03"):
        assert f"frame {n}:" in r.stdout
    assert "RAW on disk to preview median" in r.stdout
    raws = sorted((tmp_path / "demo" / "incoming").rglob("*.dng"))
    assert len(raws) == 3 and len({p.read_bytes() for p in raws}) == 3, "different frames"
    manifest = json.loads(next((tmp_path / "demo" / "state" / "rolls").glob("*/manifest.json")).read_text())
    assert [f["frame"] for f in manifest["frames"]] == [1, 2, 3]
    # the daemon's journal agrees: every frame has its master
    import sqlite3

    db = sqlite3.connect(tmp_path / "demo" / "state" / "journal.sqlite")
    states = sorted(row[0] for row in db.execute("SELECT state FROM frames"))
    assert states == ["master_written"] * 3


def test_capture_direct_into_current_roll(tmp_path):
    state, incoming = tmp_path / "state", tmp_path / "in"
    r = station("roll", "--state", state, "--incoming", incoming, "new", "--name", "r1", "--stock", "Kodak Gold 200")
    assert r.returncode == 0, r.stderr
    with EmulatedCamera() as emu:
        r = station("capture", "--camera", emu.address, "--incoming", incoming, "--state", state)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == str(incoming / "r1" / "01.dng")
        assert (incoming / "r1" / "01.dng").read_bytes() == emu.captured[0].data
    r = station("roll", "--state", state, "--incoming", incoming, "show")
    assert json.loads(r.stdout)["frames"][0]["files"] == ["r1/01.dng"]


def test_capture_without_camera_exits_nonzero_with_reason(tmp_path):
    r = station("capture", "--camera", f"ptpip:127.0.0.1:{free_port()}:0", "--incoming", tmp_path, "--timeout", "1",
                "--no-roll")
    assert r.returncode == 1
    assert "no camera answering" in r.stderr
    r = station("capture", "--socket", tmp_path / "nope.sock")
    assert r.returncode == 1 and f"the daemon is not running (no control socket at {tmp_path / 'nope.sock'})" in r.stderr


def test_capture_through_daemon_socket(tmp_path):
    """`station capture` without --camera talks the daemon's control protocol."""
    import socket as so

    path = tmp_path / "station.sock"
    srv = so.socket(so.AF_UNIX, so.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(1)
    got = {}

    def serve():
        conn, _ = srv.accept()
        got["req"] = json.loads(conn.makefile().readline())
        conn.sendall(json.dumps({"ok": True, "result": {"files": ["/in/r1/01.dng"], "preview": "/out/r1/01.preview.jpg",
                                                         "latency": "0.91 s from trigger to preview"}}).encode() + b"\n")
        conn.close()

    import threading

    threading.Thread(target=serve, daemon=True).start()
    r = station("capture", "--socket", path)
    srv.close()
    assert r.returncode == 0, r.stderr
    assert got["req"]["cmd"] == "capture" and got["req"]["wait_positive"] is True
    assert "/in/r1/01.dng" in r.stdout and "0.91 s" in r.stdout


def test_roll_and_capture_use_the_config_files_folders(tmp_path):
    """`station roll new --config F` and `station capture --config F` work in F's folders,
    resolved as the daemon resolves them (one resolver), and ask F's daemon (one client)."""
    import yaml

    inc, out, state = tmp_path / "f-in", tmp_path / "f-out", tmp_path / "f-state"
    for d in (inc, out, state):
        d.mkdir()
    cfg = tmp_path / "station.yaml"
    cfg.write_text(yaml.safe_dump({"paths": {"incoming": str(inc), "output": str(out), "state": str(state)}}))
    r = station("roll", "new", "--config", cfg, "--name", "cfg-roll", "--stock", "Fuji C200")
    assert r.returncode == 0, r.stderr
    assert (state / "rolls" / "cfg-roll" / "manifest.json").is_file()
    assert str(inc / "cfg-roll" / "01") in r.stdout
    assert (state / "rolls" / "current").read_text().strip() == "cfg-roll"
    r = station("roll", "show", "--config", cfg)
    assert r.returncode == 0 and json.loads(r.stdout)["name"] == "cfg-roll"
    # direct capture: the RAW goes into F's incoming folder, named into F's current roll
    with EmulatedCamera() as emu:
        r = station("capture", "--config", cfg, "--camera", emu.address)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == str(inc / "cfg-roll" / "01.dng")
        assert (inc / "cfg-roll" / "01.dng").read_bytes() == emu.captured[0].data
    # through the daemon: F's socket (no daemon there: said so, with the path)
    r = station("capture", "--config", cfg)
    assert r.returncode == 1 and str(state / "station.sock") in r.stderr
    # a bad config file: one line naming the key, exit 2
    cfg.write_text(yaml.safe_dump({"paths": {"incoming": 5}}))
    r = station("roll", "new", "--config", cfg, "--name", "x")
    assert r.returncode == 2 and "paths.incoming" in r.stderr and not (state / "rolls" / "x").exists()
