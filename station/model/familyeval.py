"""In-family and cross-family evaluation (`station evaluate --family spectral|param|both`).

A *family* is a negative generator: `spectral` (station.model.film, the one the
model is trained on; evaluated on its held-out stocks) or `param`
(station.model.paramfilm, an independent parametric generator, never trained on).

Protocol, per stock (one roll): one scene (a held-out photo or a procedural
scene, with a ColorChecker and a grey ramp), one scene light, camera and
backlight; the negative exposed at film exposure -1, 0, +1, +2 EV, each negative
scanned at -1, 0, +0.5 EV: 12 frames.  For each scan exposure a blank frame
(unexposed film, same scan settings) is scanned too and the film base is measured
from it (`station.pipeline.base.base_from_blank`), as a user with a blank does.

Figures (sRGB outputs against the scene as the photographer saw it):
  grey_C    mean CIELAB C* of the grey-ramp patches
  hue_err   mean |hue difference| (deg) on the saturated ColorChecker patches
  r2_lab    R² in CIELAB after an affine fit of L* per frame (exposure/contrast of
            the print forgiven, colour not), mean over frames
  de_mean   mean CIEDE2000 per pixel against the truth
  scan_dE   mean CIEDE2000 (4x4 block means) between the outputs of the same
            negative scanned at different exposures (all three pairs)
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from station.model import film, paramfilm
from station.model.metrics import box_means, chroma, ciede2000, hue_error_deg, to_lab

FILM_EVS = (-1.0, 0.0, 1.0, 2.0)
SCAN_EVS = (-1.0, 0.0, 0.5)
FAMILIES = ("spectral", "param")


@dataclass
class RollFrame:
    D: np.ndarray          # density above the base measured from the blank
    positive: np.ndarray   # truth, sRGB
    boxes: dict
    stock: str
    film_ev: float
    scan_ev: float


def _density(rgb, base):
    return (-np.log10(np.maximum(rgb, 1e-6) / np.asarray(base, np.float32))).astype(np.float32)


def _scene(rng, size, k):
    if k % 2 == 0:
        img = film.photo(film.EVAL_PHOTOS[0], size, rng)
    else:
        img = film.procedural_scene(size, int(rng.integers(10**6, 2 * 10**6)))
    return film.scene_with_charts(img)


def family_frames(family: str, stocks=None, size: int = 160, seed: int = 2000, *, base_from_blank) -> list[RollFrame]:
    """12 frames per stock (FILM_EVS x SCAN_EVS) of the family, densities from the blank's base.

    base_from_blank(linear rgb) -> BaseEstimate: the pipeline's (`station.pipeline.base`), passed
    in by the caller (the model package does not import the pipeline)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r} (known: {', '.join(FAMILIES)})")
    rng = np.random.default_rng(seed + (0 if family == "spectral" else 1))
    if stocks is None:
        stocks = film.HELD_OUT_STOCKS if family == "spectral" else tuple(paramfilm.PARAM_STOCKS)
    frames = []
    for k, st in enumerate(stocks):
        img, boxes = _scene(rng, size, k)
        nseed = int(rng.integers(1 << 30))
        if family == "spectral":
            stock = film.load_stock(st)
            p0 = film.ScanParams(stock=st, scene_K=float(stock.reference_K * rng.uniform(0.9, 1.1)),
                                 camera=str(rng.choice(list(film.CAMERAS))),
                                 backlight=str(rng.choice(list(film.BACKLIGHTS))), seed=nseed)
        else:
            p0 = paramfilm.ParamScanParams(stock=st, scene_light=tuple(rng.uniform(0.9, 1.1, 3)),
                                           camera=str(rng.choice(list(paramfilm.CAMERAS))),
                                           backlight=str(rng.choice(list(paramfilm.BACKLIGHTS))),
                                           flare=float(rng.uniform(0.005, 0.02)), seed=nseed)
        for sev in SCAN_EVS:
            if family == "spectral":
                bl = film.simulate(np.zeros((48, 48, 3)), replace(p0, scene_ev=-40.0, scan_ev=sev, seed=nseed + 7)).camera_rgb
            else:
                bl = paramfilm.blank(replace(p0, scan_ev=sev), 48)
            base = base_from_blank(bl).rgb
            for fev in FILM_EVS:
                p = replace(p0, scene_ev=fev, scan_ev=sev)
                s = film.simulate(img, p) if family == "spectral" else paramfilm.simulate(img, p)
                frames.append(RollFrame(_density(s.camera_rgb, base), s.positive, boxes, st, fev, sev))
    return frames


