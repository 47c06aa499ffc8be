"""`station invert IN... --out DIR`: batch inversion of RAW scans of negatives.

Contract: writes DIR/<stem>.tif (16-bit) and DIR/<stem>.jpg per input, together
(a frame's outputs appear together or not at all); exit status 0 when every input
converted (or was already complete), 1 when some failed, 2 for usage or
configuration errors (bad --out, --base, --flatfield, --model, a print setting out of range).
The print (--exposure, --wb, --contrast, --black, --white) is applied to every
input after the inversion and recorded in the outputs' metadata.  --film picks the film type
(colour negative, black-and-white negative, slide, or auto-detected: pipeline/films.py).

Resuming: running the same command again skips the frames whose outputs are all
there (made from the same input: its name is in their ImageDescription) and remakes,
both together, any frame an interrupted run left half written.  An output of another
origin at an output's name is never replaced without --overwrite.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from station.errors import StationError

FORMAT_EXT = {"tiff": ".tif", "jpeg": ".jpg", "linear": "-linear.tif"}


def register(sub) -> None:
    p = sub.add_parser("invert", help="invert negatives (RAW, DNG, TIFF scans) to positives")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files or folders (a folder means every image in it)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("--base", type=Path, metavar="FILE", help="blank film-base frame of the same roll (same light and exposure)")
    p.add_argument("--flatfield", type=Path, metavar="FILE",
                   help="flat field: a frame of the bare light source (no film; a RAW) or a saved .npz "
                        "(`station roll flatfield`); its fall-off is divided out before the base and the inversion")
    p.add_argument("--method", choices=("mlp", "classic"), help="inversion method (default: mlp when a model is installed, else classic)")
    p.add_argument("--model", type=Path, metavar="FILE", help="model file for --method mlp (default: the shipped model)")
    p.add_argument("--format", default="tiff,jpeg",
                   help="comma-separated: tiff,jpeg,linear-tiff (default tiff,jpeg; linear-tiff: the linear scan "
                        "divided by the film base, before the inversion and print, as <name>-linear.tif)")
    p.add_argument("--crop", choices=("none", "auto"), default="none", help="auto: crop to the picture inside the rebate and straighten")
    p.add_argument("--recursive", "-r", action="store_true",
                   help="also the images in a folder's sub-folders (outputs keep the sub-folders)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip complete frames)")
    from station.pipeline.printing import add_arguments

    add_arguments(p)
    p.add_argument("--film", choices=("colour", "bw", "slide", "auto"), default="colour",
                   help="film type: colour (C-41 negative, default), bw (silver black-and-white negative: neutral "
                        "output), slide (E-6 positive: not inverted), auto (detected per frame from the rebate "
                        "and the picture, logged)")
    from station.commands.output_options import add_output_arguments  # --stock, --name, --colour-space, ...

    add_output_arguments(p)
    p.add_argument("--roll", action="store_true",
                   help="the inputs are one roll: analyse them once (film base, density range, balance, "
                        "exposure) and render every frame with that one rendering")
    p.set_defaults(func=run)


def expand_inputs(items: list[str], recursive: bool = False, notes: list | None = None,
                  rel: dict | None = None) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Files and folders → (files to convert, [(path, reason)] for missing ones).

    A folder means the images in it; with `recursive` those of its sub-folders too (`rel`
    gets each one's sub-folder, relative to the folder given).  Without it, sub-folders
    that hold images are named in `notes` ((folder, message)), never skipped silently."""
    from station.pipeline.decode import IMAGE_EXT

    def image(c: Path) -> bool:
        return c.is_file() and not c.name.startswith(".") and c.suffix.lower() in IMAGE_EXT

    files: list[Path] = []
    missing: list[tuple[Path, str]] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            if recursive:
                found = sorted(c for c in p.rglob("*") if image(c)
                               and not any(part.startswith(".") for part in c.relative_to(p).parts))
                if rel is not None:
                    rel.update({c: c.parent.relative_to(p) for c in found})
            else:
                found = sorted(c for c in p.iterdir() if image(c))
                subs = sorted(c.name for c in p.iterdir() if c.is_dir() and not c.name.startswith(".")
                              and any(image(f) for f in c.rglob("*")))
                if subs and notes is not None:
                    notes.append((p, f"{len(subs)} sub-folder(s) with images not searched ("
                                     f"{', '.join(subs[:3])}{', ...' if len(subs) > 3 else ''}): add --recursive"))
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
    from dataclasses import replace

    from tqdm import tqdm

    from station.pipeline.base import base_from_blank
    from station.pipeline.convert import ConvertOptions, convert_file
    from station.pipeline.decode import decode
    from station.pipeline.invert import get_inverter
    from station.pipeline.write import remove_stale_temporaries

    formats = [f.strip().lower() for f in args.format.split(",") if f.strip()]
    formats = ["tiff" if f in ("tif", "tiff") else "jpeg" if f in ("jpg", "jpeg") else
               "linear" if f in ("linear-tiff", "linear") else f for f in formats]
    bad = [f for f in formats if f not in FORMAT_EXT]
    if bad or not formats:
        return _usage_error(f"--format: unknown format {', '.join(bad) or '(none)'} (choose from tiff, jpeg, linear-tiff)")
    from station.commands.output_options import OutputChoices, StationUsage

    try:
        choices = OutputChoices.from_args(args)
    except StationUsage as exc:
        return _usage_error(str(exc))
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
    if args.method == "classic" and args.model:
        return _usage_error("--model is for --method mlp; --method classic uses no model (drop one of them)")
    try:
        inverter = get_inverter(args.method, args.model)
    except StationError as exc:
        return _usage_error(f"--model {exc}" if exc.path else str(exc))
    from station.pipeline.flatfield import apply_flat, load_flat

    flat = None
    if args.flatfield:

        try:
            flat = load_flat(args.flatfield)
        except StationError as exc:
            return _usage_error(f"--flatfield {exc}")
        except ValueError as exc:
            return _usage_error(f"--flatfield {args.flatfield}: {exc}")
    base = None
    if args.base:
        try:
            base = base_from_blank(apply_flat(decode(args.base).rgb, flat))  # apply_flat(x, None) is x
        except StationError as exc:
            return _usage_error(f"--base {exc}")
        except ValueError as exc:
            return _usage_error(f"--base {args.base}: {exc}")
    notes: list = []
    rel: dict = {}
    files, failures = expand_inputs(args.inputs, args.recursive, notes, rel)
    from station.ingest.pairs import drop_camera_jpegs  # RAW+JPEG: the RAW wins

    files = drop_camera_jpegs(files, say=lambda line: print(line, file=sys.stderr))
    for path, reason in failures:
        print(f"error: {path}: {reason}", file=sys.stderr)
    for path, message in notes:
        print(f"note: {path}: {message}", file=sys.stderr)
    rendering = None
    if args.roll and files:
        from station.pipeline.films import INVERTERS

        film_inv = INVERTERS[args.film]() if args.film in INVERTERS else inverter  # the roll's normaliser: its film's
        rendering = _analyse_roll(files, film_inv, base, args.base, flat)
        if rendering is None:
            return 1
    choices.number(files)
    options = ConvertOptions(inverter=inverter, base=base, crop=args.crop, overwrite=args.overwrite,
                             jpeg_quality=choices.jpeg_quality,
                             print=None if print_settings.identity else print_settings, rendering=rendering,
                             flatfield=flat, film=args.film)
    cleaned: set[Path] = set()
    converted = skipped = 0
    seen_stems: set[str] = set()
    t_start = time.perf_counter()
    bar = tqdm(files, unit="frame", disable=len(files) < 2 or not sys.stderr.isatty(), file=sys.stderr)
    for src in bar:
        bar.set_postfix_str(src.name)
        out_dir = args.out / rel.get(src, Path())
        from station.pipeline.naming import NamingError

        try:
            stem = choices.stem_for(src)  # --name PATTERN, else the input's name
        except NamingError as exc:
            failures.append((src, str(exc)))
            tqdm.write(f"error: {src}: {exc}", file=sys.stderr)
            continue
        key = str(out_dir / stem)
        if key in seen_stems:
            failures.append((src, f"another input has the same output name {str(stem)!r}; outputs would clash "
                                  "(refused, nothing overwritten)"))
            tqdm.write(f"error: {failures[-1][0]}: {failures[-1][1]}", file=sys.stderr)
            continue
        seen_stems.add(key)
        out_dir = (out_dir / stem).parent
        stem = stem.name
        if out_dir != args.out:
            out_dir.mkdir(parents=True, exist_ok=True)
        if out_dir not in cleaned:
            remove_stale_temporaries(out_dir)  # what a killed run left (its process is gone)
            cleaned.add(out_dir)
        if choices.sidecar:  # --xmp-sidecar: the XMP alone, no positives
            from station.commands.output_options import write_sidecar_for

            try:
                if write_sidecar_for(src, out_dir / f"{stem}.xmp", choices, args.overwrite) == "complete":
                    skipped += 1
                else:
                    converted += 1
            except StationError as exc:
                failures.append((src, exc.reason))
                tqdm.write(f"error: {exc}", file=sys.stderr)
            continue
        outputs = {f: out_dir / f"{stem}{FORMAT_EXT[f]}" for f in formats}
        state, frame_options = frame_state(src, outputs, replace(options, extra_meta=choices.extra_meta_for(src)))
        if state == "complete":
            skipped += 1
            continue
        if isinstance(state, tuple):  # ("foreign", path)
            failures.append((src, f"output {state[1]} already exists and was not made from this input "
                                  "(not overwriting; use --overwrite)"))
            tqdm.write(f"error: {failures[-1][0]}: {failures[-1][1]}", file=sys.stderr)
            continue
        try:
            res = convert_file(src, outputs, frame_options)
            converted += 1
            for w in res.warnings:
                tqdm.write(f"warning: {src}: {w}", file=sys.stderr)
        except StationError as exc:
            failures.append((src, exc.reason))
            tqdm.write(f"error: {exc}", file=sys.stderr)
        except KeyboardInterrupt:
            # the frame in hand leaves nothing behind (its outputs are published together)
            print(f"\ninterrupted at {src.name}: {converted} converted; run the same command again "
                  "to finish (complete frames are skipped)", file=sys.stderr)
            return 130
    elapsed = time.perf_counter() - t_start
    total = converted + len(failures)
    done = f", {skipped} already complete (skipped)" if skipped else ""
    if choices.sidecar:
        print(f"{converted} of {total} XMP sidecars written{done}, {len(failures)} failed → {args.out}", file=sys.stderr)
        return 0 if not failures else 1
    print(
        f"{converted} of {total} converted{done}, {len(failures)} failed ({getattr(inverter, 'name', 'inverter')}, "
        f"{'' if args.film == 'colour' else 'film ' + args.film + ', '}"
        f"{'' if print_settings.identity else 'print: ' + describe(print_settings) + ', '}"
        f"{elapsed:.1f} s) → {args.out}",
        file=sys.stderr,
    )
    return 0 if not failures else 1


