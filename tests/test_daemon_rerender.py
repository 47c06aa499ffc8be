"""Re-render a frame on the real daemon (`station run` as a subprocess):
`POST /api/command/reinvert` and the control socket's `reinvert` re-make the
preview and the master from the RAW with the current settings, replace the
frame's outputs atomically, leave the RAW alone, and record it in the journal."""
from __future__ import annotations

import hashlib
import json
import os

from conftest import write_negative
from test_web_daemon import _Svc, free_port
from test_web_server import request


def _sha(p) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _post(svc, name, args):
    r, body = request(svc, "POST", f"/api/command/{name}", json.dumps(args), {"Content-Type": "application/json"})
    return r.status, json.loads(body)


def test_reinvert_rerenders_a_frame_on_the_real_daemon(daemon_factory, tmp_path):
    port = free_port()
    d = daemon_factory(extra_args=["--web", f"127.0.0.1:{port}"]).start()
    svc = _Svc(port)
    (d.incoming / "roll-001").mkdir()
    raw = d.incoming / "roll-001" / "01.dng"
    write_negative(tmp_path / "n.dng", seed=1)
    os.replace(tmp_path / "n.dng", raw)
    key = "roll-001/01.dng"
    d.wait_for(lambda: d.done([key]), 90, "the frame processed")
    raw_sha = _sha(raw)
    assert json.loads(__import__("tifffile").TiffFile(d.output / "roll-001" / "01.tif").pages[0].description)[
        "station_base"] != [0.5, 0.5, 0.6]
    outs = {k: d.output / "roll-001" / f"01{s}" for k, s in
            (("preview", ".preview.jpg"), ("tiff", ".tif"), ("jpeg", ".jpg"))}
    before = {k: (_sha(p), p.stat().st_ino) for k, p in outs.items()}
    row0 = d.frames()[key]

    # the current settings change: the roll gets a calibrated film base (a bluer one
    # than the frame's own rebate), so a re-rendered positive must differ
    man = d.state / "rolls" / "roll-001"
    man.mkdir(parents=True)
    (man / "manifest.json").write_text(json.dumps({"name": "roll-001", "base": {"rgb": [0.5, 0.5, 0.6]}}))

    # an unknown frame: refused with one line, nothing touched
    st, body = _post(svc, "reinvert", {"frame": "roll-001/99.dng"})
    assert st == 409 and "99.dng" in body["error"]

    st, body = _post(svc, "reinvert", {"frame": key})
    assert st == 200, body
    assert body["result"] == {"frame": key, "queued": "preview"}
    d.wait_for(lambda: (lambda r: r["state"] == "master_written" and r["rerender"] is None
                        and r["t_master"] > row0["t_master"])(d.frames()[key]), 90, "the re-render finished")
    row = d.frames()[key]
    assert "re-render" in d.log_text() and key in d.log_text()
    for k, p in outs.items():  # each output replaced by a new file (a rename), none rewritten in place
        assert p.stat().st_ino != before[k][1], f"{k} was not replaced"
    # made with the current settings: the master carries the roll's calibrated base now
    # (the classic inversion normalises per frame, so the pixels barely move; the record does)
    import tifffile

    def made_with(p):
        with tifffile.TiffFile(p) as t:
            return json.loads(t.pages[0].description)
    assert made_with(outs["tiff"])["station_base"] == [0.5, 0.5, 0.6]
    assert _sha(outs["tiff"]) != before["tiff"][0]
    assert _sha(raw) == raw_sha  # the RAW is only read
    assert row["sha256"] == raw_sha
    assert not [p for p in d.output.rglob(".*") if p.is_file()]  # no temporaries left
    import numpy as np
    from PIL import Image

    with Image.open(outs["preview"]) as im:  # a real picture, not an empty file
        assert im.size[0] > 100 and len(np.unique(np.asarray(im.convert("L")))) > 20

    # the control socket answers the same command
    from station.control import request as ctl

    res = ctl(d.state / "station.sock", "reinvert", frame=key, reason="print settings changed")
    assert res["frame"] == key
    d.wait_for(lambda: d.frames()[key]["rerender"] is None and d.frames()[key]["state"] == "master_written"
               and d.frames()[key]["t_master"] > row["t_master"], 90, "the second re-render finished")
    assert "print settings changed" in d.log_text()
    assert d.stop() == 0


