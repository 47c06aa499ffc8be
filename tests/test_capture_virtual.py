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
