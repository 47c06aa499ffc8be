"""Evaluation of inverters on held-out generated negatives (and user pairs).

Each evaluation frame is a scene (held-out photo crop or procedural scene) with a
ColorChecker and a grey ramp pasted in, shot on a held-out stock with a random
camera, backlight, exposure error (-0.5..+1 EV) and light (+-10 % colour
temperature around the stock's reference).  The same negative is also scanned at
-1 EV and +0.5 EV to measure how much the result moves with scan exposure.
Densities use the simulated film base (the base estimator is tested elsewhere).

Metrics (sRGB outputs against the scene ground truth):
  r2          coefficient of determination over all pixels
  de_mean     mean CIEDE2000 over all pixels;  de_p95: its 95th percentile
  grey_C      mean CIELAB chroma C* of the grey-ramp patches (output)
  hue_err     mean |hue angle difference| (deg) on the saturated ColorChecker patches
  scan_dE     mean CIEDE2000 between the results of the -1 EV and +0.5 EV scans, on
              4x4 block means (the systematic change)
  scan_dE_px  the same per pixel (adds the two scans' different sensor noise)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from station.model import film
from station.model.metrics import box_means, chroma, ciede2000, hue_error_deg, r2


@dataclass
class EvalFrame:
    D: np.ndarray
    positive: np.ndarray
    boxes: dict
    D_dark: np.ndarray     # same negative scanned at -1 EV
    D_bright: np.ndarray   # ... at +0.5 EV
    stock: str


def naive_invert(D: np.ndarray) -> np.ndarray:
    """The naive 1-x inversion of the base-normalised scan: 1 - sRGB(10^-D)."""
    return (1.0 - film.srgb_encode(10.0 ** -np.asarray(D, np.float64))).astype(np.float32)


def _density(scan: film.NegativeScan) -> np.ndarray:
    return scan.density


def eval_frames(stocks=film.HELD_OUT_STOCKS, scenes_per_stock: int = 6, size: int = 192, seed: int = 1000) -> list[EvalFrame]:
    rng = np.random.default_rng(seed)
    frames = []
    for st in stocks:
        stock = film.load_stock(st)
        for k in range(scenes_per_stock):
            if k % 2 == 0:
                base = film.photo(film.EVAL_PHOTOS[k // 2 % len(film.EVAL_PHOTOS)], size, rng)
            else:
                base = film.procedural_scene(size, int(rng.integers(10**6, 2 * 10**6)))
            img, boxes = film.scene_with_charts(base)
            p = film.ScanParams(stock=st, scene_K=float(stock.reference_K * rng.uniform(0.9, 1.1)),
                                scene_ev=float(rng.uniform(-0.5, 1.0)), scan_ev=0.0,
                                camera=str(rng.choice(list(film.CAMERAS))),
                                backlight=str(rng.choice(list(film.BACKLIGHTS))),
                                seed=int(rng.integers(1 << 31)))
            s0 = film.simulate(img, p)
            dark = film.simulate(img, film.ScanParams(**{**p.__dict__, "scan_ev": -1.0, "seed": p.seed + 1}))
            bright = film.simulate(img, film.ScanParams(**{**p.__dict__, "scan_ev": 0.5, "seed": p.seed + 2}))
            frames.append(EvalFrame(_density(s0), s0.positive, boxes, _density(dark), _density(bright), st))
    return frames


def _blocks(img: np.ndarray, k: int = 4) -> np.ndarray:
    """k x k block means (the systematic colour, without per-pixel sensor noise)."""
    h, w = (img.shape[0] // k) * k, (img.shape[1] // k) * k
    return img[:h, :w].reshape(h // k, k, w // k, k, 3).mean(axis=(1, 3))


def evaluate_method(fn, frames: list[EvalFrame]) -> dict:
    preds, tgts, des, greys, hues, scan = [], [], [], [], [], []
    for f in frames:
        out = np.asarray(fn(f.D), np.float32)
        preds.append(out.reshape(-1, 3))
        tgts.append(f.positive.reshape(-1, 3))
        des.append(ciede2000(out, f.positive).reshape(-1))
        greys.append(chroma(box_means(out, f.boxes["ramp"])))
        sat = [f.boxes["checker"][i] for i in film.SATURATED_PATCHES]
        hues.append(hue_error_deg(box_means(out, sat), box_means(f.positive, sat)))
        dk, br = np.asarray(fn(f.D_dark)), np.asarray(fn(f.D_bright))
        scan.append((float(ciede2000(_blocks(dk), _blocks(br)).mean()), float(ciede2000(dk, br).mean())))
    de = np.concatenate(des)
    return {
        "r2": r2(np.concatenate(preds), np.concatenate(tgts)),
        "de_mean": float(de.mean()), "de_p95": float(np.percentile(de, 95)),
        "grey_C": float(np.concatenate(greys).mean()),
        "hue_err": float(np.concatenate(hues).mean()),
        "scan_dE": float(np.mean([x[0] for x in scan])),
        "scan_dE_px": float(np.mean([x[1] for x in scan])),
    }


def evaluate_pairs(fn, frames) -> dict:
    """R^2, mean/p95 CIEDE2000 on user pairs (training.Frame objects, masked)."""
    from station.model.metrics import psnr
    P, T = [], []
    for f in frames:
        m = np.ones(f.D.shape[:2], bool) if f.mask is None else f.mask
        out = np.asarray(fn(f.D), np.float32)
        P.append(out[m])
        T.append(f.positive[m])
    p, t = np.concatenate(P), np.concatenate(T)
    de = ciede2000(p, t)
    return {"r2": r2(p, t), "de_mean": float(de.mean()), "de_p95": float(np.percentile(de, 95)), "psnr": psnr(p, t)}


TARGETS = {"r2": (">=", 0.95), "grey_C": ("<=", 2.0), "hue_err": ("<=", 6.0), "scan_dE": ("<=", 1.5)}
COLUMNS = [("r2", "R²", "{:.3f}"), ("de_mean", "ΔE00 mean", "{:.2f}"), ("de_p95", "ΔE00 p95", "{:.2f}"),
           ("grey_C", "grey C*", "{:.2f}"), ("hue_err", "hue err °", "{:.1f}"), ("scan_dE", "ΔE(−1EV,+0.5EV)", "{:.2f}"),
           ("scan_dE_px", "same, per pixel", "{:.2f}")]


def format_table(results: dict[str, dict | None], columns=COLUMNS) -> str:
    """Markdown table: one row per method ('n/a' for a missing method)."""
    head = "| method | " + " | ".join(c[1] for c in columns) + " |"
    sep = "|---|" + "---|" * len(columns)
    rows = [head, sep]
    for name, res in results.items():
        cells = ["n/a" if res is None or k not in res else fmt.format(res[k]) for k, _, fmt in columns]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    tgt = ["target " + {">=": "≥", "<=": "≤"}[TARGETS[k][0]] + f" {TARGETS[k][1]:g}" if k in TARGETS else "" for k, _, _ in columns]
    rows.append("| *target* | " + " | ".join(tgt) + " |")
    return "\n".join(rows)


def normaliser_invariance(kinds=("none", "scale", "percentile", "quantile"), seed: int = 7, size: int = 160) -> dict:
    """How much the model's input z for the same scene points moves when only the
    stock, the scene exposure, the light or the scan exposure changes.

    For each factor, a scene (photo + charts) is simulated under several settings of
    that factor (others fixed); the figure is the mean over grey-ramp and
    ColorChecker patches and channels of the std of the patch's z across settings,
    divided by the std of z across patches (1 = the input moves as much as the
    whole image spans; 0 = perfectly invariant).  Lower is better."""
    from station.model.normalise import Normaliser
    rng = np.random.default_rng(seed)
    img, boxes = film.scene_with_charts(film.photo("rocket", size, rng))
    allb = boxes["ramp"] + boxes["checker"]
    base = dict(stock="kodak_portra_400", scene_ev=0.0, scan_ev=0.0, camera="cam_a", backlight="high_cri_led", seed=1)
    factors = {
        "stock": [dict(stock=s) for s in film.training_stocks()],
        "scene exposure (−1…+1.5 EV)": [dict(scene_ev=e) for e in (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5)],
        "light (0.85–1.25 × ref K)": [dict(scene_K=5500.0 * f) for f in (0.85, 0.95, 1.05, 1.15, 1.25)],
        "scan exposure (−1…+0.5 EV)": [dict(scan_ev=e) for e in (-1.0, -0.5, 0.0, 0.5)],
        "camera × backlight": [dict(camera=c, backlight=b) for c in film.CAMERAS for b in film.BACKLIGHTS],
    }
    out = {}
    for fname, settings in factors.items():
        Ds = [film.simulate(img, film.ScanParams(**{**base, **s})).density for s in settings]
        out[fname] = {}
        for k in kinds:
            nm = Normaliser(k)
            Z = np.array([box_means(nm(D), allb) for D in Ds])  # (settings, patches, 3)
            spread = Z.std(0).mean()
            span = Z.std(1).mean()
            out[fname][k] = float(spread / span)
    return out
