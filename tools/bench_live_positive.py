#!/usr/bin/env python3
"""CPU the live positive's thread spends per live-view frame, as `station demo --live` runs it:
decode the JPEG, convert (tone map, the frame's level, base, the roll's rendering through the
LUT), encode the positive JPEG; frames arriving at --fps (so the live view's own base estimate,
once a second, and its metering, every 0.25 s, recur as they do live).  Also the CPU of learning
one (live view, RAW) pair with --pairs kept.  Load-independent enough to compare two versions
of the code on a shared machine (run it with PYTHONPATH at the other checkout).

    .venv/bin/python tools/bench_live_positive.py [--metered] [--frames 40] [--rounds 3] [--pairs 3]

--metered: no roll rendering (the live view meters itself on its own base, as before the roll's
analysis has three frames -- and, before the fix of the roll lookup, always).
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--metered", action="store_true")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--method", default=None, help="inversion method (default: the station's default)")
    args = ap.parse_args()
    import station.capture.live as live
    from station.capture.livescene import LiveScene
    from station.pipeline.invert import get_inverter
    from station.pipeline.roll import Rendering

    inv = get_inverter(args.method)
    rendering = Rendering(base=(0.68, 0.408, 0.238), A=(1.31, 1.21, 1.15), b=(-0.33, -0.33, -0.33))
    scene = LiveScene(seed=1)
    jpegs = [scene.live_jpeg() for _ in range(args.frames)]
    settings = (lambda: (inv, None)) if args.metered else (lambda: (inv, None, None, rendering))
    pos = live.LivePositive(None, settings)
    raw = scene.raw_linear()
    lv0 = live.decode_jpeg(jpegs[0], pos.size)
    for _ in range(args.pairs):
        pos.tone.learn(lv0, raw)

    def frame(data: bytes) -> bytes:
        return live._jpeg(pos.convert_u8(live.decode_jpeg(data, pos.size)), pos.quality)

    for data in jpegs[:5]:  # warm (numba loads its cache, the LUT is compiled)
        frame(data)
    cpu0 = time.process_time()
    for _ in range(args.rounds):
        for data in jpegs:
            frame(data)
            time.sleep(1 / args.fps)
    per_frame = (time.process_time() - cpu0) / (args.rounds * len(jpegs))
    others = [live.decode_jpeg(scene.live_jpeg(), pos.size) for _ in range(3)]
    cpu0 = time.process_time()
    for lv in others:
        pos.tone.learn(lv, raw)
    learn = (time.process_time() - cpu0) / len(others)
    print(f"live positive ({'metered' if args.metered else 'the roll rendering'}, {inv.name}): "
          f"{1000 * per_frame:.1f} ms CPU per frame (decode, convert, JPEG; frames at {args.fps:g}/s); "
          f"learning a pair {1000 * learn:.0f} ms CPU ({pos.tone.pairs} pairs kept); "
          f"load average {[round(v, 2) for v in os.getloadavg()]} ({os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
