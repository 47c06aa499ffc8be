"""Auto-roll on libgphoto2's virtual camera with scripted advance hooks (the real CameraService)."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("gphoto2")

from station.autoroll import DONE, END_OF_FILM, AutoRoll  # noqa: E402
from station.capture import virtual  # noqa: E402
from station.capture.camera import CameraService, CaptureOptions  # noqa: E402
from station.capture.samples import negative_dng_bytes  # noqa: E402
from station.hooks import HookRunner  # noqa: E402


@pytest.fixture
def camera(tmp_path):
    frames = [negative_dng_bytes(64, 96, seed=i) for i in range(12)]
    with virtual.VirtualCamera(tmp_path / "vcam", frame_size=max(map(len, frames)) + 512, frames=frames) as vc:
        svc = CameraService(tmp_path / "incoming", "virtual", options=CaptureOptions(capture_timeout=5),
                            before_connect=vc.before_connect, before_capture=vc.next_frame,
                            session_limit=virtual.SESSION_LIMIT, hang_timeout=5, backoff=(0.1, 0.5))
        svc.start()
        assert svc.wait_ready(10), svc.snapshot()
        try:
            yield svc, vc
        finally:
            svc.stop()


def advance_hook(tmp_path: Path, end_after: int | None) -> list[str]:
    log = tmp_path / "advance.log"
    script = tmp_path / "advance.sh"
    body = f'echo "$STATION_FRAME $STATION_RAW" >> "{log}"\n'
    if end_after is not None:
        body += f'[ "$(wc -l < "{log}")" -ge {end_after} ] && exit 3\n'
    script.write_text("#!/bin/sh\n" + body + "exit 0\n")
    script.chmod(0o755)
    return [str(script)]


def incoming(tmp_path: Path) -> list[Path]:
    return sorted(p for p in (tmp_path / "incoming").rglob("*") if p.is_file() and not p.name.startswith("."))


def test_short_auto_roll_on_the_virtual_camera(camera, tmp_path):
    svc, vc = camera
    done = tmp_path / "complete.txt"
    hooks = HookRunner({"advance": advance_hook(tmp_path, None),
                        "roll_complete": f'echo "$STATION_FRAME $STATION_REASON" > "{done}"'})
    ar = AutoRoll(svc.capture, hooks, settle=0.05, roll="vroll")
    ar.start(frames=4)
    assert ar.wait(60)
    snap = ar.snapshot()
    assert (snap["frame"], snap["reason"], snap["error"]) == (4, DONE, None), snap
    files = incoming(tmp_path)
    assert len(files) == 4
    assert sorted(p.read_bytes() for p in files) == sorted(vc.served[-4:])  # four different frames
    lines = (tmp_path / "advance.log").read_text().splitlines()
    assert [ln.split()[0] for ln in lines] == ["1", "2", "3"]
    assert all(Path(ln.split()[1]).exists() for ln in lines)  # STATION_RAW names the frame just shot
    hooks.stop(timeout=30)
    assert done.read_text().strip() == f"4 {DONE}"


def test_auto_roll_stops_at_end_of_film(camera, tmp_path):
    svc, vc = camera
    hooks = HookRunner({"advance": advance_hook(tmp_path, end_after=2)})
    ar = AutoRoll(svc.capture, hooks, settle=0.0, roll="vroll")
    ar.start(frames=36)
    assert ar.wait(60)
    snap = ar.snapshot()
    assert (snap["frame"], snap["reason"], snap["error"]) == (2, END_OF_FILM, None), snap
    assert len(incoming(tmp_path)) == 2
