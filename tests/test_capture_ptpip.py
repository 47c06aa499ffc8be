"""CameraService against real libgphoto2 talking PTP/IP to the emulator.

Faults: busy (0x2019 -> -110), a dropped link, a camera that stops answering.
The ledger check in each: every frame the camera made is in incoming/ exactly
once, byte for byte."""
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))




from ptpip_emulator import EmulatedCamera as PtpIpCamera, free_port  # noqa: E402
from station.capture.camera import (  # noqa: E402
    CameraBusyError, CameraService, CaptureOptions, NoCameraError,
)

pytest.importorskip("gphoto2")


@pytest.fixture
def emu():
    cam = PtpIpCamera().start()
    yield cam
    cam.stop()


def service(emu, tmp_path, **kw):
    states = []
    files = []
    opts = kw.pop("options", CaptureOptions(capture_timeout=5, busy_delay=0.05))
    svc = CameraService(tmp_path / "incoming", emu.address, options=opts, hang_timeout=kw.pop("hang_timeout", 1.5),
                        backoff=(0.1, 0.5), on_state=states.append, on_file=files.append, **kw)
    svc.start()
    assert svc.wait_ready(5), svc.snapshot()
    svc.states, svc.files = states, files
    return svc


def ledger(emu, incoming: Path):
    """Every frame the camera made is in incoming/ exactly once, unchanged."""
    got = sorted(p.read_bytes() for p in incoming.rglob("*") if p.is_file())
    made = sorted(o.data for o in emu.captured)
    assert got == made, f"{len(got)} files in incoming for {len(made)} frames made"
    assert not [p for p in incoming.rglob(".*")], "temporary files left behind"


def test_capture_downloads_complete_file(emu, tmp_path):
    svc = service(emu, tmp_path)
    try:
        files = svc.capture().result(10)
        assert len(files) == 1 and files[0].kind == "raw" and files[0].source == "trigger"
        assert files[0].path.suffix == ".dng" and files[0].path.parent == tmp_path / "incoming"
        assert files[0].path.read_bytes() == emu.captured[0].data
        assert svc.files == [files[0].path]
        assert "InitiateCapture" in emu.ops and "GetObject" in emu.ops
        assert emu.files(), "kept on the card by default"
        ledger(emu, tmp_path / "incoming")
    finally:
        svc.stop()


def test_camera_side_shutter_is_downloaded(emu, tmp_path):
    svc = service(emu, tmp_path)
    try:
        emu.press_shutter()
        deadline = time.monotonic() + 5
        while not svc.files and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(svc.files) == 1
        assert svc.files[0].read_bytes() == emu.captured[0].data
        ledger(emu, tmp_path / "incoming")
    finally:
        svc.stop()


@pytest.mark.parametrize("jpeg_first", [False, True])
def test_raw_plus_jpeg_either_order_and_delete_after_download(tmp_path, jpeg_first):
    with PtpIpCamera(raw_plus_jpeg=True, jpeg_first=jpeg_first) as emu:
        svc = service(emu, tmp_path, options=CaptureOptions(keep_on_card=False, capture_timeout=5))
        try:
            files = svc.capture().result(10)
            kinds = sorted(f.kind for f in files)
            assert kinds == ["jpeg", "raw"]
            assert len({f.shot for f in files}) == 1
            assert {f.path.suffix for f in files} == {".dng", ".jpg"}
            assert emu.files() == [], "deleted from the card after the download"
            assert "DeleteObject" in emu.ops
        finally:
            svc.stop()


def test_second_file_after_capture_complete_belongs_to_the_same_shot(tmp_path):
    from station.capture.roll import RollStore

    store = RollStore(tmp_path / "state", tmp_path / "incoming")
    roll = store.new(name="r")
    with PtpIpCamera(raw_plus_jpeg=True, late_second_s=0.7) as emu:
        svc = service(emu, tmp_path, namer=roll.namer, on_captured=roll.record)
        try:
            files = svc.capture().result(10)
            assert [f.kind for f in files] == ["raw"]  # the capture ended before the late JPEG
            assert wait_until(lambda: len(svc.files) == 2)
            assert sorted(p.name for p in (tmp_path / "incoming" / "r").iterdir()) == ["01.dng", "01.jpg"]
            assert [r["frame"] for r in store.get("r").frames] == [1]
        finally:
            svc.stop()


