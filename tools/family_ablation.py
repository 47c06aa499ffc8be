"""Where the cross-family R² goes: one frame of the parametric family (param_daylight_200,
the rocket scene with the charts, film and scan exposure 0, base from the blank), rendered by
classic and by the model while the parametric generator's stages are switched off one by one.
Diagnosis only: nothing is fitted to the parametric family.

    .venv/bin/python tools/family_ablation.py [MODEL.npz]

Columns: median chroma ratio (output / truth) of the saturated ColorChecker patches, and R²
(CIELAB, affine L*) of the whole frame.
"""
import sys
from dataclasses import replace

import numpy as np

from station.model import film, load_model
from station.model import paramfilm as pf
from station.model.familyeval import _density, r2_lab_affine_L
from station.model.metrics import box_means, to_lab
from station.pipeline.base import base_from_blank
from station.pipeline.classic import ClassicInverter

rng = np.random.default_rng(5)
img, boxes = film.scene_with_charts(film.photo(film.EVAL_PHOTOS[0], 192, rng))
sat = [boxes["checker"][i] for i in film.SATURATED_PATCHES]
methods = {"classic": ClassicInverter(), "mlp": load_model(sys.argv[1] if len(sys.argv) > 1 else None)}
I3 = tuple(map(tuple, np.eye(3)))
pf.CAMERAS["identity"], pf.WHITE_BALANCE["identity"] = I3, (1.0, 1.0, 1.0)


def run(name, st, **kw):
    p = pf.ParamScanParams(stock=st, **kw)
    D = _density(pf.simulate(img, p).camera_rgb, base_from_blank(pf.blank(p, 48)).rgb)
    t = to_lab(box_means(img, sat))
    cells = []
    for m, fn in methods.items():
        o = fn(D)
        lab = to_lab(box_means(o, sat))
        ratio = np.median(np.hypot(lab[:, 1], lab[:, 2]) / np.hypot(t[:, 1], t[:, 2]))
        cells.append(f"{m} C ratio {ratio:.2f} R² {r2_lab_affine_L(o, img):.3f}")
    print(f"| {name} | " + " | ".join(cells) + " |")


S = pf.PARAM_STOCKS["param_daylight_200"]
run("as generated (pcam_1, flare 0.01)", S)
run("camera pcam_2 (more crosstalk)", S, camera="pcam_2")
run("camera without crosstalk", S, camera="identity")
run("… and no flare", S, camera="identity", flare=0.0)
run("… and no layer overlap (film_mix)", replace(S, film_mix=I3), camera="identity", flare=0.0)
run("… and no dye crosstalk", replace(S, film_mix=I3, crosstalk=I3), camera="identity", flare=0.0)
run("only no dye crosstalk", replace(S, crosstalk=I3))
run("only no layer overlap", replace(S, film_mix=I3))
