"""The daemon treats each folder under incoming as a roll (issue 13, item 2), on the real daemon
(`station run` as a subprocess): three frames of the same chart in a dark, a mid and a bright
scene; when the roll is complete its rendering locks, the frames made before are re-rendered,
and the chart matches between their masters."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import roll_chart  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def test_daemon_rerenders_a_roll_once_its_analysis_locks(daemon_factory, tmp_path):
    from station.model.metrics import box_means, ciede2000

    boxes = roll_chart.make_roll(tmp_path / "made")
    d = daemon_factory()
    # the roll's manifest says it has three frames: the third completes it
    r = subprocess.run([sys.executable, "-m", "station", "roll", "--state", str(d.state), "--incoming", str(d.incoming),
                        "new", "--name", "chart", "--frames", "3"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    d.start()
    (d.incoming / "chart").mkdir(exist_ok=True)
    keys = [f"chart/{k}.dng" for k in roll_chart.SCENES]
    shas = {}
    for k in roll_chart.SCENES[:2]:
        os.replace(tmp_path / "made" / f"{k}.dng", d.incoming / "chart" / f"{k}.dng")
    d.wait_for(lambda: d.done(keys[:2]), 120, "the first two frames")
    early = d.frames()
    assert {early[k]["rendering"] for k in keys[:2]} == {"frame"}  # made before the roll was known
    inode = {k: (d.output / "chart" / f"{k}.tif").stat().st_ino for k in roll_chart.SCENES[:2]}
    os.replace(tmp_path / "made" / "bright.dng", d.incoming / "chart" / "bright.dng")
    for k in roll_chart.SCENES:
        shas[k] = hashlib.sha256((d.incoming / "chart" / f"{k}.dng").read_bytes()).hexdigest()

    def rerendered():
        fr = d.frames()
        ids = {fr.get(k, {}).get("rendering") for k in keys}
        return (len(ids) == 1 and None not in ids and "frame" not in ids
                and all(fr[k]["state"] == "master_written" and fr[k]["rerender"] is None for k in keys))
    d.wait_for(rerendered, 180, "the roll re-rendered with one rendering")
    rid = d.frames()[keys[0]]["rendering"]
    saved = json.loads((d.state / "renderings" / "chart.json").read_text())
    assert saved["id"] == rid and saved["locked"] is True
    assert f"roll chart: rendering {rid} locked" in d.log_text()
    assert "roll analysis settled" in d.log_text()
    for k in roll_chart.SCENES[:2]:  # replaced (a new file renamed over), not rewritten in place
        assert (d.output / "chart" / f"{k}.tif").stat().st_ino != inode[k]
    for k in roll_chart.SCENES:  # the RAWs are only read
        assert hashlib.sha256((d.incoming / "chart" / f"{k}.dng").read_bytes()).hexdigest() == shas[k]
    # station status --json shows which rendering each output has
    st = d.status()
    assert {f["path"]: f["rendering"] for f in st["frames"] if f["roll"] == "chart"} == {k: rid for k in keys}
    assert st["renderings"]["chart"] == {"rendering": rid, "locked": True, "frames": 3, "film": "colour"}
    # the chart matches between the three masters
    patches = {k: box_means(roll_chart.read_positive(d.output / "chart" / f"{k}.tif"), boxes[k])
               for k in roll_chart.SCENES}
    worst = max(float(np.mean(ciede2000(patches[a], patches[b])))
                for a, b in (("dark", "mid"), ("dark", "bright"), ("mid", "bright")))
    print(f"daemon roll: chart ΔE00 between masters (worst pair, mean over patches) {worst:.2f}")
    assert worst <= 1.0
    # and between the previews (the one that completed the roll was made again with the rendering)
    from PIL import Image

    assert "preview chart/bright.dng again with the roll's rendering" in d.log_text()
    prev = {}
    for k in roll_chart.SCENES:
        img = np.asarray(Image.open(d.output / "chart" / f"{k}.preview.jpg"), np.float32) / 255.0
        master = roll_chart.read_positive(d.output / "chart" / f"{k}.tif")
        sy, sx = master.shape[0] / img.shape[0], master.shape[1] / img.shape[1]
        prev[k] = box_means(img, [(int(a / sy), int(b / sy), int(c / sx), int(e / sx)) for a, b, c, e in boxes[k]])
        assert float(np.mean(ciede2000(prev[k], patches[k]))) <= 1.5  # preview = master
    worst_prev = max(float(np.mean(ciede2000(prev[a], prev[b])))
                     for a, b in (("dark", "mid"), ("dark", "bright"), ("mid", "bright")))
    assert worst_prev <= 1.5, worst_prev
    for k in roll_chart.SCENES:
        import tifffile

        with tifffile.TiffFile(d.output / "chart" / f"{k}.tif") as tf:
            assert json.loads(tf.pages[0].description)["station_rendering"] == rid
