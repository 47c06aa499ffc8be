"""Auto-capture end to end on real libgphoto2: the PTP/IP emulator's live view (Nikon
operations) shows a scripted negative strip with noise, flicker and hand shake; the
station's settle watcher pulls live-view frames through CameraService.preview() and
fires CameraService.capture() when a new frame has settled.  The emulator logs where
the strip was at every shot: N advances must give N captures, one per picture, none
while the strip moved.  (The 36-advance run: tools/live_soak.py.)
"""
from __future__ import annotations

import pytest

pytest.importorskip("gphoto2")

from ptpip_emulator import EmulatedCamera, camera_service  # noqa: E402

from station.capture.livescene import run_advances  # noqa: E402


def test_six_advances_give_six_captures_none_double_none_while_moving(tmp_path):
    with EmulatedCamera(live={"seed": 3}) as cam:
        svc = camera_service(tmp_path / "incoming", cam, None)
        try:
            res = run_advances(cam, svc, advances=6)
        finally:
            svc.stop()
    print(f"\n[live] {res}")
    log = res["log"]
    assert res["captures"] == 6, res
    assert [e["index"] for e in log] == [1, 2, 3, 4, 5, 6], log  # one per picture: none missed, none double
    assert not any(e["moving"] for e in log), log
    assert all(abs(e["pos"] - e["index"]) < 1e-6 for e in log), log  # the strip stood at the picture
    assert len(list((tmp_path / "incoming").rglob("*.dng"))) == 6
    assert res["previews"] > 30  # live view ran all along (frames between the shots)
