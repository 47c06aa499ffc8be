"""How often the film base estimated from a frame's rebate is wrong, on generated negatives.

Procedural scenes and sample photographs, made dark (-4 EV), kept, or bright (snow), on every
other measured stock at scan exposures -2, -0.5, +0.5 EV, framed with rebate, sprocket holes and
holder edges (station/model/film.py), written as Bayer DNGs and decoded as the station does
(rawpy); `estimate_base` on each; a frame counts as wrong when its
base is off by more than 0.05 in log10 in any channel.  `--wide N` adds N frames of the
generator's wide random stocks, cameras and backlights (warm, cool, narrowband; a third of them
with sprocket holes under sensor white):

    .venv/bin/python tools/rebate_check.py [--scenes N] [--wide N]
"""
from __future__ import annotations

import argparse

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, default=10, help="scenes (4 procedural, then photographs)")
    ap.add_argument("--wide", type=int, default=0, help="frames with the wide random stocks and backlights")
    args = ap.parse_args(argv)
    from station.model.film import (TRAIN_PHOTOS, ScanParams, add_rebate, photo, procedural_scene, simulate,
                                     random_params_wide, srgb_decode, srgb_encode, stock_names)
    import tempfile
    from pathlib import Path

    from station.model.film import write_dng
    from station.pipeline.base import estimate_base as estimate_on
    from station.pipeline.decode import decode

    tmp = Path(tempfile.mkdtemp(prefix="rebate-check-"))

    def estimate_base(framed):  # through a real DNG and the station's decoder
        write_dng(tmp / "f.dng", framed)
        return estimate_on(decode(tmp / "f.dng").rgb)

    scenes = [procedural_scene(200, seed=s) for s in range(4)] + [photo(p, 200) for p in list(TRAIN_PHOTOS)[:6]]
    n = bad = 0
    for i, sc in enumerate(scenes[:args.scenes]):
        for stock in stock_names()[::2]:
            for ev in (-2.0, -0.5, 0.5):
                for kind in ("dark", "mid", "bright"):
                    lin = srgb_decode(sc)
                    lin = lin * 2.0 ** -4 if kind == "dark" else (0.55 + 0.4 * lin if kind == "bright" else lin)
                    neg = simulate(srgb_encode(np.clip(lin, 0, 1)), ScanParams(stock=stock, scan_ev=ev, seed=i))
                    est = estimate_base(add_rebate(neg, seed=i))
                    err = float(np.abs(np.log10(est.rgb / np.clip(neg.base_rgb, 1e-6, 1))).max())
                    n += 1
                    if err > 0.05:
                        bad += 1
                        print(f"wrong: scene {i} {stock} {ev:+.1f} EV {kind}: {est.source} "
                              f"{np.round(est.rgb, 3).tolist()} (true {np.round(neg.base_rgb, 3).tolist()})")
    print(f"{bad} of {n} frames with a wrong base")
    if args.wide:
        rng = np.random.default_rng(1)
        wbad = 0
        for i in range(args.wide):
            neg = simulate(procedural_scene(160, seed=i % 7), random_params_wide(rng))
            est = estimate_base(add_rebate(neg, seed=i))
            if float(np.abs(np.log10(est.rgb / np.clip(neg.base_rgb, 1e-6, 1))).max()) > 0.05:
                wbad += 1
                print(f"wrong (wide): frame {i}: {est.source} {np.round(est.rgb, 3).tolist()} "
                      f"(true {np.round(neg.base_rgb, 3).tolist()}, clear {np.round(neg.clear_rgb, 3).tolist()})")
        print(f"{wbad} of {args.wide} wide frames with a wrong base")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