def wait_until(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_jpeg_dropped_when_not_wanted(tmp_path):
    with PtpIpCamera(raw_plus_jpeg=True) as emu:
        svc = service(emu, tmp_path, options=CaptureOptions(keep_jpeg=False, capture_timeout=5))
        try:
            files = svc.capture().result(10)
            assert [f.kind for f in files] == ["raw"]
            assert [p.suffix for p in (tmp_path / "incoming").iterdir()] == [".dng"]
        finally:
            svc.stop()


def test_busy_camera_is_retried_and_reported(emu, tmp_path):
    svc = service(emu, tmp_path)
    try:
        emu.fail_next("busy", "InitiateCapture", count=2)
        files = svc.capture().result(10)
        assert len(files) == 1
        snap = svc.snapshot()
        assert snap["faults"].get("busy") == 2 and "-110" in snap["last_error"]
        assert snap["state"] == "ready" and snap["reconnects"] == 0
        emu.fail_next("busy", "InitiateCapture", count=50)
        with pytest.raises(CameraBusyError, match="busy"):
            svc.capture().result(10)
        ledger(emu, tmp_path / "incoming")
    finally:
        svc.stop()


@pytest.mark.parametrize("fault,op", [("drop", "GetObject"), ("drop_after_capture", None), ("hang", "GetObject")])
def test_fault_during_capture_reconnects_without_losing_or_duplicating(emu, tmp_path, fault, op):
    svc = service(emu, tmp_path)
    try:
        svc.capture().result(10)
        emu.fail_next(fault, op)
        try:
            files = svc.capture().result(15)  # resolved by the download after the reconnect
        except Exception:
            print("EMULATOR OPS", emu.ops)
            raise
        assert len(files) == 1 and files[0].source == "recovered"
        snap = svc.snapshot()
        assert snap["reconnects"] >= 1 and snap["state"] == "ready"
        assert any(s["state"] == "reconnecting" for s in svc.states)
        if fault == "hang":
            assert "stopped answering" in snap["last_error"] and snap["faults"].get("hung") == 1
        # and the camera works normally afterwards
        svc.capture().result(10)
        emu.press_shutter()
        deadline = time.monotonic() + 5
        while len(svc.files) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(emu.captured) == 4
        ledger(emu, tmp_path / "incoming")
    finally:
        svc.stop()


def test_camera_dropped_while_idle_is_noticed_and_reconnected(emu, tmp_path):
    svc = service(emu, tmp_path)
    try:
        emu.drop()
        deadline = time.monotonic() + 5
        while svc.snapshot()["reconnects"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert svc.snapshot()["reconnects"] >= 1
        assert svc.wait_ready(5)
        assert len(svc.capture().result(10)) == 1
        ledger(emu, tmp_path / "incoming")
    finally:
        svc.stop()


def test_capture_without_camera_fails_fast(tmp_path):
    emu = PtpIpCamera(port=free_port())  # never started: nothing answers on the port
    svc = CameraService(tmp_path / "incoming", emu.address, backoff=(0.2, 0.5), hang_timeout=2)
    svc.start()
    try:
        deadline = time.monotonic() + 5
        while svc.snapshot()["last_error"] is None and time.monotonic() < deadline:
            time.sleep(0.02)
        fut = svc.capture()
        with pytest.raises(NoCameraError, match="no camera connected"):
            fut.result(10)  # refused with a reason, not queued until a camera appears
        assert svc.snapshot()["state"] in ("disconnected", "connecting", "reconnecting")
        assert not (tmp_path / "incoming").exists() or not list((tmp_path / "incoming").iterdir())
    finally:
        svc.stop()


def test_camera_appearing_later_is_picked_up(tmp_path):
    svc = None
    emu = PtpIpCamera(port=free_port())
    try:
        svc = CameraService(tmp_path / "incoming", emu.address, backoff=(0.1, 0.3), hang_timeout=2)
        svc.start()
        time.sleep(0.3)
        with pytest.raises(NoCameraError):
            svc.capture().result(1)
        emu.start()  # switched on
        assert svc.wait_ready(5)
        assert len(svc.capture().result(10)) == 1
    finally:
        if svc:
            svc.stop()
        emu.stop()


def test_camera_exits_do_not_close_other_files(emu, tmp_path):
    """libgphoto2's PTP/IP exit closes fd 0; the service keeps fd 0 on /dev/null so
    a file opened later (here a pipe) is not closed by the next camera exit."""
    import os

    for _ in range(2):
        svc = service(emu, tmp_path)
        svc.stop()
        r, w = os.pipe()
        svc = service(emu, tmp_path)
        svc.stop()
        os.write(w, b"x")  # raises EBADF if a camera exit closed it
        assert os.read(r, 1) == b"x"
        os.close(r)
        os.close(w)
    os.fstat(0)


def test_usb_claim_message_names_gvfs_and_the_fix():
    from station.capture.camera import describe_gp_error

    class E(Exception):
        code = -53

    msg = describe_gp_error(E("Could not claim the USB device"), "usb:001,004")
    assert "gvfs-gphoto2-volume-monitor" in msg and "systemctl --user" in msg and "-53" in msg


def test_write_failure_fails_the_request_keeps_the_camera_and_recovers_later(emu, tmp_path):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "blocker").write_bytes(b"")  # a file where the namer wants a folder: writes fail
    broken = {"on": True}

    def namer(info):
        return ("blocker/" if broken["on"] else "") + info.camera_name

    svc = service(emu, tmp_path, namer=namer)
    try:
        with pytest.raises(Exception, match="cannot write"):
            svc.capture().result(10)
        snap = svc.snapshot()
        assert snap["state"] == "ready" and snap["faults"].get("write") == 1
        assert emu.files(), "the file stays on the camera"
        broken["on"] = False
        emu.drop()  # the next (re)connect scans the card and fetches what was not downloaded
        assert wait_until(lambda: len(svc.files) == 1, 10)
        assert svc.files[0].read_bytes() == emu.captured[0].data
    finally:
        svc.stop()
