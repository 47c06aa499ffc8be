"""Where the print is set: the YAML `print:` section, a roll's manifest, `station export-lut`."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import config_dirs, run_station_config

from station import config
from station.config import ConfigError
from station.pipeline.printing import PrintSettings, apply_srgb

ROOT = Path(__file__).resolve().parent.parent


_dirs = config_dirs  # tests/helpers.py


def test_yaml_print_section_is_read(tmp_path):
    raw = _dirs(tmp_path)
    raw["print"] = {"exposure": 0.5, "wb": "5600,4", "contrast": 1.1}
    cfg = config.validate(raw)
    s = PrintSettings.from_dict(cfg["print"])
    assert (s.exposure, s.temperature, s.tint, s.contrast) == (0.5, 5600.0, 4.0, 1.1)


@pytest.mark.parametrize("section, key", [
    ({"exposure": "bright"}, "print.exposure"), ({"exposure": 7}, "print.exposure"), ({"wb": "daylight"}, "print.wb"),
    ({"temperature": 100000}, "print.temperature"), ({"tint": -300}, "print.tint"), ({"gamma": 2.2}, "print.gamma"),
    ({"white": 0.4}, "print.white"), ([1, 2], "print"),
])
def test_bad_print_key_is_named(tmp_path, section, key):
    raw = _dirs(tmp_path)
    raw["print"] = section
    with pytest.raises(ConfigError) as e:
        config.validate(raw)
    assert e.value.key == key, str(e.value)
    assert "\n" not in str(e.value)


def test_daemon_exits_2_on_a_bad_print_key(tmp_path):
    raw = _dirs(tmp_path)
    raw["print"] = {"exposure": 12}
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(raw))
    r = run_station_config(f)
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert lines == ["station: config: print.exposure: must be between -5 and 5, got 12"], r.stderr


def test_roll_manifest_print_kept_across_a_capture_services_save(tmp_path):
    from station.capture.roll import RollStore

    store = RollStore(tmp_path / "state", tmp_path / "in")
    held = store.new(name="r1")  # as a capture service holds it
    other = store.get("r1")  # `station roll print` / the daemon
    other.set_print(PrintSettings(exposure=0.7, temperature=5000))
    held.data["next_frame"] = 5
    held.save()  # a capture: must not drop the print set meanwhile
    back = store.get("r1")
    assert back.data["next_frame"] == 5
    assert back.print_settings() == PrintSettings(exposure=0.7, temperature=5000)
    other.set_print(None)
    assert store.get("r1").print_settings() is None and "print" not in store.get("r1").data


def test_station_roll_print_command(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    base = [sys.executable, "-m", "station", "roll", "--state", str(tmp_path / "st"), "--incoming", str(tmp_path / "in")]
    (tmp_path / "in").mkdir()
    assert subprocess.run(base + ["new", "--name", "r2"], env=env, capture_output=True, timeout=60).returncode == 0
    r = subprocess.run(base + ["print", "--exposure", "0.5", "--wb", "5200"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert "exposure +0.50 EV" in r.stdout
    r = subprocess.run(base + ["print", "--contrast", "1.2"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "st" / "rolls" / "r2" / "manifest.json").read_text())
    assert data["print"] == {**PrintSettings().to_dict(), "exposure": 0.5, "temperature": 5200.0, "contrast": 1.2}
    r = subprocess.run(base + ["print", "--black", "0.9"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "station roll print: --black: must be between 0 and 0.5" in r.stderr


def test_export_lut_includes_the_print(tmp_path):
    from station.cli import main
    from station.model.lut import read_cube

    plain, printed = tmp_path / "plain.cube", tmp_path / "printed.cube"
    assert main(["export-lut", "--method", "classic", "--size", "17", str(plain)]) == 0
    assert main(["export-lut", "--method", "classic", "--size", "17", "--exposure", "0.5", "--wb", "4500,-5",
                 str(printed)]) == 0
    a, b = read_cube(plain), read_cube(printed)
    s = PrintSettings(exposure=0.5, temperature=4500, tint=-5)
    np.testing.assert_allclose(b.table, apply_srgb(a.table, s), atol=2e-5)
    assert "print after the inversion: exposure +0.50 EV" in printed.read_text()
    assert main(["export-lut", "--method", "classic", "--contrast", "9", str(tmp_path / "bad.cube")]) == 2
    assert not (tmp_path / "bad.cube").exists()
