"""Does a generator's grey scale stay on the two-point grey axis?  (docs/MODEL.md §0)

A grey ramp (18 levels, sRGB 0.03…0.95) on every stock of the spectral simulator
(station.model.film, at its reference light, no grain) and of the parametric one
(station.model.paramfilm, no grain or flare); densities above the base, normalised per
channel on the ramp's first and last level (the prior's view of a frame), then the
classic print curve (`prior_apply`).  Printed per stock at levels 4, 8 and 12: the channel
spread of z and the CIELAB a*, b* of the result (a straight grey scale gives 0); for the
spectral stocks also the spread of the layers' dye amounts from the fitted data-sheet curves.

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


def _spread(d):
    z = (d - d[0]) / (d[-1] - d[0])
    return z, " ".join(f"{z[i].max() - z[i].min():.3f}" for i in LEVELS)


def report(name, s, extra=""):
    D = -np.log10(np.maximum(s.camera_rgb, 1e-6) / s.base_rgb)
    z, sp = _spread(D.reshape(8, 18, 8, 3).mean((0, 2)))
    lab = to_lab(prior_apply(z, MLPConfig(prior="classic")))
    print(f"{name:24s} z spread {sp}  a* " + " ".join(f"{lab[i, 1]:+.1f}" for i in LEVELS)
          + "  b* " + " ".join(f"{lab[i, 2]:+.1f}" for i in LEVELS) + extra)


for st in film.stock_names():
    stock = film.load_stock(st)
    # the same spread of the layers' dye amounts straight from the fitted data-sheet curves
    # (before dyes, backlight and camera): is the bend in the curves or in the scan chain?
    log_h = np.log10(film.srgb_decode(np.repeat(vals[:, None], 3, 1)) @ film.scene_matrices(stock, stock.reference_K)[0])
    report(st, film.simulate(img, film.ScanParams(stock=st, scene_K=stock.reference_K, seed=1, grain=0.0)),
           f"  | dye amounts spread {_spread(stock.characteristic(log_h))[1]}")
for st in pf.PARAM_STOCKS:
    report(st, pf.simulate(img, pf.ParamScanParams(stock=st, seed=1, grain=0.0, flare=0.0)))
