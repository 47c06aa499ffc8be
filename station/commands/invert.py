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

The batch (station/batch/): --jobs N worker processes (default: the cores), --cluster
ADDRESS on a Dask cluster, --manifest FILE a JSON line per frame; the same pixels whichever
converts a frame.  A frame's outputs are checked and made where it is converted, so a frame
run twice (its worker lost after publishing) is found complete, not written twice.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from station.errors import StationError

FORMAT_EXT = {"tiff": ".tif", "jpeg": ".jpg", "linear": "-linear.tif"}

from station.batch.plan import frame_state  # noqa: E402,F401  (re-exported: it lives with the batch)


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
    p.add_argument("--format", default=None,
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
                        "and the picture, logged; with --roll once for the roll; with --base a negative: never slide)")
    from station.commands.output_options import add_output_arguments  # --stock, --name, --colour-space, ...

    add_output_arguments(p)
    p.add_argument("--roll", action="store_true",
                   help="the inputs are one roll: analyse them once (film base, density range, balance, "
                        "exposure) and render every frame with that one rendering")
    # -- the batch: parallel, resumable, on a cluster (station/batch/) --
    p.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                   help="worker processes converting frames at once (default: the number of cores, fewer for a "
                        "batch of under two frames a core; 1: in this process)")
    p.add_argument("--manifest", type=Path, metavar="FILE",
                   help="write the batch's record: one JSON line per frame (input, sha256, outputs, rendering, status)")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="convert on a Dask distributed cluster: tcp://HOST:PORT (a running scheduler; inputs and "
                        "--out on storage the workers see at the same paths) or local:N (N worker processes here); "
                        "needs pip install 'station[cluster]'")
    p.add_argument("--send-back", action="store_true",
                   help="with --cluster: the workers send the encoded outputs back and this command writes them "
                        "(when --out is on this machine only; the inputs must still be at the same paths for the workers)")
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


def drop_own_outputs(files: list[Path]) -> list[Path]:
    """The inputs less the station's own outputs (a TIFF or JPEG whose description names the
    input it was made from), each named on stderr: a positive is never inverted again."""
    from station.pipeline.write import output_description

    kept = []
    for f in files:
        d = output_description(f) if f.suffix.lower() in (".tif", ".tiff", ".jpg", ".jpeg") else None
        if d and d.get("station_source"):
            print(f"note: {f}: a positive the station made (from {d['station_source']}), not an input: skipped",
                  file=sys.stderr)
        else:
            kept.append(f)
    return kept


