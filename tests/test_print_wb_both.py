"""`wb` and `temperature`/`tint` in one print are two answers to one question: refused, naming
the key, not one of them picked silently.  Before, the YAML kept `temperature` and dropped the
wb's, while `set_print` kept the wb's and dropped `temperature` (found trying YAML keys)."""
from __future__ import annotations


import pytest
import yaml

from helpers import config_dirs, run_station_config



@pytest.mark.parametrize("section", [{"wb": "5600,5", "temperature": 4000}, {"wb": "5600", "tint": 10}])
def test_the_daemon_exits_2_on_wb_beside_temperature_or_tint(tmp_path, section):
    raw = config_dirs(tmp_path)
    raw["web"] = {"address": "off"}
    raw["print"] = section
    f = tmp_path / "station.yaml"
    f.write_text(yaml.safe_dump(raw))
    r = run_station_config(f)
    assert r.returncode == 2, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("station: config: print.wb: give wb or "), r.stderr


def test_set_print_refuses_wb_beside_temperature_and_stores_nothing(tmp_path):
    from test_print_daemon import _book

    book, p, j, _ = _book(tmp_path)
    (tmp_path / "in" / "a.dng").write_bytes(b"raw")
    p.submit(tmp_path / "in" / "a.dng", 1.0)
    with pytest.raises(ValueError, match="print.wb: give wb or temperature, not both"):
        book.set_print(frame="a.dng", settings={"wb": "5000", "temperature": 3000})
    assert j.get("a.dng")["print"] is None
