"""The print on the real daemon (`station run` as a subprocess): `set_print` for a frame and for a
roll, the preview first and then the master re-rendered with it, the neutral picker, the
settings kept in the journal across a restart, the YAML's `print:` as the station's default."""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import tifffile
from PIL import Image

from negatives import expose, grey_ramp, with_rebate, write_negative_dng
from station.control import request as ctl
from station.pipeline.printing import srgb_to_linear


def _sha(p) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _tiff_print(p):
    with tifffile.TiffFile(p) as t:
        return json.loads(t.pages[0].description).get("station_print")


def _jpeg_print(p):
    with Image.open(p) as im:
        return json.loads(im.getexif()[270]).get("station_print")


def _pixels(p):
    with Image.open(p) as im:
        return np.asarray(im.convert("RGB"), np.float64) / 255.0


def _drop(d, tmp_path, rel, seed):
    src = tmp_path / f"gen-{seed}.dng"
    scene = np.clip(grey_ramp(200, 300) * np.array([0.97, 0.93, 0.9]), 0.01, 1).astype(np.float32)
    write_negative_dng(src, with_rebate(expose(scene), border=20), seed=seed)
    (d.incoming / rel).parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, d.incoming / rel)


def test_set_print_rerenders_preview_then_master_and_survives_a_restart(daemon_factory, tmp_path):
    d = daemon_factory(config={"print": {"exposure": 0.3}}).start()
    sock = d.state / "station.sock"
    a, b = "roll-001/01.dng", "roll-001/02.dng"
    _drop(d, tmp_path, a, 1)
    _drop(d, tmp_path, b, 2)
    d.wait_for(lambda: d.done([a, b]), 120, "both frames processed")
    out = d.output / "roll-001"
    prev_a, tif_a, jpg_a, tif_b = out / "01.preview.jpg", out / "01.tif", out / "01.jpg", out / "02.tif"
    # the YAML's print is the station's default, recorded in every output
    assert _tiff_print(tif_a)["exposure"] == 0.3 and _jpeg_print(prev_a)["exposure"] == 0.3
    got = ctl(sock, "get_print", frame=a)
    assert got["source"] == "station" and got["print"]["exposure"] == 0.3
    before_prev, before_tif, b_sha = _pixels(prev_a), _sha(tif_a), _sha(tif_b)
    row0 = d.frames()[a]

    # one frame: +1 EV over the station's and a cooler balance
    res = ctl(sock, "set_print", frame=a, settings={"exposure": 1.3, "wb": "4500,5"})
    assert res["frame"] == a and res["print"]["exposure"] == 1.3 and res["print"]["temperature"] == 4500.0
    d.wait_for(lambda: (_jpeg_print(prev_a) or {}).get("exposure") == 1.3, 60, "the new preview")
    d.wait_for(lambda: (lambda r: r["state"] == "master_written" and r["rerender"] is None
                        and r["t_master"] > row0["t_master"])(d.frames()[a]), 120, "the new master")
    row = d.frames()[a]
    assert row["t_preview"] < row["t_master"]  # the preview came first
    assert _tiff_print(tif_a) == _jpeg_print(jpg_a) == res["print"]
    after = _pixels(prev_a)
    lin0, lin1 = srgb_to_linear(before_prev), srgb_to_linear(after)
    mid = (lin0.mean(axis=2) > 0.03) & (lin0.mean(axis=2) < 0.2)
    assert mid.sum() > 1000
    ratio = lin1[mid].mean(axis=0) / lin0[mid].mean(axis=0)
    assert 1.6 < ratio.mean() < 2.4, ratio  # one stop more light
    assert ratio[2] / ratio[0] > 1.15, ratio  # and cooler (4500 K)
    assert _sha(tif_a) != before_tif
    assert _sha(tif_b) == b_sha  # the other frame is left alone
    assert "print roll-001/01.dng: exposure +1.30 EV, WB 4500 K tint +5" in d.log_text()

    # a bad setting: one line, nothing stored
    from station.control import ControlError

    try:
        ctl(sock, "set_print", frame=a, settings={"contrast": 12})
        raise AssertionError("accepted contrast 12")
    except ControlError as exc:
        assert "print.contrast: must be between 0.25 and 4, got 12" in str(exc)

    # the neutral picker: a band of the grey ramp, cool now, becomes neutral
    h, w = after.shape[:2]
    x, y = 0.62, 0.5  # inside the picture, a mid grey band
    patch0 = after[int(y * h) - 3:int(y * h) + 4, int(x * w) - 3:int(x * w) + 4].reshape(-1, 3).mean(0)
    assert patch0[2] - patch0[0] > 0.03, patch0  # visibly cool before
    t_prev = d.frames()[a]["t_preview"]
    res = ctl(sock, "set_print", frame=a, neutral={"x": x, "y": y})
    assert res["print"]["exposure"] == 1.3 and res["print"]["temperature"] > 4500
    d.wait_for(lambda: (d.frames()[a]["t_preview"] or 0) > t_prev and d.frames()[a]["state"] != "seen", 60,
               "the neutral preview")
    d.wait_for(lambda: (_jpeg_print(prev_a) or {}).get("temperature") == res["print"]["temperature"], 30, "its file")
    picked = _pixels(prev_a)
    patch = picked[int(y * h) - 3:int(y * h) + 4, int(x * w) - 3:int(x * w) + 4].reshape(-1, 3).mean(0)
    assert np.ptp(patch) < 0.02, patch
    d.wait_for(lambda: d.frames()[a]["state"] == "master_written" and d.frames()[a]["rerender"] is None, 120,
               "the neutral master")
    kept = res["print"]

    # a restart keeps the frame's print: the journal has it, and a re-render uses it
    assert d.stop() == 0
    n = len(d.log_text())
    d = daemon_factory(config={"print": {"exposure": 0.3}}).start(wait_ready=False)
    d.wait_for(lambda: "ready:" in d.log_text()[n:], 90, "the restarted daemon ready")
    got = ctl(sock, "get_print", frame=a)
    assert got["source"] == "frame" and got["print"] == kept
    assert json.loads(d.frames()[a]["print"]) == kept
    t_master = d.frames()[a]["t_master"]
    ctl(sock, "reinvert", frame=a, reason="after the restart")
    d.wait_for(lambda: d.frames()[a]["state"] == "master_written" and d.frames()[a]["t_master"] > t_master, 120,
               "re-render after the restart")
    assert _tiff_print(tif_a) == kept

    # the roll's print: frames without their own follow it, the frame with its own keeps it
    res = ctl(sock, "set_print", roll="roll-001", settings={"contrast": 1.3})
    assert res["rerender"] == [b]
    assert json.loads((d.state / "rolls" / "roll-001" / "manifest.json").read_text())["print"]["contrast"] == 1.3
    d.wait_for(lambda: (_tiff_print(tif_b) or {}).get("contrast") == 1.3, 120, "the roll's frame re-rendered")
    assert _tiff_print(tif_b)["exposure"] == 0.3  # over the station's print
    assert _tiff_print(tif_a) == kept
    assert ctl(sock, "get_print", frame=b)["source"] == "roll"
    # reset: the frame follows its roll again
    ctl(sock, "set_print", frame=a, reset=True)
    d.wait_for(lambda: (_tiff_print(tif_a) or {}).get("contrast") == 1.3, 120, "the frame back on its roll's print")
    assert not [p for p in d.output.rglob(".*") if p.is_file()]  # no temporaries left
    assert d.stop() == 0


