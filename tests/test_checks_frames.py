"""Frame checks: each fires on a generated bad frame and stays silent on good ones."""
from __future__ import annotations

import numpy as np
import pytest
from negatives import BASE_DENSITY, LIGHT, add_noise, expose, grey_ramp, with_rebate, write_negative_dng
from scipy.ndimage import gaussian_filter

from station.checks import (CheckParams, RollChecks, check_file, check_frame, findings_for, frame_metrics,
                            framing_metrics)
from station.pipeline.base import estimate_base
from station.pipeline.classic import ClassicInverter
from station.pipeline.normalise import density

INV = ClassicInverter()


def textured_scene(seed: int, h: int = 240, w: int = 360, blur: float = 0.0) -> np.ndarray:
    """Reflectances 0.03..0.9: blocks with hard edges over a smooth gradient (detail for focus)."""
    rng = np.random.default_rng(seed)
    blocks = rng.random((h // 6 + 1, w // 6 + 1, 3)).repeat(6, 0).repeat(6, 1)[:h, :w]
    ramp = np.linspace(0, 1, w)[None, :, None] * rng.random(3)
    refl = 0.03 + 0.87 * (0.7 * blocks + 0.3 * ramp)
    if blur:
        refl = gaussian_filter(refl, (blur, blur, 0))
    return refl.astype(np.float32)


def rebate_frame(scan: np.ndarray, left=40, right=40, top=40, bottom=40, scan_ev=0.0, holes=True) -> np.ndarray:
    """A scan inside film rebate of the given widths (px), sprocket holes in the top/bottom rebate."""
    h, w, _ = scan.shape
    H, W = h + top + bottom, w + left + right
    out = np.empty((H, W, 3), np.float32)
    out[:] = LIGHT * 10.0 ** (-BASE_DENSITY) * 2.0 ** scan_ev
    out[top:top + h, left:left + w] = scan
    if holes:
        clear = LIGHT * 2.0 ** scan_ev
        for x in range(10, W - 12, 30):
            if top >= 20:
                out[top // 4:top // 4 + top // 2, x:x + 14] = clear
            if bottom >= 20:
                out[H - bottom // 4 - bottom // 2:H - bottom // 4, x:x + 14] = clear
    return np.minimum(out, 1.0)  # the sensor clips


def positive(linear: np.ndarray, seed: int = 0):
    lin = add_noise(linear, seed)
    base = estimate_base(lin)
    D = density(lin, base.rgb)
    return INV(D), D, lin


def findings_of(linear, seed=0, history=None, roll=None):
    pos, D, lin = positive(linear, seed)
    return check_frame(pos, D, lin, history=history, roll=roll)


def kinds(findings):
    return sorted({f["check"] for f in findings})


GOOD_EV = 0.5  # holes clip, the base does not (as on a well-exposed copy stand)


def good_frame(seed: int) -> np.ndarray:
    return rebate_frame(expose(textured_scene(seed), scan_ev=GOOD_EV), scan_ev=GOOD_EV)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_good_frames_are_silent(seed):
    assert findings_of(good_frame(seed), seed) == []


def test_the_helpers_rebate_frame_is_silent_too():
    lin = with_rebate(expose(grey_ramp()), border=40, holes=True)
    assert findings_of(lin) == []


def test_rebate_widths_are_measured():
    pos, D, lin = positive(rebate_frame(expose(textured_scene(4)), left=20, right=60, top=30, bottom=50))
    fr = framing_metrics(D)
    W, H = 360 + 80, 240 + 80
    assert fr["rebate"]["left"] * W == pytest.approx(20, abs=2)
    assert fr["rebate"]["right"] * W == pytest.approx(60, abs=2)
    assert fr["rebate"]["top"] * H == pytest.approx(30, abs=2)
    assert fr["rebate"]["bottom"] * H == pytest.approx(50, abs=2)


def test_picture_cut_by_the_holder():
    lin = good_frame(5)
    lin[:, :70] = 0.0005  # the holder's edge covers the left rebate and part of the picture
    f = findings_of(lin)
    assert kinds(f) == ["framing"]
    assert "cut at the left" in f[0]["message"]


def test_picture_cut_by_the_image_edge():
    lin = good_frame(6)[:, 55:]  # the camera sees past the rebate: picture runs off the left edge
    f = findings_of(lin)
    assert kinds(f) == ["framing"] and "cut at the left" in f[0]["message"]


def test_picture_off_centre():
    scan = expose(textured_scene(7), scan_ev=GOOD_EV)
    f = findings_of(rebate_frame(scan, left=8, right=72, scan_ev=GOOD_EV))
    assert kinds(f) == ["framing"]
    assert "off-centre" in f[0]["message"] and "left" in f[0]["message"]
    # a small unevenness is normal
    assert findings_of(rebate_frame(scan, left=34, right=46, scan_ev=GOOD_EV)) == []


def test_clipped_film_base():
    ev = 1.6  # base R: 0.45 × 3 → over the white
    lin = rebate_frame(expose(textured_scene(8), scan_ev=ev), scan_ev=ev)
    assert lin[5, 100, 0] >= 0.98  # the rebate really is clipped
    f = findings_of(lin)
    assert "clipping" in kinds(f)
    msg = [x for x in f if x["check"] == "clipping"][0]["message"]
    assert "film base at the sensor's white" in msg and "R" in msg


def test_focus_against_the_roll_median():
    roll = RollChecks()
    for seed in range(10, 15):
        assert findings_of(good_frame(seed), seed, roll, "r1") == [], f"good frame {seed} flagged"
    soft = rebate_frame(expose(textured_scene(15, blur=2.5), scan_ev=GOOD_EV), scan_ev=GOOD_EV)
    f = findings_of(soft, 15, roll, "r1")
    assert kinds(f) == ["focus"]
    assert "soft" in f[0]["message"]
    assert findings_of(good_frame(16), 16, roll, "r1") == []  # and the next sharp frame is fine
    # too few frames in a new roll: no judgement yet
    assert findings_of(soft, 17, roll, "r2") == []


def test_duplicate_of_the_previous_frame():
    roll = RollChecks()
    assert findings_of(good_frame(20), 1, roll, "r") == []
    again = findings_of(good_frame(20), 2, roll, "r")  # same frame, other noise: not advanced
    assert kinds(again) == ["duplicate"]
    assert findings_of(good_frame(21), 3, roll, "r") == []
    # shaken by a pixel or two and a little brighter: still the same frame
    shifted = np.roll(good_frame(21), (2, -2), axis=(0, 1)) * 1.1
    assert kinds(findings_of(np.minimum(shifted, 1.0), 4, roll, "r")) == ["duplicate"]


def test_metrics_are_json_and_findings_reproducible():
    import json

    pos, D, lin = positive(good_frame(30))
    m = frame_metrics(pos, D, lin)
    m2 = json.loads(json.dumps(m))
    assert findings_for(m2) == []
    assert frame_metrics(pos)["framing_known"] is False  # positive only: framing/clipping skipped
    assert findings_for(frame_metrics(pos)) == []


def test_check_file_on_generated_dngs(tmp_path):
    good = write_negative_dng(tmp_path / "good.dng", good_frame(40), seed=1)
    f, m = check_file(good)
    assert f == [], f
    f, m = check_file(good, preview_size=220)  # brought down to a small preview first, as the daemon does
    assert f == [] and m["framing"] is not None, f
    ev = 1.6
    bad = write_negative_dng(tmp_path / "clipped.dng", rebate_frame(expose(textured_scene(41), scan_ev=ev), scan_ev=ev), seed=2)
    f, m = check_file(bad)
    assert "clipping" in kinds(f)


def test_params_are_honoured():
    lin = rebate_frame(expose(textured_scene(50), scan_ev=GOOD_EV), left=20, right=60, scan_ev=GOOD_EV)
    pos, D, lin = positive(lin)
    assert "framing" in kinds(check_frame(pos, D, lin))
    assert check_frame(pos, D, lin, params=CheckParams(uneven_ratio=0.2)) == []


def test_a_tight_crop_without_rebate_is_not_judged_for_framing():
    lin = expose(textured_scene(60))  # the picture to every edge, as a film scanner delivers it
    assert findings_of(lin) == []


def test_real_scanner_negative_is_silent(shared_dir):
    f, m = check_file(shared_dir / "samples" / "negatives" / "plustek-hdr-48bit.tif")
    assert f == [] and m["sharpness"] > 0
