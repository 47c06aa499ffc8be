"""CameraService on libgphoto2's virtual camera (the one bundled in the gphoto2 wheel)."""

import pytest

pytest.importorskip("gphoto2")

from station.capture import virtual  # noqa: E402
from station.capture.camera import CameraService, CaptureOptions  # noqa: E402
from station.capture.samples import negative_dng_bytes  # noqa: E402


@pytest.fixture
def vcam(tmp_path):
    frames = [negative_dng_bytes(64, 96, seed=i) for i in range(30)]
    with virtual.VirtualCamera(tmp_path / "vcam", frame_size=max(map(len, frames)) + 512, frames=frames) as vc:
        yield vc


def start(vc, tmp_path, **kw):
    svc = CameraService(tmp_path / "incoming", "virtual", options=CaptureOptions(capture_timeout=5),
                        before_connect=vc.before_connect, before_capture=vc.next_frame,
                        session_limit=virtual.SESSION_LIMIT, hang_timeout=5, backoff=(0.1, 0.5), **kw)
    svc.start()
    assert svc.wait_ready(10), svc.snapshot()
    return svc


def test_virtual_camera_serves_each_frame_byte_for_byte(vcam, tmp_path):
    got = []
    svc = start(vcam, tmp_path, on_file=got.append)
    try:
        for i in range(3):
            files = svc.capture().result(10)
            assert len(files) == 1
            f = files[0]
            assert f.kind == "raw" and f.path.suffix == ".dng"  # a DNG served as frame.jpg is a DNG
            assert f.path.read_bytes() == vcam.served[-1]
        assert len({p.read_bytes() for p in got}) == 3, "three different frames, not one image three times"
        import rawpy

        with rawpy.imread(str(got[0])) as raw:  # the padding does not bother LibRaw
            assert raw.raw_image.shape == (64, 96)
    finally:
        svc.stop()


def test_virtual_session_limit_reinitialises_without_losing_frames(vcam, tmp_path):
    svc = start(vcam, tmp_path)
    try:
        n = virtual.SESSION_LIMIT + 4  # past the ~26-per-session limit of the virtual camera if not recycled
        futures = [svc.capture() for _ in range(n)]  # queued back to back, across the re-initialisation
        for f in futures:
            assert len(f.result(20)) == 1
        files = sorted((tmp_path / "incoming").iterdir())
        assert len(files) == n
        assert sorted(p.read_bytes() for p in files) == sorted(vcam.served[1:])
        assert svc.snapshot()["reconnects"] == 0  # planned re-initialisation is not a fault
        assert svc.snapshot()["faults"] == {}
    finally:
        svc.stop()


def test_a_camera_without_live_view_says_so_and_auto_capture_stops(vcam, tmp_path):
    """libgphoto2's virtual camera has no capture_preview: the request fails with a permanent
    NoLiveViewError naming the camera, the camera stays usable, and the live-view watcher
    (auto-capture on a manual carrier) stops instead of asking again every few seconds."""
    from station.capture.camera import NoLiveViewError
    from station.settle import LiveViewWatcher

    svc = start(vcam, tmp_path)
    try:
        with pytest.raises(NoLiveViewError, match="no live view") as ei:
            svc.preview().result(10)
        assert ei.value.permanent and "D750" in str(ei.value)  # the virtual camera calls itself a D750
        again = svc.preview()
        assert again.done(), "known: refused at once, no round trip to the camera"
        with pytest.raises(NoLiveViewError):
            again.result(0)
        assert len(svc.capture().result(10)) == 1  # the camera still shoots
        assert svc.snapshot()["state"] == "ready"

        shots = []
        w = LiveViewWatcher(svc.preview, lambda: shots.append(1), interval=0.05)
        w.start()
        w._thread.join(10)
        assert not w.running and "no live view" in w.snapshot()["last_error"]
        assert w.snapshot()["errors"] == 1 and shots == []
    finally:
        svc.stop()