# -- the job flow without worker processes: which print each job carries ------------------------

def _book(tmp_path):
    from station.daemon.prints import PrintBook
    from test_daemon_rerender import _processor

    p, j, q = _processor(tmp_path)
    return PrintBook(p.cfg, j, p), p, j, q


def test_a_frames_print_is_kept_across_a_failure_and_a_retry(tmp_path):
    from test_daemon_rerender import _finish

    book, p, j, q = _book(tmp_path)
    (tmp_path / "in" / "r").mkdir()
    (tmp_path / "in" / "r" / "a.dng").write_bytes(b"raw")
    p.submit(tmp_path / "in" / "r" / "a.dng", 1.0)
    job = q.get(("preview",), timeout=1)
    assert book.for_job(job) is None  # as inverted: nothing sent
    p.on_result(job, {"ok": True})
    q.done(job)
    _finish(p, q, "master")
    res = book.set_print(frame="r/a.dng", settings={"exposure": 0.7})
    assert res["queued"] == "preview"
    job = q.get(("preview",), timeout=1)
    assert job.overwrite and book.for_job(job)["exposure"] == 0.7
    p.on_result(job, {"ok": False, "reason": "decoder crashed"})  # the re-render fails
    q.done(job)
    assert j.get("r/a.dng")["state"] == "failed"
    p.retry(["r/a.dng"])
    job = q.get(("preview",), timeout=1)
    assert book.for_job(job)["exposure"] == 0.7  # the retry prints it the same way
    p.on_result(job, {"ok": True})
    q.done(job)
    # the master waits for MASTER_HOLD after a print change's preview, then carries the same print
    job = q.get(("master",), timeout=5)
    assert job is not None and job.overwrite and book.for_job(job)["exposure"] == 0.7


def test_set_print_refusals_store_nothing(tmp_path):
    import pytest

    book, p, j, q = _book(tmp_path)
    (tmp_path / "in" / "a.dng").write_bytes(b"raw")
    p.submit(tmp_path / "in" / "a.dng", 1.0)
    for kw, msg in (({"frame": "nope.dng"}, "no frame"), ({}, "either path"),
                    ({"frame": "a.dng", "roll": "r"}, "either path"),
                    ({"frame": "a.dng", "settings": {"exposure": 99}}, "print.exposure: must be between"),
                    ({"frame": "a.dng", "settings": {"wb": "hot"}}, "print.wb"),
                    ({"frame": "a.dng", "neutral": {"x": 2, "y": 0.5}}, "outside the picture"),
                    ({"frame": "a.dng", "neutral": {"x": 0.5, "y": 0.5}}, "no preview yet"),
                    ({"roll": "unknown"}, "no roll named")):
        with pytest.raises(ValueError, match=msg):
            book.set_print(**kw)
    assert j.get("a.dng")["print"] is None
