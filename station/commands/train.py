"""`station train`: train a learned inverter from pairs and/or generated negatives.

Examples:
    station train --generate 300 --out my.npz
    station train --pairs ~/scans/pairs --out roll-look.npz         # Original_resized/ + Inverted_resized/
    station train --pairs ~/pairs --generate 100 --out mixed.npz     # negatives/ + positives/, plus generated

Writes exactly one model file, and only when training succeeded.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger("station.train")


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a learned (MLP) inverter",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=Path, help="folder with Original_resized/+Inverted_resized/ or negatives/+positives/")
    p.add_argument("--generate", type=int, default=0, metavar="N", help="add N generated negative/positive pairs")
    p.add_argument("--out", type=Path, required=True, help="model file to write (.npz)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--depth", type=int, default=3, help="hidden layers (paper: 3)")
    p.add_argument("--skip", action="store_true", help="add a linear input->output skip connection")
    p.add_argument("--activation", default="silu", choices=["relu", "silu", "tanh"])
    p.add_argument("--prior", default="classic", choices=["none", "classic"],
                   help="classic: learn a bounded residual on the classic inversion (output within --bound of it)")
    p.add_argument("--bound", type=float, default=0.2, help="the residual's bound (sRGB units) with --prior classic")
    p.add_argument("--prior-range", type=float, default=2.2, help="log10 exposure range of the classic prior (base..highlight)")
    p.add_argument("--neutral", type=float, default=0.05,
                   help="with --prior classic: the residual's colour fades out for inputs whose channel spread "
                        "max(z)-min(z) is below this (a neutral negative gives a neutral positive); 0 = off")
    p.add_argument("--init", default=None, metavar="MODEL",
                   help="fine-tune: start from this model file ('default': the shipped one); its architecture and "
                        "normaliser are kept, early stopping keeps it unless the held-out pair improves")
    p.add_argument("--wide", type=float, default=0.7, metavar="F",
                   help="fraction of generated frames drawn with the wide randomisation (random stocks, cameras, "
                        "backlights, flare, noise)")
    p.add_argument("--normaliser", default="base",
                   choices=["base", "learned", "percentile", "quantile", "neutral", "scale", "shift", "shift_shared", "none"])
    p.add_argument("--anchor", type=float, default=None,
                   help="base normaliser: how much of each channel's black point comes from the film base (1, the "
                        "default) rather than from the frame's own shadows (0 would cancel the base, as 'percentile'); "
                        "with --init: replaces the initial model's anchor (a warm start on a re-anchored input)")
    p.add_argument("--init-pull", type=float, default=None,
                   help="with --init: L2 pull towards the initial weights (default 0.01; 0 = a free warm start)")
    p.add_argument("--norm-lo", type=float, default=0.5, help="normaliser low percentile (shadows)")
    p.add_argument("--norm-hi", type=float, default=99.5, help="normaliser high percentile (highlights)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=1e-6, help="L2 penalty (paper: MSE + L2)")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--patience", type=int, default=5, help="early stopping patience (epochs)")
    p.add_argument("--pixels-per-frame", type=int, default=6000)
    p.add_argument("--size", type=int, default=160, help="size of generated frames (pixels)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stock-jitter", type=float, default=1.0,
                   help="scale of the per-layer contrast/speed perturbation of generated stocks (0 = the measured stocks only)")
    p.add_argument("--negative-encoding", default="auto", choices=["auto", "linear", "srgb"],
                   help="pair negatives: linear camera RGB or sRGB-encoded (auto: 8-bit=sRGB, 16-bit=linear)")
    p.add_argument("--no-register", action="store_true", help="pairs are already pixel-aligned")
    p.add_argument("--max-minutes", type=float, default=None, help="stop training after this long")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from station.model import save_model
    from station.model.mlp import MLPConfig
    from station.model.normalise import Normaliser
    from station.model.training import TrainConfig, TrainingError, generated_frames, pair_frames, train

    if not args.pairs and args.generate <= 0:
        print("station train: give --pairs FOLDER and/or --generate N", file=sys.stderr)
        return 2
    if args.out.exists() and not args.force:
        print(f"station train: {args.out} exists (use --force to overwrite)", file=sys.stderr)
        return 2
    if args.pairs and not args.pairs.is_dir():
        print(f"station train: {args.pairs} is not a folder", file=sys.stderr)
        return 2
    try:
        cfg = TrainConfig(
            mlp=MLPConfig(args.width, args.depth, args.skip, args.activation, args.prior, args.bound, args.prior_range,
                          args.neutral if args.prior == "classic" else 0.0),
            normaliser=Normaliser(args.normaliser, args.norm_lo, args.norm_hi,
                                  anchor=1.0 if args.anchor is None else args.anchor),
            epochs=args.epochs, lr=args.lr, weight_decay=args.weight_decay, batch=args.batch,
            patience=args.patience, pixels_per_frame=args.pixels_per_frame, seed=args.seed,
            device=args.device, max_minutes=args.max_minutes,
        )
    except ValueError as exc:
        print(f"station train: {exc}", file=sys.stderr)
        return 2
    if args.init:
        from station.model import load_model
        try:
            cfg.init = load_model(None if args.init == "default" else args.init)
            if args.anchor is not None:
                if cfg.init.norm.kind != "base":
                    raise ValueError(f"--anchor needs a 'base' normaliser, the initial model's is {cfg.init.norm.kind!r}")
                cfg.init.norm = Normaliser("base", cfg.init.norm.lo, cfg.init.norm.hi, anchor=args.anchor)
        except ValueError as exc:
            print(f"station train: --init: {exc}", file=sys.stderr)
            return 2
        if args.init_pull is not None:
            cfg.init_pull = max(0.0, float(args.init_pull))
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    try:
        frames = []
        sources = {}
        if args.pairs:
            from station.commands.evaluate import pipeline_base

            pf = pair_frames(args.pairs, args.negative_encoding, register=not args.no_register, base_fn=pipeline_base)
            frames += pf
            sources["pairs"] = {"folder": str(args.pairs), "count": len(pf)}
            log.info("loaded %d pairs from %s", len(pf), args.pairs)
        if args.generate > 0:
            gf = generated_frames(args.generate, seed=args.seed, size=args.size, stock_jitter=args.stock_jitter,
                                  wide=args.wide)
            frames += gf
            from station.model.film import HELD_OUT_STOCKS
            sources["generated"] = {"count": len(gf), "seed": args.seed, "size": args.size, "stock_jitter": args.stock_jitter,
                                    "held_out_stocks": list(HELD_OUT_STOCKS), "wide": args.wide}
            log.info("generated %d negatives", len(gf))
        inv, report = train(frames, cfg, progress=not args.no_progress)
    except TrainingError as exc:
        print(f"station train: {exc}", file=sys.stderr)
        return 1
    report["sources"] = sources
    report["command"] = "station train " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["train"] else None
    save_model(args.out, inv, report)
    t = report.get("test") or report.get("val")
    which = "test" if report.get("test") else "validation"
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB): {inv.description}")
    print(f"epochs {report['epochs_run']} ({report['stop']}), {report['seconds']} s on {report['device']}")
    if t:
        print(f"{which} images ({t['frames']}): R2 {t['r2']:.4f}  mean CIEDE2000 {t['mean_de2000']:.2f}  PSNR {t['psnr_db']:.2f} dB")
    return 0
