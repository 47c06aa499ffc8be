"""`station evaluate`: compare the learned inverter with the classic and naive 1-x
inversions on held-out generated negatives of stocks not used in training (and on
user pairs when given).

Examples:
    station evaluate                         # the shipped default model
    station evaluate --model my.npz --pairs ~/pairs --json report.json
    station evaluate --family both           # in-family (held-out stocks) and cross-family
                                             # (the parametric generator, never trained on)
    station evaluate --film bw --scenes 3    # B&W negatives: grey-ramp C* with --film bw, auto, colour
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="compare mlp / classic / naive inversions",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=None, help="model file (default: the shipped model)")
    p.add_argument("--stocks", default=None, help="comma-separated stocks (default: the held-out ones)")
    p.add_argument("--scenes", type=int, default=6, help="scenes per stock")
    p.add_argument("--size", type=int, default=None, help="scene size in pixels (default 192; 240 with --film)")
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--pairs", type=Path, default=None, help="also evaluate on a folder of user pairs")
    p.add_argument("--negative-encoding", default="auto", choices=["auto", "linear", "srgb"])
    p.add_argument("--per-stock", action="store_true", help="one table per stock as well")
    p.add_argument("--breakdown", action="store_true",
                   help="with --family: mlp and classic per stock and per film exposure, the R² lost split into L*, a*, b*")
    p.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
    p.add_argument("--family", choices=["spectral", "param", "both"], default=None,
                   help="the roll protocol (12 frames per stock: film -1..+2 EV x scan -1, 0, +0.5 EV, base from a "
                        "blank) on the spectral generator's held-out stocks and/or the independent parametric one")
    p.add_argument("--film", choices=["bw", "slide"], default=None,
                   help="instead: the film type's figures on generated film (bw: silver negatives, slide: E-6), "
                        "converted by the engine with --film bw|slide, auto and colour: grey-ramp C* (max), tonal order, "
                        "the type detected (pipeline/filmcheck.py); --scenes frames each")
    p.set_defaults(func=run)


def run_film(args) -> int:
    from station.pipeline.filmcheck import evaluate

    given = [f for f, v in (("--model", args.model), ("--pairs", args.pairs), ("--family", args.family),
                            ("--stocks", args.stocks), ("--per-stock", args.per_stock)) if v]
    if given:  # the film types' figures are on their own generated stocks, through the engine's defaults
        print(f"station evaluate: --film evaluates the film types on generated film; {', '.join(given)} "
              "does not apply to it", file=sys.stderr)
        return 2
    seeds = tuple(range(args.seed, args.seed + max(1, min(args.scenes, 20))))
    try:
        rows = evaluate(args.film, seeds, size=args.size or 240)
    except ValueError as exc:  # a scene too small for its charts
        print(f"station evaluate: --size {args.size}: {exc}", file=sys.stderr)
        return 2
    print(f"{'stock':15} {'--film':6} {'seed':>5} {'rendered':8} {'grey C* max':>11} {'order':>6} {'|dL*|':>6}  warnings")
    for r in rows:
        print(f"{r['stock']:15} {r['film_asked']:6} {r['seed']:5d} {str(r['film']):8} {r['grey_cmax']:11.2f} "
              f"{'kept' if r['order_kept'] else 'LOST':>6} {r['ramp_dL']:6.1f}  {len(r['warnings'])}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


def run(args) -> int:
    if args.film:
        return run_film(args)
    args.size = args.size or 192
    from station.model import load_model
    from station.model import evaluate as ev
    from station.model import film

    try:
        model = load_model(args.model)
    except ValueError as exc:
        print(f"station evaluate: {exc}", file=sys.stderr)
        return 2
    stocks = tuple(s.strip() for s in args.stocks.split(",")) if args.stocks else film.HELD_OUT_STOCKS
    try:
        for s in stocks:
            film.load_stock(s)
    except ValueError as exc:
        print(f"station evaluate: {exc}", file=sys.stderr)
        return 2
    if args.family:
        return run_family(args, model)
    from station.pipeline.classic import classic_invert as classic
    methods = {"mlp": model, "classic": classic, "naive 1−x": ev.naive_invert}
    frames = ev.eval_frames(stocks, args.scenes, args.size, args.seed)
    out = {"model": str(args.model or "default"), "description": model.description, "stocks": list(stocks),
           "frames": len(frames), "generated": {}}
    print(f"model: {model.description}")
    print(f"held-out generated negatives: {len(frames)} frames of {', '.join(stocks)}\n")
    res = {k: (ev.evaluate_method(fn, frames) if fn is not None else None) for k, fn in methods.items()}
    out["generated"] = res
    print(ev.format_table(res))
    if args.per_stock:
        out["per_stock"] = {}
        for s in stocks:
            fs = [f for f in frames if f.stock == s]
            r = {k: (ev.evaluate_method(fn, fs) if fn is not None else None) for k, fn in methods.items()}
            out["per_stock"][s] = r
            print(f"\n{s}:\n" + ev.format_table(r))
    if args.pairs:
        from station.model.training import TrainingError, pair_frames
        try:
            pf = pair_frames(args.pairs, args.negative_encoding, base_fn=pipeline_base)
        except TrainingError as exc:
            print(f"station evaluate: {exc}", file=sys.stderr)
            return 1
        r = {k: (ev.evaluate_pairs(fn, pf) if fn is not None else None) for k, fn in methods.items()}
        out["pairs"] = r
        cols = [("r2", "R²", "{:.3f}"), ("de_mean", "ΔE00 mean", "{:.2f}"), ("de_p95", "ΔE00 p95", "{:.2f}"),
                ("psnr", "PSNR dB", "{:.2f}")]
        print(f"\nuser pairs ({len(pf)} from {args.pairs}):")
        print("\n".join(ev.format_table(r, cols).splitlines()[:-1]))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


def run_family(args, model) -> int:
    from station.model import familyeval as fe
    from station.model.evaluate import naive_invert
    from station.pipeline.classic import ClassicInverter

    fams = ["spectral", "param"] if args.family == "both" else [args.family]
    methods = {"mlp": model, "classic": ClassicInverter(), "naive 1−x": naive_invert}
    print(f"model: {model.description}")
    res, out = {}, {"model": str(args.model or "default"), "description": model.description, "families": {}}
    for fa in fams:
        stocks = tuple(s.strip() for s in args.stocks.split(",")) if (args.stocks and len(fams) == 1) else None
        try:
            from station.pipeline.base import base_from_blank

            frames = fe.family_frames(fa, stocks, size=args.size, seed=args.seed, base_from_blank=base_from_blank)
        except ValueError as exc:
            print(f"station evaluate: {exc}", file=sys.stderr)
            return 2
        names = sorted({f.stock for f in frames})
        print(f"{fa}: {len(frames)} frames ({len(fe.FILM_EVS)} film x {len(fe.SCAN_EVS)} scan exposures) of {', '.join(names)}")
        res[fa] = {k: fe.evaluate_family(fn, frames) for k, fn in methods.items()}
        out["families"][fa] = {"stocks": names, "frames": len(frames), "results": res[fa]}
        if args.per_stock:
            out["families"][fa]["per_stock"] = {}
            for s in names:
                fs = [f for f in frames if f.stock == s]
                r = {k: fe.evaluate_family(fn, fs) for k, fn in methods.items()}
                out["families"][fa]["per_stock"][s] = r
                print(f"\n{fa} / {s}:\n" + fe.format_side_by_side({fa: r}))
        if args.breakdown:
            two = {k: methods[k] for k in ("mlp", "classic")}
            for by in ("stock", "film_ev"):
                print(f"\n{fa}, by {by}:\n" + fe.breakdown(two, frames, by))
    print()
    print(fe.format_side_by_side(res))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


def pipeline_base(rgb):
    """The pipeline's film-base estimate for the model's training pairs."""
    from station.pipeline.base import estimate_base

    return estimate_base(rgb).rgb
