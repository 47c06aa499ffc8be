#!/usr/bin/env python3
"""Derive the compact film parameters in `station/model/data/films.json`.

Reads the measured film profiles of the spektrafilm project (commit 8f621749,
GPL-3.0; the JSON files live in ../shared/film-profiles, which the project
never needs at run time) and keeps, per *negative* stock:

* spectra resampled to a 10 nm grid, 380-780 nm (41 samples): per-layer
  log10 spectral sensitivity, per-dye spectral density, base (+ orange mask)
  density.  Gaps in the measurements (NaN, usually at the ends of the range)
  are filled: by linear interpolation inside, by the nearest value at a
  sensitivity end and by zero for dyes / nearest for the base outside.
* each layer's characteristic (D-log E) curve fitted to a six-parameter
  toe / straight-line / shoulder form (see `station.model.film.curve`):
      D(x) = d0 + g * ( t*softplus((x-a)/t) - u*softplus((x-b)/u) )
  i.e. fog d0, contrast (gamma) g, toe at a with softness t, shoulder at b
  with softness u.  The fit residual is stored beside the parameters.

Usage:  python tools/fit_film_profiles.py [--src ../shared/film-profiles] [--out station/model/data/films.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

WL = np.arange(380, 781, 10, dtype=float)
PROVENANCE = (
    "Fitted from the film profiles of spektrafilm (https://github.com/andreavolpato/spektrafilm, "
    "commit 8f621749, data GPL-3.0, (c) Andrea Volpato; original data from Kodak and Fujifilm "
    "data sheets) by tools/fit_film_profiles.py"
)


def softplus(x):
    return np.logaddexp(0.0, x)


def curve(x, p):
    d0, g, a, t, b, u = p
    return d0 + g * (t * softplus((x - a) / t) - u * softplus((x - b) / u))


def fill(y: np.ndarray, outside: str) -> np.ndarray:
    """Fill NaNs: interpolate inside, `outside` = 'zero' | 'nearest' at the ends."""
    y = np.asarray(y, float).copy()
    x = np.arange(len(y))
    ok = np.isfinite(y)
    if ok.sum() < 2:
        raise ValueError("too few finite samples")
    inner = np.interp(x, x[ok], y[ok])
    if outside == "zero":
        inner[: np.argmax(ok)] = 0.0
        inner[len(y) - np.argmax(ok[::-1]):] = 0.0
    return inner


def resample(wl, y, outside):
    y = fill(y, outside)
    return np.interp(WL, wl, y)


def fit_curve(le, dc):
    """Least-squares fit of the toe/shoulder form; returns params and RMS residual."""
    dmax = float(np.max(dc))
    # initial guess: mid-slope from the data
    slope = np.gradient(dc, le)
    g0 = float(np.max(slope))
    p0 = [float(dc[0]), g0, float(le[np.argmax(slope > 0.2 * g0)]), 0.3,
          float(le[np.argmax(dc > 0.9 * dmax)]), 0.3]
    lo = [-0.1, 0.05, -4.0, 0.02, -2.0, 0.02]
    hi = [0.5, 3.0, 3.0, 2.0, 6.0, 2.0]
    p0 = np.clip(p0, np.array(lo) + 1e-6, np.array(hi) - 1e-6)
    res = least_squares(lambda p: curve(le, p) - dc, p0, bounds=(lo, hi))
    rms = float(np.sqrt(np.mean(res.fun ** 2)))
    return res.x, rms


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = Path(__file__).resolve().parent.parent
    ap.add_argument("--src", type=Path, default=here.parent / "shared" / "film-profiles")
    ap.add_argument("--out", type=Path, default=here / "station" / "model" / "data" / "films.json")
    args = ap.parse_args(argv)
    files = sorted(args.src.glob("*.json"))
    if not files:
        print(f"no film profiles in {args.src}", file=sys.stderr)
        return 2
    stocks = {}
    for f in files:
        prof = json.loads(f.read_text())
        info, d = prof["info"], prof["data"]
        if info.get("support") != "film" or info.get("type") != "negative":
            continue  # print papers are not simulated
        wl = np.asarray(d["wavelengths"], float)
        ls = np.asarray(d["log_sensitivity"], float)
        cd = np.asarray(d["channel_density"], float)
        bd = np.asarray(d["base_density"], float)
        le = np.asarray(d["log_exposure"], float)
        dc = np.asarray(d["density_curves"], float)
        params, rms = [], []
        for c in range(3):
            p, r = fit_curve(le, dc[:, c])
            params.append([round(float(v), 5) for v in p])
            rms.append(round(r, 5))
        stocks[info["stock"]] = {
            "name": info["name"],
            "use": info.get("use"),
            "reference_illuminant": info.get("reference_illuminant"),
            "log_sensitivity": np.round(np.stack([resample(wl, ls[:, c], "nearest") for c in range(3)], 1), 4).tolist(),
            "dye_density": np.round(np.stack([np.clip(resample(wl, cd[:, c], "zero"), 0, None) for c in range(3)], 1), 4).tolist(),
            "base_density": np.round(resample(wl, bd, "nearest"), 4).tolist(),
            "curve_params": params,
            "curve_fit_rms": rms,
        }
        print(f"{info['stock']:24s} curve fit RMS (density) R/G/B: {rms}")
    out = {
        "provenance": PROVENANCE,
        "wavelengths_nm": WL.astype(int).tolist(),
        "curve_form": "D(x)=d0+g*(t*softplus((x-a)/t)-u*softplus((x-b)/u)), x=log10 exposure; params [d0,g,a,t,b,u]",
        "stocks": stocks,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, separators=(",", ":")))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, {len(stocks)} stocks)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