def _usage_error(msg: str) -> int:
    print(f"station invert: {msg}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from station.batch.cluster import ClusterError
    from station.batch.local import WorkerStartError, default_jobs
    from station.pipeline.base import base_from_blank
    from station.pipeline.convert import ConvertOptions
    from station.pipeline.decode import decode
    from station.pipeline.invert import get_inverter

    formats = [f.strip().lower() for f in (args.format or "tiff,jpeg").split(",") if f.strip()]
    formats = ["tiff" if f in ("tif", "tiff") else "jpeg" if f in ("jpg", "jpeg") else
               "linear" if f in ("linear-tiff", "linear") else f for f in formats]
    bad = [f for f in formats if f not in FORMAT_EXT]
    if bad or not formats:
        return _usage_error(f"--format: unknown format {', '.join(bad) or '(none)'} (choose from tiff, jpeg, linear-tiff)")
    from station.commands.output_options import OutputChoices, StationUsage, check_sidecar_only

    try:
        check_sidecar_only(args)
        choices = OutputChoices.from_args(args)
        choices.check_formats(formats)
    except StationUsage as exc:
        return _usage_error(str(exc))
    from station.pipeline.printing import PrintError, describe, from_args

    try:
        print_settings = from_args(args)
    except PrintError as exc:
        return _usage_error(str(exc))
    if args.out.exists() and not args.out.is_dir():
        return _usage_error(f"--out {args.out}: is a file, not a folder")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _usage_error(f"--out {args.out}: cannot create the folder ({exc.strerror})")
    if not os.access(args.out, os.W_OK | os.X_OK):
        return _usage_error(f"--out {args.out}: folder is not writable")
    if args.jobs is not None and args.jobs < 1:
        return _usage_error(f"--jobs {args.jobs}: needs at least 1")
    if args.send_back and not args.cluster:
        return _usage_error("--send-back is for --cluster (local workers write the outputs themselves)")
    if args.cluster:
        from station.batch.cluster import INSTALL, available, parse_address

        try:
            parse_address(args.cluster)
        except ValueError as exc:
            return _usage_error(f"--cluster {exc}")
        if not available():
            return _usage_error(f"--cluster needs dask distributed, which is not installed: {INSTALL}")
    if args.film == "slide" and args.base:  # its clear highlights are its white; unexposed slide film is black
        return _usage_error("--base is for negatives (a blank's film base); a slide has none: drop --base with --film slide")
    if args.film in ("bw", "slide") and (args.method or args.model):  # auto: for the frames found colour
        flag = "--method" if args.method else "--model"
        return _usage_error(f"{flag} is the colour negative's inversion; --film {args.film} renders with its own "
                            "transfer (drop one of them)")
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
            # apply_flat(x, None) is x; a colour negative's blank must show its orange mask
            base = base_from_blank(apply_flat(decode(args.base).rgb, flat), colour=args.film == "colour")
        except StationError as exc:
            return _usage_error(f"--base {exc}")
        except ValueError as exc:
            return _usage_error(f"--base {args.base}: {exc}")
    notes: list = []
    rel: dict = {}
    files, failures = expand_inputs(args.inputs, args.recursive, notes, rel)
    files = drop_own_outputs(files)  # --out inside a folder given: its positives are no inputs
    originals = {f.resolve() for f in files}  # never written: the inputs, and the camera JPEGs beside RAWs
    from station.ingest.pairs import drop_camera_jpegs  # RAW+JPEG: the RAW wins

    files = drop_camera_jpegs(files, say=lambda line: print(line, file=sys.stderr))
    if args.base is not None:  # the blank in the roll's folder is its film base, not one of its pictures
        blank = args.base.resolve()
        for f in [f for f in files if f.resolve() == blank]:
            files.remove(f)
            print(f"note: {f}: the --base blank, not converted", file=sys.stderr)
    for path, reason in failures:
        print(f"error: {path}: {reason}", file=sys.stderr)
    for path, message in notes:
        print(f"note: {path}: {message}", file=sys.stderr)
    rendering = None
    if args.roll and files and args.film == "auto":  # a roll is one film: one type for all its frames
        from station.pipeline.films import detect_roll

        args.film, why = detect_roll(files, negative=base is not None)  # a blank's base: a negative film
        print(f"roll: film type {args.film} (auto: {why})", file=sys.stderr)
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
    from station.batch.plan import BatchSpec, plan_frames

    jobs, clashes = plan_frames(files, rel, args.out, formats, FORMAT_EXT, choices.stem_for,
                                meta_for=choices.extra_meta_for, never=originals)
    for path, reason in clashes:
        print(f"error: {path}: {reason}", file=sys.stderr)
    failures += clashes
    if choices.sidecar:  # --xmp-sidecar: the XMP alone, no positives (no conversion: in this process)
        return _sidecars(jobs, choices, args, failures)
    manifest = None
    if args.manifest:
        from station.batch.manifest import Manifest

        try:
            manifest = Manifest(args.manifest)
        except OSError as exc:
            return _usage_error(f"--manifest {args.manifest}: cannot write ({exc.strerror})")
        from station.batch.plan import FAILED, FrameResult

        for path, reason in failures:  # missing inputs, clashing names: in the record too
            manifest.add(FrameResult(index=-1, src=str(path), status=FAILED, reason=reason))
    # default: the cores, each worker with two frames at least (a worker's start costs about a frame)
    workers = args.jobs or max(1, min(default_jobs(), len(jobs) // 2))
    if args.cluster:  # local:N shares this machine's cores; a remote worker's are its own (None: as it is)
        from station.batch.cluster import parse_address

        kind, n = parse_address(args.cluster)
        threads = max(1, default_jobs() // n) if kind == "local" else None
    else:
        threads = max(1, default_jobs() // workers) if workers > 1 else None
    spec = BatchSpec(options=options, hash_inputs=manifest is not None, send_back=bool(args.cluster and args.send_back),
                     threads=threads)
    from station.batch.runner import run_batch

    try:
        outcome = run_batch(jobs, spec, workers=workers, cluster=args.cluster, manifest=manifest)
    except ClusterError as exc:
        return _usage_error(str(exc))
    except WorkerStartError as exc:
        print(f"station invert: a worker could not start: {exc}", file=sys.stderr)
        return 1
    finally:
        if manifest is not None:
            manifest.close()
    if outcome.interrupted:
        return 130
    failures += outcome.failures
    converted, skipped = outcome.converted, outcome.complete
    total = converted + len(failures)
    done = f", {skipped} already complete (skipped)" if skipped else ""
    on = f", {outcome.workers}" if outcome.workers and outcome.workers != "1 process" else ""
    print(
        f"{converted} of {total} converted{done}, {len(failures)} failed ("
        # bw and slide are rendered by their own transfer, not by the colour inverter
        f"{'film ' + args.film if args.film in ('bw', 'slide') else getattr(inverter, 'name', 'inverter')}, "
        f"{'film auto, ' if args.film == 'auto' else ''}"
        f"{'' if print_settings.identity else 'print: ' + describe(print_settings) + ', '}"
        f"{outcome.seconds:.1f} s{on}) → {args.out}",
        file=sys.stderr,
    )
    return 0 if not failures else 1


def _sidecars(jobs, choices, args, failures) -> int:
    """--xmp-sidecar: each frame's XMP beside where its outputs would be, no positives."""
    from station.commands.output_options import write_sidecar_for

    converted = skipped = 0
    for job in jobs:
        try:
            if write_sidecar_for(job.src, job.stem.with_name(job.stem.name + ".xmp"), choices,
                                 args.overwrite) == "complete":
                skipped += 1
            else:
                converted += 1
        except StationError as exc:
            failures.append((job.src, exc.reason))
            print(f"error: {exc}", file=sys.stderr)
    total = converted + len(failures)
    done = f", {skipped} already complete (skipped)" if skipped else ""
    print(f"{converted} of {total} XMP sidecars written{done}, {len(failures)} failed → {args.out}", file=sys.stderr)
    return 0 if not failures else 1


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