# -- the Processor's side, without worker processes: the job flow the workers see --------

def _processor(tmp_path):
    from station import config
    from station.daemon.processor import Processor
    from station.ingest.jobs import JobQueue
    from station.journal import Journal

    for sub in ("in", "out", "st"):
        (tmp_path / sub).mkdir(exist_ok=True)
    cfg = config.validate({"paths": {"incoming": str(tmp_path / "in"), "output": str(tmp_path / "out"),
                                     "state": str(tmp_path / "st")}})
    j = Journal(tmp_path / "st" / "journal.sqlite")
    q = JobQueue()
    return Processor(cfg, j, q), j, q


def _finish(p, q, stage, ok=True):
    job = q.get((stage,), timeout=1)
    assert job is not None and job.stage == stage
    p.on_result(job, {"ok": ok, "reason": None if ok else "boom", "sha256": "x"})
    q.done(job)
    return job


def test_rerender_while_busy_waits_for_the_job_then_runs(tmp_path):
    p, j, q = _processor(tmp_path)
    (tmp_path / "in" / "a.dng").write_bytes(b"raw")
    p.submit(tmp_path / "in" / "a.dng", 1.0)
    first = q.get(("preview",), timeout=1)  # a worker has the preview in hand
    assert not first.overwrite
    assert p.rerender("a.dng", "roll settled") == {"frame": "a.dng", "queued": "after the current job"}
    p.on_result(first, {"ok": True})
    q.done(first)
    master = _finish(p, q, "master")
    assert not master.overwrite  # the first pass keeps existing outputs
    # the master done: the re-render starts, overwriting, through both stages
    assert j.get("a.dng")["rerender"] == "roll settled" and j.get("a.dng")["state"] == "seen"
    assert _finish(p, q, "preview").overwrite
    assert _finish(p, q, "master").overwrite
    row = j.get("a.dng")
    assert row["state"] == "master_written" and row["rerender"] is None
    assert (tmp_path / "in" / "a.dng").read_bytes() == b"raw"


def test_rerender_survives_a_restart_and_a_failure(tmp_path):
    p, j, q = _processor(tmp_path)
    (tmp_path / "in" / "a.dng").write_bytes(b"raw")
    p.submit(tmp_path / "in" / "a.dng", 1.0)
    _finish(p, q, "preview")
    _finish(p, q, "master")
    assert p.rerender(str(tmp_path / "in" / "a.dng"), "print settings changed")["queued"] == "preview"
    _finish(p, q, "preview")
    j.close()
    # the daemon restarts with the re-render half done: the master is still re-made
    p, j, q = _processor(tmp_path)
    assert p.submit(tmp_path / "in" / "a.dng", 2.0) == "master"
    job = _finish(p, q, "master", ok=False)
    assert job.overwrite and j.get("a.dng")["state"] == "failed"
    assert j.get("a.dng")["rerender"] == "print settings changed"  # still owed
    p.retry(["a.dng"])
    assert _finish(p, q, "preview").overwrite
    assert _finish(p, q, "master").overwrite
    assert j.get("a.dng")["rerender"] is None


def test_rerender_refusals(tmp_path):
    import pytest

    p, j, q = _processor(tmp_path)
    with pytest.raises(ValueError, match="no frame"):
        p.rerender("nope.dng")
    (tmp_path / "in" / "a.dng").write_bytes(b"raw")
    p.submit(tmp_path / "in" / "a.dng", 1.0)
    _finish(p, q, "preview")
    _finish(p, q, "master")
    (tmp_path / "in" / "a.dng").unlink()
    with pytest.raises(ValueError, match="no longer in the incoming folder"):
        p.rerender("a.dng")
    assert j.get("a.dng")["state"] == "master_written"