def frame_state(src: Path, outputs: dict, options):
    """What to do with one frame: ("complete", None) — all its outputs are there, made from
    `src` with the same method, print and roll rendering: skip it; ("foreign", path) — an output of another origin is in the way; or
    ("todo", options) — convert it, with overwrite for a half frame an interrupted run left
    (its outputs are remade together)."""
    from dataclasses import replace

    from station.pipeline.write import output_description

    if options.overwrite:
        return "todo", options
    present = [p for p in outputs.values() if p.exists()]
    if not present:
        return "todo", options
    wanted = {"station_method": getattr(options.inverter, "name", "default"),
              "station_print": options.print.to_dict() if options.print is not None else None,
              "station_rendering": options.rendering.id if options.rendering is not None else None,
              "station_flatfield": options.flatfield.id if options.flatfield is not None else None}
    # the film's story and the colour spaces (--stock, --colour-space, ...): outputs made with others are remade
    for k in ("film_stock", "film_type", "roll", "frame", "shot_date", "station_colour_space", "station_jpeg_colour_space"):
        wanted[k] = options.extra_meta.get(k)
    if options.film in ("colour", "bw", "slide"):  # auto: whatever was detected
        wanted["station_film"] = None if options.film == "colour" else options.film
    same = True
    for p in present:
        d = output_description(p) or {}
        if d.get("station_source") != src.name:
            return ("foreign", p), None
        same = same and all(d.get(k) == v for k, v in wanted.items())
    if len(present) == len(outputs) and same:
        return "complete", None
    # a half frame, or the station's own outputs of this input made with another method or
    # print: remade together
    return "todo", replace(options, overwrite=True)


def _analyse_roll(files, inverter, base, base_path, flat=None):
    """`--roll`: one fast half-size pass over the inputs (through the flat field, as they are
    converted) -> the roll's Rendering (None: none could be made)."""
    from station.pipeline.roll import analyse_files

    skip = [f for f in files if base_path is not None and f.resolve() == Path(base_path).resolve()]
    t0 = time.perf_counter()
    try:
        rendering, unread = analyse_files(files, inverter, base, skip=skip, flat=flat)
    except ValueError as exc:
        print(f"station invert: --roll: {exc}", file=sys.stderr)
        return None
    for path, reason in unread:
        print(f"warning: {path}: left out of the roll analysis ({reason})", file=sys.stderr)
    print(f"roll: {rendering.frames} of {len(files)} frames analysed ({time.perf_counter() - t0:.1f} s), "
          f"base from {rendering.base_source}, rendering {rendering.id}", file=sys.stderr)
    return rendering
