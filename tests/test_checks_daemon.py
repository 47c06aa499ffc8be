"""Frame checks on the real daemon (`station run` as a subprocess): the workers send
the check metrics with their results, the findings land in the journal and in
`station status --json` (`frames[i].checks`), and the daemon's own process never
loads LibRaw (every RAW is parsed in a worker)."""
from __future__ import annotations

import json
import os
import shutil

from conftest import write_negative


def _maps(pid: int) -> str:
    with open(f"/proc/{pid}/maps") as fh:
        return fh.read()


def test_findings_in_status_and_journal_no_libraw_in_the_daemon(daemon_factory, tmp_path):
    d = daemon_factory().start()
    (d.incoming / "r1").mkdir()
    write_negative(tmp_path / "a.dng", seed=1)
    write_negative(tmp_path / "b.dng", seed=2)
    # 01 and 02 are the same picture (the film was not advanced); 03 another one
    for name, src in (("01", "a"), ("02", "a"), ("03", "b")):
        shutil.copy(tmp_path / f"{src}.dng", tmp_path / f".{name}.tmp")
        os.replace(tmp_path / f".{name}.tmp", d.incoming / "r1" / f"{name}.dng")
        key = f"r1/{name}.dng"
        d.wait_for(lambda: d.frames().get(key, {}).get("checks") is not None, 90, f"{key} checked")
    keys = [f"r1/{n}.dng" for n in ("01", "02", "03")]
    d.wait_for(lambda: d.done(keys), 90, "the masters")
    rows = d.frames()
    assert [c["check"] for c in json.loads(rows["r1/02.dng"]["checks"])] == ["duplicate"]
    assert "duplicate" not in {c["check"] for c in json.loads(rows["r1/03.dng"]["checks"])}
    st = d.status()
    by = {f["path"]: f for f in st["frames"]}
    assert set(by) == set(keys)
    for k in keys:
        assert isinstance(by[k]["checks"], list), by[k]
    dup = [c for c in by["r1/02.dng"]["checks"] if c["check"] == "duplicate"]
    assert dup and "previous frame" in dup[0]["message"] and isinstance(dup[0]["value"], float)
    assert st["checks"]["checked"] == 3 and st["checks"]["unchecked"] == 0
    # every RAW was parsed in a worker: the daemon's own process has no LibRaw mapped
    maps = _maps(d.proc.pid)
    assert "libraw" not in maps.lower(), [ln for ln in maps.splitlines() if "raw" in ln.lower()]
    worker_pids = [w["pid"] for w in st["workers"] if w["pid"]]
    assert worker_pids and any("libraw" in _maps(p).lower() for p in worker_pids)  # (the test can see it)
    assert d.stop() == 0
