"""Make the README's before/after pictures with the station's own commands.

A scene (scikit-image's bundled photographs) is turned into a colour negative of a
stock the default model never saw in training (film-physics simulation), with film
rebate, sprocket holes and holder edges, saved as a Bayer DNG; then `station invert`
converts it exactly as a user would.  The left half of each pair is the RAW as the
camera saw it (linear data, sRGB-encoded for display), the right half the positive.

    .venv/bin/python tools/readme_images.py [--out docs/img]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from station.model import film
from station.pipeline.decode import decode, linear_to_srgb

SCENES = [("rocket", "fujifilm_pro_400h", 0.0), ("coffee", "kodak_ultramax_400", -0.7)]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    ap.add_argument("--method", default=None)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for i, (name, stock, ev) in enumerate(SCENES):
            scene = film.photo(name, size=640)
            scan = film.simulate(scene, film.ScanParams(stock=stock, scene_ev=ev, seed=i))
            raw = film.add_rebate(scan, seed=i)
            dng = tmp / f"{name}.dng"
            film.write_dng(dng, raw)
            cmd = [sys.executable, "-m", "station", "invert", str(dng), "--out", str(tmp / "out"), "--format", "jpeg"]
            if args.method:
                cmd += ["--method", args.method]
            subprocess.run(cmd, check=True)
            neg = linear_to_srgb(decode(dng).rgb)
            neg = (neg / max(1e-6, np.percentile(neg, 99.5))).clip(0, 1)  # as a camera's display shows it
            pos = np.asarray(Image.open(tmp / "out" / f"{name}.jpg").convert("RGB"), np.float32) / 255
            h = min(neg.shape[0], pos.shape[0])
            rows.append(np.concatenate([neg[:h], np.ones((h, 12, 3), np.float32), pos[:h]], axis=1))
            print(f"{name}: {stock} negative, scene {ev:+.1f} EV -> positive")
    width = max(r.shape[1] for r in rows)
    sheet = np.concatenate([np.pad(r, ((0, 12), (0, width - r.shape[1]), (0, 0)), constant_values=1.0) for r in rows])
    Image.fromarray((sheet * 255 + 0.5).astype(np.uint8)).save(args.out / "before-after.jpg", quality=85)
    print(f"wrote {args.out / 'before-after.jpg'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
