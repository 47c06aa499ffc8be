"""`station invert IN... --out DIR`: batch inversion of RAW scans of negatives.

Contract: writes DIR/<stem>.tif (16-bit) and DIR/<stem>.jpg per input;
exit status 0 when every input converted, 1 when some failed, 2 for usage or
configuration errors (bad --out, --base, --model, a print setting out of range).
The print (--exposure, --wb, --contrast, --black, --white) is applied to every
input after the inversion and recorded in the outputs' metadata.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from station.errors import StationError

FORMAT_EXT = {"tiff": ".tif", "jpeg": ".jpg"}


def register(sub) -> None:
    p = sub.add_parser("invert", help="invert negatives (RAW, DNG, TIFF scans) to positives")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files or folders (a folder means every image in it)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("--base", type=Path, metavar="FILE", help="blank film-base frame of the same roll (same light and exposure)")
    p.add_argument("--method", choices=("mlp", "classic"), help="inversion method (default: mlp when a model is installed, else classic)")
    p.add_argument("--model", type=Path, metavar="FILE", help="model file for --method mlp (default: the shipped model)")
    p.add_argument("--format", default="tiff,jpeg", help="comma-separated: tiff,jpeg (default both)")
    p.add_argument("--crop", choices=("none", "auto"), default="none", help="auto: crop to the picture inside the rebate and straighten")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    from station.pipeline.printing import add_arguments

    add_arguments(p)
    p.set_defaults(func=run)


def expand_inputs(items: list[str]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Files and folders → (files to convert, [(path, reason)] for missing ones)."""
    from station.pipeline.decode import IMAGE_EXT

    files: list[Path] = []
    missing: list[tuple[Path, str]] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(c for c in p.iterdir() if c.is_file() and not c.name.startswith(".") and c.suffix.lower() in IMAGE_EXT)
            if not found:
                missing.append((p, "folder holds no images"))
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            missing.append((p, "no such file"))
    return files, missing


def _usage_error(msg: str) -> int:
    print(f"station invert: {msg}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from station.pipeline.base import base_from_blank
    from station.pipeline.convert import ConvertOptions, convert_file
    from station.pipeline.decode import decode
    from station.pipeline.invert import get_inverter

    formats = [f.strip().lower() for f in args.format.split(",") if f.strip()]
    formats = ["tiff" if f in ("tif", "tiff") else "jpeg" if f in ("jpg", "jpeg") else f for f in formats]
    bad = [f for f in formats if f not in FORMAT_EXT]
    if bad or not formats:
        return _usage_error(f"--format: unknown format {', '.join(bad) or '(none)'} (choose from tiff, jpeg)")
    from station.pipeline.printing import PrintError, describe, from_args

    try:
        print_settings = from_args(args)
    except PrintError as exc:
        return _usage_error(str(exc))
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _usage_error(f"--out {args.out}: cannot create the folder ({exc.strerror})")
    if not os.access(args.out, os.W_OK | os.X_OK):
        return _usage_error(f"--out {args.out}: folder is not writable")
    try:
        inverter = get_inverter(args.method, args.model)
    except StationError as exc:
        return _usage_error(f"--model {exc}" if exc.path else str(exc))
    base = None
    if args.base:
        try:
            base = base_from_blank(decode(args.base).rgb)
        except StationError as exc:
            return _usage_error(f"--base {exc}")
        except ValueError as exc:
            return _usage_error(f"--base {args.base}: {exc}")
    files, failures = expand_inputs(args.inputs)
    from station.ingest.pairs import drop_camera_jpegs  # RAW+JPEG: the RAW wins

    files = drop_camera_jpegs(files, say=lambda line: print(line, file=sys.stderr))
    for path, reason in failures:
        print(f"error: {path}: {reason}", file=sys.stderr)
    options = ConvertOptions(inverter=inverter, base=base, crop=args.crop, overwrite=args.overwrite,
                             print=None if print_settings.identity else print_settings)
    converted = 0
    seen_stems: set[str] = set()
    t_start = time.perf_counter()
    bar = tqdm(files, unit="frame", disable=len(files) < 2 or not sys.stderr.isatty(), file=sys.stderr)
    for src in bar:
        bar.set_postfix_str(src.name)
        if src.stem in seen_stems:
            failures.append((src, f"another input has the same name {src.stem!r}; outputs would clash"))
            print(f"error: {failures[-1][0]}: {failures[-1][1]}", file=sys.stderr)
            continue
        seen_stems.add(src.stem)
        outputs = {f: args.out / f"{src.stem}{FORMAT_EXT[f]}" for f in formats}
        try:
            convert_file(src, outputs, options)
            converted += 1
        except StationError as exc:
            failures.append((src, exc.reason))
            tqdm.write(f"error: {exc}", file=sys.stderr)
    elapsed = time.perf_counter() - t_start
    total = converted + len(failures)
    print(
        f"{converted} of {total} converted, {len(failures)} failed ({getattr(inverter, 'name', 'inverter')}, "
        f"{'' if print_settings.identity else 'print: ' + describe(print_settings) + ', '}"
        f"{elapsed:.1f} s) → {args.out}",
        file=sys.stderr,
    )
    return 0 if not failures else 1
