"""RAW+JPEG shooting (issue 14, item 1): with IMG.dng and IMG.JPG in one folder the RAW wins
and the camera's JPEG is never inverted over it, in whatever order they arrive, in the real
daemon and in `station invert`."""
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from conftest import negative_bytes

RAW_HW = (400, 600)  # the negative DNGs of conftest
JPEG_HW = (200, 300)  # the camera JPEG is smaller: the master's size tells which file it came from


def camera_jpeg(path: Path) -> Path:
    """A real JPEG as a camera writes beside its RAW (an orange negative, smaller than the RAW)."""
    h, w = JPEG_HW
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([200 + 40 * xx / w, 110 + 40 * yy / h, 60 + 0 * xx], axis=2).astype(np.uint8)
    tmp = path.with_name("." + path.name + ".tmp")
    Image.fromarray(img).save(tmp, format="JPEG", quality=92)
    os.rename(tmp, path)
    return path


def publish(path: Path, data: bytes) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_bytes(data)
    os.rename(tmp, path)


def test_daemon_raw_wins_over_its_camera_jpeg_in_any_order(daemon_factory, tmp_path):
    raw = negative_bytes(tmp_path, 0)
    d = daemon_factory(config={"watcher": {"rescan_interval": 2},
                               "hooks": {"error": f"echo \"$STATION_FRAME $STATION_REASON\" >> {tmp_path / 'errors.log'}"}})
    d.start()
    inc = d.incoming
    # RAW first, then its JPEG
    publish(inc / "A.dng", raw)
    camera_jpeg(inc / "A.JPG")
    # JPEG first, then the RAW a moment later (a card copied in name order: "B.JPG" < "B.dng")
    camera_jpeg(inc / "B.JPG")
    time.sleep(0.3)
    publish(inc / "B.dng", raw)
    # both at once
    camera_jpeg(inc / "C.jpg")
    publish(inc / "C.DNG", raw)
    d.wait_for(lambda: d.done(["A.dng", "B.dng", "C.DNG"]), 120, "the three RAWs")
    # JPEG first, converted long before its RAW shows up: the RAW still wins
    camera_jpeg(inc / "D.JPG")
    d.wait_for(lambda: d.done(["D.JPG"]), 60, "a lone camera JPEG is converted")
    publish(inc / "D.dng", raw)
    d.wait_for(lambda: d.done(["D.dng"]), 60, "D's RAW")
    time.sleep(2.5)  # one periodic rescan over the folder: must not bring the JPEGs back
    frames = d.frames()
    assert not [f for f in frames.values() if f["state"] == "failed"], frames
    assert sorted(frames) == ["A.dng", "B.dng", "C.DNG", "D.dng"], sorted(frames)
    for stem in "ABCD":
        tif = d.output / f"{stem}.tif"
        assert tifffile.imread(tif).shape[:2] == RAW_HW, stem  # made from the RAW, not the JPEG
        assert Image.open(d.output / f"{stem}.jpg").size == RAW_HW[::-1], stem
        assert (d.output / f"{stem}.preview.jpg").exists()
        assert Image.open(d.output / f"{stem}.preview.jpg").size == (RAW_HW[1] // 2, RAW_HW[0] // 2), stem
    log = d.log_text()
    assert "FAILED" not in log and "already belongs" not in log
    assert not (tmp_path / "errors.log").exists()
    for name in ("A.JPG", "B.JPG", "C.jpg", "D.JPG"):  # said once per file, and the JPEG is kept as it was
        assert log.count(f"{name}: camera JPEG beside its RAW") == 1, log
        assert (inc / name).exists()
    st = d.status()
    assert st["counts"]["master_written"] == 4 and st["counts"]["failed"] == 0
    assert d.stop() == 0


def test_invert_takes_the_raw_of_a_raw_jpeg_pair(tmp_path):
    src = tmp_path / "card"
    src.mkdir()
    (src / "IMG_0001.dng").write_bytes(negative_bytes(tmp_path, 0))
    camera_jpeg(src / "IMG_0001.JPG")
    camera_jpeg(src / "IMG_0002.JPG")  # a JPEG with no RAW: converted
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    for args in ([str(src)], [str(src / "IMG_0001.JPG"), str(src / "IMG_0001.dng"), str(src / "IMG_0002.JPG")]):
        res = subprocess.run([sys.executable, "-m", "station", "invert", *args, "--out", str(out), "--method", "classic",
                              "--overwrite"], env=env, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        assert "2 of 2 converted, 0 failed" in res.stderr, res.stderr
        assert res.stderr.count("IMG_0001.JPG: camera JPEG beside its RAW IMG_0001.dng") == 1, res.stderr
        assert tifffile.imread(out / "IMG_0001.tif").shape[:2] == RAW_HW
        assert tifffile.imread(out / "IMG_0002.tif").shape[:2] == JPEG_HW
