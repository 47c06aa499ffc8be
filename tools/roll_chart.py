"""One roll, the same ColorChecker in a dark, a mid and a bright scene: does it render the same?

Makes three negatives with the film generator (station/model/film.py: same stock, same film
and scan exposure; only the scene around the chart differs), writes them as Bayer DNGs with
rebate, sprocket holes and holder edges, inverts them with the real `station invert` per frame
and with `--roll`, and prints the chart's ΔE00 between the frames (mean over the 24 patches,
worst pair of frames):

    .venv/bin/python tools/roll_chart.py [--out DIR] [--methods classic,mlp]

tests/test_roll.py runs the same functions and asserts the figure.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from itertools import combinations
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SCENES = ("dark", "mid", "bright")
PATCH, GAP = 24, 6


def scene(kind: str, size=(360, 540), seed: int = 3) -> np.ndarray:
    """sRGB scene: a procedural 'Mondrian' made dark (night, -4 EV), kept, or made bright (snow)."""
    from station.model.film import procedural_scene, srgb_decode, srgb_encode

    h, w = size
    base = procedural_scene(max(h, w), seed=seed)[:h, :w]
    lin = srgb_decode(base)
    if kind == "dark":
        lin = lin * 2.0 ** -4
    elif kind == "bright":
        lin = 0.55 + 0.4 * lin
    return srgb_encode(np.clip(lin, 0, 1))


def chart_scene(kind: str, size=(360, 540)):
    """The scene with a ColorChecker (lit as in the mid scene) in the centre; returns (sRGB, boxes)."""
    from station.model.film import colorchecker_chart

    img = scene(kind, size)
    cc, boxes = colorchecker_chart(patch=PATCH, gap=GAP)
    y0, x0 = (img.shape[0] - cc.shape[0]) // 2, (img.shape[1] - cc.shape[1]) // 2
    img[y0:y0 + cc.shape[0], x0:x0 + cc.shape[1]] = cc
    return img, [(a + y0, b + y0, c + x0, d + x0) for a, b, c, d in boxes]


def make_roll(folder: Path, stock: str = "kodak_portra_400", scan_ev: float = 0.0, blank_ev: float | None = None):
    """Write dark.dng, mid.dng, bright.dng (and blank.dng when blank_ev is given) into `folder`.

    Returns {name: patch boxes in the DNG's pixel coordinates}."""
    from station.model.film import ScanParams, add_rebate, simulate, write_dng

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, kind in enumerate(SCENES):
        img, boxes = chart_scene(kind)
        neg = simulate(img, ScanParams(stock=stock, scan_ev=scan_ev, seed=10 + i))
        framed = add_rebate(neg, seed=i)
        b = max(4, int(round(0.08 * max(img.shape[:2]))))
        write_dng(folder / f"{kind}.dng", framed)
        out[kind] = [(y0 + b, y1 + b, x0 + b // 2, x1 + b // 2) for y0, y1, x0, x1 in boxes]
    if blank_ev is not None:
        blank = simulate(np.zeros((360, 540, 3)), ScanParams(stock=stock, scan_ev=blank_ev, seed=99))
        # unexposed film: the base (+ grain); the simulator's zero exposure is the base + fog
        write_dng(folder / "blank.dng", add_rebate(blank, seed=9))
    return out


def read_positive(path: Path) -> np.ndarray:
    import tifffile

    return tifffile.imread(str(path)).astype(np.float32) / 65535.0


def chart_de(out_dir: Path, boxes: dict) -> dict:
    """ΔE00 of the chart between every pair of frames: {"mean": worst pair's mean over patches,
    "max": worst patch of any pair, "pairs": {a-b: mean}}."""
    from station.model.metrics import box_means, ciede2000

    patches = {k: box_means(read_positive(out_dir / f"{k}.tif"), boxes[k]) for k in boxes}
    pairs = {}
    worst = 0.0
    for a, b in combinations(boxes, 2):
        de = ciede2000(patches[a], patches[b])
        pairs[f"{a}-{b}"] = float(np.mean(de))
        worst = max(worst, float(np.max(de)))
    return {"mean": max(pairs.values()), "max": worst, "pairs": pairs}


def invert(folder: Path, out: Path, method: str, roll: bool, base: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "station", "invert", *[str(folder / f"{k}.dng") for k in SCENES], "--out", str(out),
           "--method", method, "--format", "tiff,jpeg", "--overwrite"]
    if roll:
        cmd.append("--roll")
    if base is not None:
        cmd += ["--base", str(base)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="keep the DNGs and positives here (default: a temporary folder)")
    ap.add_argument("--methods", default="classic,mlp")
    args = ap.parse_args(argv)
    work = args.out or Path(tempfile.mkdtemp(prefix="roll-chart-"))
    boxes = make_roll(work / "roll")
    print(f"roll: {', '.join(f'{k}.dng' for k in SCENES)} in {work / 'roll'}")
    print("| method | per frame: chart ΔE00 mean (worst pair) | max patch | --roll: mean (worst pair) | max patch |")
    print("|---|---|---|---|---|")
    for method in args.methods.split(","):
        row = [method]
        for roll in (False, True):
            out = work / f"{method}-{'roll' if roll else 'frame'}"
            r = invert(work / "roll", out, method, roll)
            if r.returncode != 0:
                print(r.stderr, file=sys.stderr)
                return 1
            de = chart_de(out, boxes)
            row += [f"{de['mean']:.2f}", f"{de['max']:.2f}"]
        print("| " + " | ".join(row) + " |")
    print(f"positives in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
