"""`station install-service` refuses a unit its service user could not start (issue 14,
item 9): ExecStart into a folder that user cannot enter (a venv under /root, mode 0700)."""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def install(*args):
    return subprocess.run([sys.executable, "-m", "station", "install-service", *map(str, args)],
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=120)


@pytest.fixture
def home():
    """A folder every user may enter (mkdtemp is 0700; pytest's tmp_path sits under a 0700
    folder), holding a 'home' folder of mode 0700 with a link to this interpreter."""
    top = Path(tempfile.mkdtemp(prefix="station-home-", dir="/tmp"))
    top.chmod(0o755)
    h = top / "home"
    (h / "venv" / "bin").mkdir(parents=True)
    (h / "venv" / "bin" / "python").symlink_to(sys.executable)
    h.chmod(0o700)
    yield h
    h.chmod(0o755)
    shutil.rmtree(top)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a folder of another owner's mode matter")
def test_a_venv_under_a_0700_home_is_refused_before_anything_is_written(home, tmp_path):
    python = home / "venv" / "bin" / "python"
    for extra in (["--dry-run"], []):
        r = install("--root", tmp_path / "prefix", "--python", python, *extra)
        assert r.returncode == 2, r.stdout + r.stderr
        assert "refusing" in r.stderr and f"{home} (mode 0700, owner root) cannot be entered" in r.stderr
        assert "/opt/station" in r.stderr  # the fix
        assert not (tmp_path / "prefix").exists()  # nothing written
        assert "ExecStart" not in r.stdout
    home.chmod(0o755)  # the home folder readable: it is no longer the folder in the way
    r = install("--root", tmp_path / "prefix", "--python", python, "--dry-run")
    assert str(home) + " (mode" not in r.stderr
    if r.returncode == 2:  # e.g. the interpreter itself lives under /root (pyenv): named instead
        assert "refusing" in r.stderr and "cannot be" in r.stderr
    else:
        assert f"ExecStart={python} -m station run" in r.stdout


def test_a_user_who_can_read_everything_gets_the_unit(tmp_path):
    r = install("--root", tmp_path / "prefix", "--user", "root")
    assert r.returncode == 0, r.stderr
    unit = (tmp_path / "prefix/etc/systemd/system/station.service").read_text()
    assert f"ExecStart={sys.executable} -m station run" in unit and "User=root" in unit


def test_installed_unit_starts_as_the_service_user_under_systemd(tmp_path):
    """Only where systemd runs this machine (PID 1) and we may start units."""
    if not Path("/run/systemd/system").is_dir() or shutil.which("systemd-run") is None:
        pytest.skip("systemd is not PID 1 on this machine: systemd-run cannot start the unit here")
    r = subprocess.run(["systemd-run", "--wait", "--collect", "-p", "User=nobody", sys.executable, "-c",
                        "import station, numpy"], capture_output=True, text=True, timeout=120)
    from station.commands.install_service import service_access_problem

    assert (r.returncode == 0) == (service_access_problem(sys.executable, "nobody") is None), r.stderr
