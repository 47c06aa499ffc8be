"""systemd integration: the notify protocol over a real AF_UNIX datagram socket,
`systemd-analyze verify` of the unit, install-service --dry-run/--root."""
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from station import sdnotify

ROOT = Path(__file__).resolve().parent.parent


def test_notify_real_datagram_socket(tmp_path):
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(str(path))
        s.settimeout(2)
        env = {"NOTIFY_SOCKET": str(path)}
        assert sdnotify.notify("READY=1\nSTATUS=queue 0", env)
        assert s.recv(4096) == b"READY=1\nSTATUS=queue 0"
        assert sdnotify.notify("WATCHDOG=1", env)
        assert s.recv(4096) == b"WATCHDOG=1"
    assert not sdnotify.notify("READY=1", {})  # not under systemd: a no-op
    assert not sdnotify.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})


def test_notify_abstract_socket():
    name = f"station-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind("\0" + name)
        s.settimeout(2)
        assert sdnotify.notify("READY=1", {"NOTIFY_SOCKET": "@" + name})
        assert s.recv(100) == b"READY=1"


def test_watchdog_interval():
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "60000000"}) == 30.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}) is None
    assert sdnotify.watchdog_interval({}) is None


def _systemd_analyze():
    exe = shutil.which("systemd-analyze")
    if exe:
        return exe
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "systemd"], capture_output=True, timeout=300)
    return shutil.which("systemd-analyze")


def test_unit_verifies(tmp_path):
    exe = _systemd_analyze()
    if not exe:
        pytest.skip("systemd-analyze not available and could not be installed (apt-get install systemd)")
    user = _service_user()
    out = subprocess.run([sys.executable, "-m", "station", "install-service", "--root", str(tmp_path), "--user", user],
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    unit = tmp_path / "etc/systemd/system/station.service"
    text = unit.read_text()
    for must in ("Type=notify", "Restart=on-failure", f"User={user}", "ProtectSystem=strict", "StateDirectory=",
                 "RuntimeDirectory=", "ReadWritePaths=", "DeviceAllow=char-usb_device rw", "DeviceAllow=char-input r",
                 "WatchdogSec="):
        assert must in text, must
    assert "PrivateDevices=yes" not in text
    assert (tmp_path / "etc/udev/rules.d/99-station.rules").exists()
    assert (tmp_path / "etc/station/station.yaml").exists()
    r = subprocess.run([exe, "verify", str(unit)], capture_output=True, text=True, timeout=120)
    if r.returncode != 0 and ("Failed to" in r.stderr and "bus" in r.stderr.lower()):
        pytest.skip(f"systemd-analyze cannot run here: {r.stderr.strip()[:200]}")
    assert r.returncode == 0, r.stderr
    # the shipped unit as-is parses too (its ExecStart may not exist on this machine)
    r = subprocess.run([exe, "verify", str(ROOT / "systemd" / "station.service")], capture_output=True, text=True,
                       timeout=120)
    bad = [l for l in r.stderr.splitlines() if l.strip() and "ExecStart" not in l and "not executable" not in l
           and "No such file" not in l and "Command " not in l]
    assert not bad, r.stderr


def _service_user() -> str:
    """"station" where this venv is readable by an unprivileged user; else root (a venv under
    /root, as on the CI machine: install-service refuses it for "station", see
    test_install_service_access.py)."""
    from station.commands.install_service import service_access_problem

    return "station" if service_access_problem(sys.executable, "station") is None else "root"


def test_install_service_dry_run():
    out = subprocess.run([sys.executable, "-m", "station", "install-service", "--dry-run", "--user", _service_user()],
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert "/etc/systemd/system/station.service" in out.stdout and "Type=notify" in out.stdout
    assert "useradd" in out.stdout
