"""`station export-lut [--model FILE] [--method M] [--size N] OUT.cube`: the inversion as a .cube.

The cube holds the pixel-wise half of the inversion (the MLP, or the classic
curve), sampled on an N^3 grid over the model's z range, in the Resolve /
Adobe "Cube LUT" 1.0 format that DaVinci Resolve, darktable (lut3d),
Photoshop and ffmpeg (lut3d filter) read: LUT_3D_SIZE N, DOMAIN_MIN 0 0 0,
DOMAIN_MAX 1 1 1, red varying fastest, output sRGB-encoded in [0,1].

Input encoding the cube expects, per channel c:
    D_c = -log10(camera_rgb_c / film_base_rgb_c)      density above the film base
    z_c = A_c * D_c + b_c                              the model's normaliser
    x_c = (z_c - lo_c) / (hi_c - lo_c)                 what the cube reads, in [0,1]
lo/hi are in the header comments.  With `--frame RAW` the roll's calibration
is measured from that frame (its film base and normaliser A, b) and the
cube's input becomes the density itself, x_c = D_c / DMAX (DMAX = 3.0) - a
"log density" encoding of a negative scan that a colourist can produce from
a linear scan with a per-channel log and a gain.

The print flags (--exposure, --wb, --contrast, --black, --white; as
`station invert`) compose the print after the inversion into the cube: its
output is then the adjusted positive.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

DMAX = 3.0


def register(sub) -> None:
    p = sub.add_parser("export-lut", help="write the inversion as a .cube 3D LUT (Resolve, darktable, ffmpeg)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("out", metavar="OUT.cube", help="the .cube file to write")
    p.add_argument("--model", default=None, help="model file (method mlp)")
    p.add_argument("--method", default=None, choices=("mlp", "classic"), help="inversion method (default: installed default)")
    p.add_argument("--size", type=int, default=65, help="grid points per axis (default 65; 33 for older tools)")
    p.add_argument("--frame", default=None, metavar="RAW",
                   help="calibrate on this frame: bake its base and normaliser in, input = density / 3.0")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    from station.pipeline.printing import add_arguments

    add_arguments(p)
    p.set_defaults(func=run)


def build(inverter, size: int, frame: str | None = None, print_settings=None):
    """The Lut3D to export and the header comments describing its input (with the print
    composed after the inversion when `print_settings` is given and not identity)."""
    lut, comments = _build(inverter, size, frame)
    if print_settings is not None and not print_settings.identity:
        from station.model.lut import Lut3D
        from station.pipeline.printing import describe, printed_table

        lut = Lut3D(printed_table(lut.table, print_settings), lut.lo, lut.hi, dict(lut.meta))
        comments.append("print after the inversion: " + describe(print_settings) + " ("
                        + ", ".join(f"{k} {v:g}" for k, v in print_settings.to_dict().items()) + ")")
    return lut, comments


def _build(inverter, size: int, frame: str | None = None):
    from station.model.lut import Lut3D, bake

    if not all(hasattr(inverter, a) for a in ("pixel_fn", "z_range", "normaliser")):
        raise TypeError(f"{getattr(inverter, 'name', type(inverter).__name__)} has no pixel-wise part to bake")
    lo, hi = (np.asarray(v, np.float64).reshape(-1) * np.ones(3) for v in inverter.z_range)
    name = getattr(inverter, "name", "model")
    if frame is None:
        lut = bake(inverter.pixel_fn, (lo, hi), size)
        comments = [f"station {name} inversion, input x = (z - lo) / (hi - lo), z = normalised density (A*D + b)"]
        return lut, comments
    from station.pipeline.base import estimate_base
    from station.pipeline.fastdecode import decode_fast
    from station.pipeline.lutinvert import sample_frame
    from station.pipeline.normalise import density

    dec = decode_fast(frame, long_side=1600)
    base = estimate_base(dec.rgb)
    D = density(dec.rgb, base.rgb)
    A, b = inverter.frame_affine(sample_frame(D)) if hasattr(inverter, "frame_affine") else (np.ones(3), np.zeros(3))
    A, b = np.asarray(A, np.float64), np.asarray(b, np.float64)

    def fn(x):  # x in [0,1]: density / DMAX
        return inverter.pixel_fn((np.asarray(x, np.float32) * DMAX * A + b).astype(np.float32))

    lut = bake(fn, (np.zeros(3), np.ones(3)), size)
    lut = Lut3D(lut.table, np.zeros(3), np.ones(3))
    comments = [
        f"station {name} inversion calibrated on {Path(frame).name}",
        f"input x_c = D_c / {DMAX:g}, D_c = -log10(rgb_c / base_c), film base (camera RGB) = "
        + " ".join(f"{v:.6g}" for v in base.rgb),
        "normaliser A = " + " ".join(f"{v:.6g}" for v in A) + " ; b = " + " ".join(f"{v:.6g}" for v in b),
    ]
    return lut, comments


def run(args) -> int:
    from station.errors import StationError
    from station.model.lut import write_cube
    from station.pipeline.invert import get_inverter

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        print(f"station export-lut: {out}: already exists (use --overwrite)", file=sys.stderr)
        return 2
    if not out.parent.is_dir():
        print(f"station export-lut: {out}: no such folder {out.parent}", file=sys.stderr)
        return 2
    if not os.access(out.parent, os.W_OK | os.X_OK):
        print(f"station export-lut: {out}: folder {out.parent} is not writable", file=sys.stderr)
        return 2
    if args.method == "classic" and args.model:
        print("station export-lut: --model is for --method mlp; --method classic uses no model (drop one of them)",
              file=sys.stderr)
        return 2
    if not 2 <= args.size <= 129:
        print(f"station export-lut: --size must be in 2..129, got {args.size}", file=sys.stderr)
        return 2
    from station.pipeline.printing import PrintError, from_args

    try:
        print_settings = from_args(args)
    except PrintError as exc:
        print(f"station export-lut: {exc}", file=sys.stderr)
        return 2
    try:
        inverter = get_inverter(args.method, args.model)
        lut, comments = build(inverter, args.size, args.frame, print_settings)
    except (StationError, TypeError, ValueError) as exc:
        print(f"station export-lut: {exc}", file=sys.stderr)
        return 2
    if args.frame is not None:
        # the header's station-lo/hi describe z for uncalibrated cubes only
        lut.meta["calibrated"] = True
    try:
        write_cube(out, lut, title=f"station {getattr(inverter, 'name', 'inversion')}", comments=comments)
    except OSError as exc:
        print(f"station export-lut: {out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({lut.size}^3, {'calibrated on ' + Path(args.frame).name if args.frame else 'input: normalised density'})")
    return 0
