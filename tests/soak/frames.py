"""Frames for the soak: small, unique colour-negative DNGs (400x600 by default)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

H, W = int(os.environ.get("STATION_SOAK_H", "400")), int(os.environ.get("STATION_SOAK_W", "600"))


def negative_dng_bytes(seed: int, h: int = H, w: int = W) -> bytes:
    """A real DNG of a colour negative; the sensor noise is seeded, so every seed is a
    different file."""
    import sys

    tests = str(Path(__file__).resolve().parent.parent)
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from conftest import negative_cfa
    from station.io.dng import write_bayer_dng

    with tempfile.TemporaryDirectory() as d:
        return write_bayer_dng(Path(d) / "f.dng", negative_cfa(h, w, seed)).read_bytes()


def camera_frame(n: int) -> bytes:
    """The PTP/IP emulator's frame source (a top-level function: it is pickled to the child)."""
    return negative_dng_bytes(100_000 + n)