def _blocks(img, k=4):
    h, w = (img.shape[0] // k) * k, (img.shape[1] // k) * k
    return img[:h, :w].reshape(h // k, k, w // k, k, 3).mean(axis=(1, 3))


def r2_lab_parts(pred, target) -> np.ndarray:
    """The R² lost in L*, a* and b* (3,): each channel's residual sum of squares over the total
    (all three channels) after the best affine map of the prediction's L* onto the truth's.
    R² = 1 - their sum."""
    lp, lt = to_lab(pred).reshape(-1, 3), to_lab(target).reshape(-1, 3)
    X = np.c_[lp[:, 0], np.ones(len(lp))]
    coef = np.linalg.lstsq(X, lt[:, 0], rcond=None)[0]
    lp = lp.copy()
    lp[:, 0] = X @ coef
    ss_tot = np.sum((lt - lt.mean(0)) ** 2)
    return np.sum((lt - lp) ** 2, axis=0) / ss_tot


def r2_lab_affine_L(pred, target) -> float:
    """R² over L*, a*, b* after the best affine map of the prediction's L* onto the truth's."""
    return float(1 - r2_lab_parts(pred, target).sum())


def evaluate_family(fn, frames: list[RollFrame]) -> dict:
    outs = [np.asarray(fn(f.D), np.float32) for f in frames]
    greys, hues, r2s, lost, des = [], [], [], [], []
    for f, o in zip(frames, outs):
        greys.append(chroma(box_means(o, f.boxes["ramp"])))
        sat = [f.boxes["checker"][i] for i in film.SATURATED_PATCHES]
        hues.append(hue_error_deg(box_means(o, sat), box_means(f.positive, sat)))
        parts = r2_lab_parts(o, f.positive)
        lost.append(parts)
        r2s.append(float(1 - parts.sum()))
        des.append(float(ciede2000(o, f.positive).mean()))
    scan = []
    groups = {}
    for f, o in zip(frames, outs):
        groups.setdefault((f.stock, f.film_ev), []).append(_blocks(o))
    for outs_g in groups.values():
        for i in range(len(outs_g)):
            for j in range(i + 1, len(outs_g)):
                scan.append(float(ciede2000(outs_g[i], outs_g[j]).mean()))
    lost = np.mean(lost, axis=0)
    return {"grey_C": float(np.concatenate(greys).mean()), "hue_err": float(np.concatenate(hues).mean()),
            "r2_lab": float(np.mean(r2s)), "de_mean": float(np.mean(des)),
            "scan_dE": float(np.mean(scan)) if scan else float("nan"),
            "r2_lost_L": float(lost[0]), "r2_lost_a": float(lost[1]), "r2_lost_b": float(lost[2])}


BREAKDOWN_COLUMNS = [("r2_lab", "R²", "{:.3f}"), ("r2_lost_L", "lost in L*", "{:.3f}"), ("r2_lost_a", "lost in a*", "{:.3f}"),
                     ("r2_lost_b", "lost in b*", "{:.3f}"), ("grey_C", "grey C*", "{:.2f}"), ("hue_err", "hue err °", "{:.1f}"),
                     ("de_mean", "ΔE00 mean", "{:.2f}")]


def breakdown(fns: dict, frames: list[RollFrame], by: str) -> str:
    """One markdown table: the figures of each method (fns: name -> inverter) per value of
    `by` ("stock", "film_ev" or "scan_ev"), with the R² lost split into L*, a*, b*."""
    keys = sorted({getattr(f, by) for f in frames}, key=lambda k: (isinstance(k, str), k))
    rows = [f"| method | {by} | " + " | ".join(c[1] for c in BREAKDOWN_COLUMNS) + " |",
            "|---|---|" + "---|" * len(BREAKDOWN_COLUMNS)]
    for name, fn in fns.items():
        for k in keys:
            r = evaluate_family(fn, [f for f in frames if getattr(f, by) == k])
            kk = f"{k:+g}" if not isinstance(k, str) else k
            rows.append(f"| {name} | {kk} | " + " | ".join(fmt.format(r[c]) for c, _, fmt in BREAKDOWN_COLUMNS) + " |")
    return "\n".join(rows)


COLUMNS = [("grey_C", "grey C*", "{:.2f}"), ("hue_err", "hue err °", "{:.1f}"), ("r2_lab", "R² (Lab, affine L*)", "{:.3f}"),
           ("de_mean", "ΔE00 mean", "{:.2f}"), ("scan_dE", "ΔE00 between scan exposures", "{:.2f}")]
TARGETS = {"grey_C": 2.5, "hue_err": 8.0, "r2_lab": 0.90, "scan_dE": 1.0}


def format_side_by_side(results: dict[str, dict[str, dict]]) -> str:
    """results[family][method] -> one markdown table, 'in / cross' cells when both families."""
    fams = list(results)
    methods = list(next(iter(results.values())))
    head = "| method (" + " / ".join(fams) + ") | " + " | ".join(c[1] for c in COLUMNS) + " |"
    rows = [head, "|---|" + "---|" * len(COLUMNS)]
    for m in methods:
        cells = [" / ".join(fmt.format(results[fa][m][k]) for fa in fams) for k, _, fmt in COLUMNS]
        rows.append(f"| {m} | " + " | ".join(cells) + " |")
    tg = [("≥ " if k == "r2_lab" else "≤ ") + f"{TARGETS[k]:g}" if k in TARGETS else "" for k, _, _ in COLUMNS]
    rows.append("| *target (cross-family)* | " + " | ".join(tg) + " |")
    return "\n".join(rows)
