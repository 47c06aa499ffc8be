#!/usr/bin/env python3
"""Where the live positive's colour error comes from, on the emulator's strip without a camera:
per picture, the median ΔE00 between the live positive of its live-view frame and the RAW's
preview (both with the roll's rendering, analysed from the pictures' RAWs, as the daemon does),
the live frame made five ways:

  station    the live view as the emulator serves it (noise, JPEG q80, the frame at a random
             level: flicker), the station's learnt table (from the pictures before) and level
  true       the same frame, the camera's true curve as the table, the level read as the station does
  no level   the same frame and true table, read at the table's level (the station before it read levels)
  8-bit      no noise, no JPEG, no flicker: only the live view's 8-bit codes, true table
  +JPEG      the same through JPEG q80

    .venv/bin/python tools/live_de_breakdown.py [--pictures 8] [--seed 4] [--method classic] [--matrix]

--matrix: a camera whose live view mixes its channels (a colour matrix before its curve, as real
cameras render to sRGB; the emulator's does not): the station's per-channel table cannot follow
that ("true" is then the curve alone, without the matrix).
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pictures", type=int, default=8)
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--method", default=None, help="inversion method (default: the station's default)")
    ap.add_argument("--matrix", action="store_true", help="the live view mixes its channels (a colour matrix)")
    args = ap.parse_args()
    from PIL import Image

    from station.capture.live import LivePositive, _raw_linear, decode_jpeg
    from station.capture.livescene import LiveScene, camera_tone
    from station.io.dng import mosaic, write_bayer_dng
    from station.model.metrics import ciede2000
    from station.pipeline.convert import ConvertOptions, convert_file
    from station.pipeline.fastdecode import area_resize
    from station.pipeline.invert import get_inverter
    from station.pipeline.roll import analyse, sample_file

    inv = get_inverter(args.method)
    mix = np.array([[1.25, -0.2, -0.05], [-0.15, 1.3, -0.15], [-0.05, -0.3, 1.35]], np.float32)  # rows sum to 1

    def render(lin: np.ndarray) -> np.ndarray:
        return camera_tone(np.clip(lin @ mix.T, 0, None) if args.matrix else lin)

    x = np.linspace(0, 1.2, 20000, dtype=np.float32)[:, None] * np.ones(3, np.float32)
    y = camera_tone(x) * 255
    truth = np.stack([np.interp(np.arange(256), y[:, c], x[:, c]) for c in range(3)]).astype(np.float32)
    scene = LiveScene(seed=args.seed)
    rng = np.random.default_rng(args.seed)
    w, h = scene.lv_size
    small = lambda a: area_resize(np.ascontiguousarray(a, np.float32), (96, 64))  # noqa: E731

    def jpeg(a: np.ndarray) -> np.ndarray:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, "JPEG", quality=80)
        return decode_jpeg(buf.getvalue())

    with tempfile.TemporaryDirectory() as d:
        shots = []
        for k in range(args.pictures):
            view = scene.render(w, h, float(k)) * np.float32(0.85)  # the RAW's linear RGB
            level = float(1 + rng.uniform(-0.1, 0.1))
            noisy = np.clip(np.round(render(view * level) * 255 + rng.normal(0, scene.noise * 255, view.shape)),
                            0, 255).astype(np.uint8)
            clean = np.clip(np.round(render(view) * 255), 0, 255).astype(np.uint8)
            path = write_bayer_dng(Path(d) / f"{k}.dng", mosaic(np.round(view * 65535).astype(np.uint16), "RGGB"),
                                   "RGGB", black=0, white=65535)
            shots.append((jpeg(noisy), clean, level, path))
        rendering = analyse([sample_file(s[3]) for s in shots], inv)
        station = LivePositive(None, lambda: (inv, None, None, rendering))
        true = LivePositive(None, lambda: (inv, None, None, rendering))
        true.tone.table = truth
        print(f"{inv.name}, the roll's rendering from {rendering.frames} pictures; median dE00 live positive vs preview"
              + (" (the live view through a colour matrix)" if args.matrix else ""))
        print("picture  pairs  level  station   true  no level  8-bit  +JPEG")
        for k, (lv, clean, level, path) in enumerate(shots):
            out = Path(d) / f"{k}.jpg"
            convert_file(path, {"preview": out}, ConvertOptions(inverter=inv, half_size=True, preview_size=max(w, h),
                                                                rendering=rendering))
            prev = small(decode_jpeg(out.read_bytes()).astype(np.float32) / 255)
            de = lambda pos: float(np.median(ciede2000(small(pos), prev)))  # noqa: E731
            row = [de(station.convert(lv)), de(true.convert(lv))]
            no_level = LivePositive(None, lambda: (inv, None, None, rendering))
            no_level.tone.table = truth
            import station.capture.live as live_mod

            keep, live_mod.frame_level = live_mod.frame_level, lambda *a: None
            try:
                row.append(de(no_level.convert(lv)))
            finally:
                live_mod.frame_level = keep
            row += [de(true.convert(clean)), de(true.convert(jpeg(clean)))]
            print(f"{k:7d}  {station.tone.pairs:5d}  {level:5.3f}  " + "  ".join(f"{v:7.2f}" for v in row))
            station.tone.learn(lv, _raw_linear(str(path), (lv.shape[1], lv.shape[0])))
    print(f"load average {[round(v, 2) for v in os.getloadavg()]} ({os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
