"""`station retry` never lies (issue 14, item 2): a frame is done only with its own outputs,
made from the bytes now on disk.  The real daemon, real DNGs and a real 16-bit TIFF scan."""
import hashlib
import os
import subprocess
import sys

import numpy as np
import tifffile

from conftest import negative_bytes


def publish(path, data: bytes) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_bytes(data)
    os.rename(tmp, path)


def retry(d, *paths):
    res = subprocess.run([sys.executable, "-m", "station", "retry", "--state", str(d.state), *paths],
                         env=d.env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_retry_of_a_name_clash_does_not_mark_it_done(daemon_factory, tmp_path):
    d = daemon_factory(config={"outputs": {"formats": ["preview", "tiff"]}})
    d.start()
    publish(d.incoming / "x.dng", negative_bytes(tmp_path, 0))
    d.wait_for(lambda: d.done(["x.dng"]), 60, "x.dng")
    scan = (np.full((120, 180, 3), [0.7, 0.4, 0.2]) * 65535).astype(np.uint16)  # a film scanner's TIFF
    tmp = d.incoming / ".x.tif.tmp"
    tifffile.imwrite(tmp, scan, photometric="rgb")
    os.rename(tmp, d.incoming / "x.tif")
    d.wait_for(lambda: d.done(["x.tif"], states=("failed",)), 60, "the clash")
    assert "already belongs to x.dng" in d.frames()["x.tif"]["reason"]
    before = (d.output / "x.tif").read_bytes()
    assert "re-queued x.tif" in retry(d, "x.tif")
    d.wait_for(lambda: d.done(["x.tif"], states=("failed",)) and d.frames()["x.tif"]["attempts"] >= 2, 60,
               "the retried clash")
    fr = d.frames()["x.tif"]
    assert fr["state"] == "failed" and "already belongs to x.dng" in fr["reason"], fr
    assert d.status()["counts"]["master_written"] == 1
    assert (d.output / "x.tif").read_bytes() == before  # x.dng's master untouched
    assert d.frames()["x.dng"]["state"] == "master_written"
    assert d.stop() == 0


def test_retry_of_a_replaced_raw_makes_new_positives(daemon_factory, tmp_path):
    d = daemon_factory()
    d.start()
    old, new = negative_bytes(tmp_path, 0), negative_bytes(tmp_path, 2)
    publish(d.incoming / "y.dng", old)
    d.wait_for(lambda: d.done(["y.dng"]), 60, "y.dng")
    assert d.frames()["y.dng"]["sha256"] == hashlib.sha256(old).hexdigest()
    outs = {s: (d.output / f"y{s}").read_bytes() for s in (".preview.jpg", ".tif", ".jpg")}
    publish(d.incoming / "y.dng", new)  # the same name, new content
    d.wait_for(lambda: d.done(["y.dng"], states=("failed",)), 60, "the changed file refused")
    assert "file changed after it was processed" in d.frames()["y.dng"]["reason"]
    assert {s: (d.output / f"y{s}").read_bytes() for s in outs} == outs  # nothing overwritten without asking
    assert "re-queued y.dng" in retry(d)
    d.wait_for(lambda: d.done(["y.dng"]), 60, "the retried frame")
    fr = d.frames()["y.dng"]
    assert fr["sha256"] == hashlib.sha256(new).hexdigest(), fr
    assert fr["preview"] and fr["tiff"] and fr["jpeg"]
    for s, data in outs.items():  # fresh positives of the new bytes
        assert (d.output / f"y{s}").read_bytes() != data, s
    assert "[existing kept]" not in d.log_text()
    assert not [p for p in d.output.rglob(".*")]
    assert d.stop() == 0
