"""Does a generator's grey scale stay on the two-point grey axis?  (docs/MODEL.md §0)

A grey ramp (18 levels, sRGB 0.03…0.95) on every stock of the spectral simulator
(station.model.film, at its reference light, no grain) and of the parametric one
(station.model.paramfilm, no grain or flare); densities above the base, normalised per
channel on the ramp's first and last level (the prior's view of a frame), then the
classic print curve (`prior_apply`).  Printed per stock at levels 4, 8 and 12: the channel
spread of z and the CIELAB a*, b* of the result (a straight grey scale gives 0).

    .venv/bin/python tools/grey_axis.py
"""
import numpy as np

from station.model import film
from station.model import paramfilm as pf
from station.model.metrics import to_lab
from station.model.mlp import MLPConfig, prior_apply

vals = np.linspace(0.03, 0.95, 18)
img = np.repeat(np.repeat(vals[None, :, None], 8, 0), 8, 1).repeat(3, 2)
LEVELS = (4, 8, 12)


def report(name, s):
    D = -np.log10(np.maximum(s.camera_rgb, 1e-6) / s.base_rgb)
    d = D.reshape(8, 18, 8, 3).mean((0, 2))
    z = (d - d[0]) / (d[-1] - d[0])
    lab = to_lab(prior_apply(z, MLPConfig(prior="classic")))
    print(f"{name:24s} z spread " + " ".join(f"{z[i].max() - z[i].min():.3f}" for i in LEVELS)
          + "  a* " + " ".join(f"{lab[i, 1]:+.1f}" for i in LEVELS) + "  b* " + " ".join(f"{lab[i, 2]:+.1f}" for i in LEVELS))


for st in film.stock_names():
    report(st, film.simulate(img, film.ScanParams(stock=st, scene_K=film.load_stock(st).reference_K, seed=1, grain=0.0)))
for st in pf.PARAM_STOCKS:
    report(st, pf.simulate(img, pf.ParamScanParams(stock=st, seed=1, grain=0.0, flare=0.0)))
