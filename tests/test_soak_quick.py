"""The short fault-injection soak (make test): the real daemon, the PTP/IP camera emulator
through the daemon's camera service, writers dropping files (renamed in, written in place,
slowly), and a few faults of every kind (kill -9 of the daemon and of a worker, camera busy /
dropped / hung, a USB-style disconnect, truncated or bit-flipped files, a full output disk,
slow writers, clock jumps).  The ledger check at the end must be clean.

The full run (>= 500 frames, >= 50 faults of every kind) is tests/test_soak_full.py
(make soak) and tools/soak.py."""
import os

from soak.harness import KINDS, Soak


def test_quick_soak_loses_nothing(tmp_path):
    frames = int(os.environ.get("STATION_SOAK_QUICK_FRAMES", "36"))
    per_kind = int(os.environ.get("STATION_SOAK_QUICK_PER_KIND", "3"))
    res = Soak(tmp_path / "soak", frames=frames, seed=int(os.environ.get("STATION_SOAK_SEED", "7")),
               faults_per_kind=per_kind).run()
    print("\nquick soak:", res.figures())
    assert res.problems == []
    assert all(res.faults[k] == per_kind for k in KINDS), res.faults
    assert res.lost == 0 and res.duplicates == 0 and res.altered == 0 and res.temp_left == 0
    assert res.daemon_alive and res.clean_exit == 0
    assert res.frames >= frames - res.camera_failed_captures
    assert res.bad == per_kind and res.bad_rejected + res.bad_decoded == res.bad
    assert res.restarts == per_kind
    # the camera faults reached the camera service (counted by the service itself)
    assert res.camera_seen.get("busy", 0) >= 1, res.camera_seen
    assert res.camera_seen.get("reconnects", 0) >= 1, res.camera_seen
