"""Rig adaptation: does fine-tuning on a few pairs from one stand close the cross-family gap?

The shipped model is never trained on the parametric family, and its cross-family R² stays
near 0.81 because that family's cameras mix the dye bands in a way no file records
(docs/MODEL.md §0).  A real station is one fixed rig: one camera, one light.  This tool
plays the user who fine-tunes the default on pairs from their own rig
(`station train --pairs DIR --init default`): it draws N frames on the parametric family
with one camera and backlight (random parametric stocks, the training scenes, never the
evaluation photo), bases from blanks, fine-tunes the default on them (2 held out for early
stopping), and evaluates with the `--family` protocol on that rig's frames of the three
named parametric stocks.  It is a measurement of the fine-tuning route, not a
cross-family figure: the adapted model has seen the family.

    .venv/bin/python tools/rig_adapt.py [--camera pcam_2] [--backlight white_led] [--pairs 12] [--minutes 4]
"""
import argparse
from dataclasses import replace

import numpy as np

from station.model import familyeval as fe
from station.model import film, load_model
from station.model import paramfilm as pf
from station.model.training import Frame, TrainConfig, fit
from station.pipeline.base import base_from_blank
from station.pipeline.classic import ClassicInverter


def rig_pairs(n, camera, backlight, seed):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        p = replace(pf.random_param_params(rng), camera=camera, backlight=backlight)
        img = film.random_scene(rng, 160)
        s = pf.simulate(img, p)
        base = base_from_blank(pf.blank(p, 48)).rgb
        D = (-np.log10(np.maximum(s.camera_rgb, 1e-6) / base)).astype(np.float32)
        out.append(Frame(D, s.positive, None, f"rig{len(out):02d}"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--camera", default="pcam_2", choices=list(pf.CAMERAS))
    ap.add_argument("--backlight", default="white_led", choices=list(pf.BACKLIGHTS))
    ap.add_argument("--pairs", type=int, default=12)
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    frames = rig_pairs(a.pairs, a.camera, a.backlight, a.seed)
    default = load_model(None)
    cfg = TrainConfig(init=default, epochs=40, patience=6, pixels_per_frame=8000, max_minutes=a.minutes, seed=a.seed,
                      device="cpu")
    adapted, hist = fit(frames[2:], frames[:2], cfg, progress=False)
    print(f"fine-tuned on {a.pairs - 2} pairs of camera {a.camera} / {a.backlight} (2 held out): "
          f"{hist['epochs_run']} epochs, stop: {hist['stop']}, val MSE {hist['initial_val']:.5f} -> {hist['best_val_mse']:.5f}")
    saved = dict(pf.CAMERAS)
    pf.CAMERAS.clear()
    pf.CAMERAS[a.camera] = saved[a.camera]   # the evaluation's frames all come from the rig's camera
    try:
        param = fe.family_frames("param", size=192, seed=1000, base_from_blank=base_from_blank)
    finally:
        pf.CAMERAS.clear()
        pf.CAMERAS.update(saved)
    spectral = fe.family_frames("spectral", size=192, seed=1000, base_from_blank=base_from_blank)
    print("| frames | method | grey C* | hue ° | R² | ΔE00 | scan ΔE00 |\n|---|---|---|---|---|---|---|")
    for label, frs in ((f"param, camera {a.camera}", param), ("spectral (in-family)", spectral)):
        for name, fn in (("classic", ClassicInverter()), ("default", default), ("rig-adapted", adapted)):
            r = fe.evaluate_family(fn, frs)
            print(f"| {label} | {name} | {r['grey_C']:.2f} | {r['hue_err']:.1f} | {r['r2_lab']:.3f} | {r['de_mean']:.2f} | "
                  f"{r['scan_dE']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
