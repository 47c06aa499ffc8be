"""Config: every key validated; a bad one is ONE line naming it, exit status 2."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import config_dirs

from station import config
from station.config import ConfigError

ROOT = Path(__file__).resolve().parent.parent


_dirs = config_dirs  # tests/helpers.py


def test_shipped_default_is_the_documented_default():
    raw = yaml.safe_load((ROOT / "config" / "station.yaml").read_text())
    assert config.validate(raw, check_paths=False) == config.validate({}, check_paths=False)


def test_valid(tmp_path):
    cfg = config.validate(_dirs(tmp_path))
    assert cfg["paths"]["socket"].name == "station.sock"
    assert cfg["workers"]["count"] == 2
    raw = _dirs(tmp_path / "w") if (tmp_path / "w").mkdir() is None else None
    raw["workers"] = 3
    assert config.validate(raw)["workers"]["count"] == 3


@pytest.mark.parametrize("patch, key", [
    ({"watcher": {"stabel_seconds": 1}}, "watcher.stabel_seconds"),
    ({"bogus": 1}, "bogus"),
    ({"workers": {"count": "two"}}, "workers.count"),
    ({"workers": {"count": True}}, "workers.count"),
    ({"workers": {"start_method": "fork"}}, "workers.start_method"),
    ({"outputs": {"formats": ["png"]}}, "outputs.formats"),
    ({"outputs": {"naming": "{roll}/fixed"}}, "outputs.naming"),
    ({"outputs": {"jpeg_quality": 101}}, "outputs.jpeg_quality"),
    ({"inversion": {"method": "magic"}}, "inversion.method"),
    ({"inversion": {"model": "/nonexistent/model.npz"}}, "inversion.model"),
    ({"camera": {"port": "serial:1"}}, "camera.port"),
    ({"camera": {"jpeg": "maybe"}}, "camera.jpeg"),
    ({"web": {"address": "0.0.0.0:8077"}}, "web.token"),
    ({"hooks": {"preview": 3}}, "hooks.preview"),
    ({"watcher": {"polling": "yes"}}, "watcher.polling"),
])
def test_bad_key_named(tmp_path, patch, key):
    raw = _dirs(tmp_path)
    for sec, val in patch.items():
        raw.setdefault(sec, {})
        if isinstance(val, dict) and isinstance(raw[sec], dict):
            raw[sec].update(val)
        else:
            raw[sec] = val
    with pytest.raises(ConfigError) as e:
        config.validate(raw)
    assert e.value.key == key
    assert "\n" not in str(e.value)


def test_folders(tmp_path):
    raw = _dirs(tmp_path)
    raw["paths"]["incoming"] = str(tmp_path / "missing")
    with pytest.raises(ConfigError, match="paths.incoming: folder does not exist"):
        config.validate(raw)
    raw = _dirs(tmp_path / "x") if (tmp_path / "x").mkdir() is None else None
    raw["paths"]["output"] = str(Path(raw["paths"]["incoming"]) / "positives")
    Path(raw["paths"]["output"]).mkdir()
    with pytest.raises(ConfigError, match="paths.output: must not be inside paths.incoming"):
        config.validate(raw)


def test_search_order(tmp_path, monkeypatch):
    f = tmp_path / "env.yaml"
    f.write_text("workers: {count: 3}\n")
    monkeypatch.setenv("STATION_CONFIG", str(f))
    assert config.find_config() == f
    assert config.find_config("/explicit.yaml") == Path("/explicit.yaml")
    monkeypatch.delenv("STATION_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    if not Path("/etc/station/station.yaml").exists():
        assert config.find_config() is None
        (tmp_path / "xdg" / "station").mkdir(parents=True)
        (tmp_path / "xdg" / "station" / "station.yaml").write_text("{}\n")
        assert config.find_config() == tmp_path / "xdg" / "station" / "station.yaml"


def test_yaml_is_safe(tmp_path):
    f = tmp_path / "evil.yaml"
    f.write_text("paths: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match=r"\(yaml\)"):
        config.load(str(f))


def _run(args, env_extra=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("STATION_CONFIG", None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "station", "run", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_daemon_exits_2_naming_the_key(tmp_path):
    raw = _dirs(tmp_path)
    raw["watcher"] = {"stable_seconds": "soon"}
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(raw))
    r = _run(["--config", str(f)])
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "watcher.stable_seconds" in lines[0], r.stderr
    # a missing folder given on the command line
    r = _run(["--incoming", str(tmp_path / "nope"), "--output", str(tmp_path / "out"), "--state", str(tmp_path / "st")],
             {"STATION_CONFIG": str(tmp_path / "absent.yaml")})
    assert r.returncode == 2 and "--config" in r.stderr  # $STATION_CONFIG names a missing file
    r = _run(["--config", str(tmp_path / "bad.yaml"), "--incoming", str(tmp_path / "nope")])
    assert r.returncode == 2
    r = _run(["--incoming", str(tmp_path / "nope"), "--output", str(tmp_path / "out"), "--state", str(tmp_path / "st")],
             {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")})
    if not Path("/etc/station/station.yaml").exists():
        assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "paths.incoming" in r.stderr, r.stderr
