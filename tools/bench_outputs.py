"""What the output choices cost on a full-size master (docs/METADATA.md).

    PYTHONPATH=. .venv/bin/python tools/bench_outputs.py [--mp 24] [--runs 3]

Times, on a synthetic uint16 positive of --mp megapixels: the colour-space conversion
(colourspace.convert) per space, and writing the 16-bit TIFF (sRGB, with the EXIF IFD and XMP)
to a temporary folder.  Best of --runs.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def best(fn, runs):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mp", type=float, default=24.0)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    from station.pipeline.colourspace import CHOICES, convert
    from station.pipeline.write import write_positive

    h = int((a.mp * 1e6 / 1.5) ** 0.5)
    w = int(h * 1.5)
    rng = np.random.default_rng(0)
    pos = rng.integers(0, 65535, (h, w, 3), dtype=np.uint16)
    print(f"{w}x{h} uint16 ({w * h / 1e6:.1f} MP), best of {a.runs}")
    for space in CHOICES[1:]:
        print(f"  convert to {space:<11} {best(lambda: convert(pos, space), a.runs):6.2f} s")
    meta = {"make": "Station", "model": "Bench", "datetime_original": "2026:01:02 03:04:05", "film_stock": "Kodak Portra 400",
            "roll": "r1", "frame": 7, "station_source": "bench.dng"}
    with tempfile.TemporaryDirectory() as d:
        n = [0]

        def write(m):
            n[0] += 1
            write_positive({"tiff": Path(d) / f"{n[0]}.tif"}, pos, m)

        print(f"  TIFF write, sRGB, EXIF IFD + XMP  {best(lambda: write(meta), a.runs):6.2f} s")
        print(f"  TIFF write, display-p3           {best(lambda: write({**meta, 'station_colour_space': 'display-p3'}), a.runs):6.2f} s")


if __name__ == "__main__":
    main()
