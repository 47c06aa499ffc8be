#!/usr/bin/env python3
"""Per-frame costs of the live view's parts, without a camera: the PTP/IP emulator making one
live-view JPEG (station.capture.livescene), and the live positive's conversion of one frame
through the default inverter's LUT -- the one-pass 8-bit path (station.capture.livelut) against
the float path it replaced (density frame -> LutInverter -> clip -> uint8), checked equal; the
emulator with numba and with its numpy fallback (the way it was done before).
Prints min and median milliseconds over --n frames, and the load average.

    .venv/bin/python tools/bench_live_frame.py [--n 10] [--method classic]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np


def _times(fn, n: int) -> str:
    fn()  # warm (numba compiles or loads its cache)
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return f"min {1000 * ts[0]:.1f} ms, median {1000 * ts[len(ts) // 2]:.1f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--method", default=None, help="inversion method (default: the station's default)")
    args = ap.parse_args()
    from station.capture import livelut
    from station.capture.live import ToneMap, _take, _to_u8, decode_jpeg
    from station.capture.livescene import LiveScene
    from station.pipeline.base import estimate_base
    from station.pipeline.invert import get_inverter
    from station.pipeline.lutinvert import compiled
    from station.pipeline.normalise import density

    from station.capture import livescene

    scene = LiveScene(seed=3)
    print(f"emulator, one live-view JPEG ({scene.lv_size[0]}x{scene.lv_size[1]}): {_times(scene.live_jpeg, args.n)}")
    nb, livescene._nb = livescene._nb, None  # its numpy fallback: the tone curve and noise as they were done before
    print(f"emulator, the same with numpy only: {_times(scene.live_jpeg, args.n)}")
    livescene._nb = nb
    fn = compiled(get_inverter(args.method))
    lv = decode_jpeg(scene.live_jpeg())
    tone = ToneMap()
    base = estimate_base(tone.to_linear(lv[::2, ::2]))
    dtab = np.ascontiguousarray(density(np.ascontiguousarray(tone.table.T[:, None, :]), base.rgb)[:, 0, :].T,
                                np.float32)
    affine = fn.frame_affine(_take(dtab, lv))

    def float_path():
        return _to_u8(fn(_take(dtab, lv), affine=affine))

    def one_pass():
        return livelut.apply_u8(fn.lut, lv, livelut.shaper(fn.lut, dtab, affine), fn.method)

    diff = int(np.abs(float_path().astype(int) - one_pass()).max())
    print(f"live positive, {fn.name}: float path {_times(float_path, args.n)}; one pass {_times(one_pass, args.n)}; "
          f"largest difference {diff} (of 255)")
    print(f"load average {[round(v, 2) for v in os.getloadavg()]} ({os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
