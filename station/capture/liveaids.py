"""Focus and framing aids on the live view (station.capture.live runs them per frame).

measure(lv, lin, point, prev) -> {"focus", "focus_best", "point", "edges", "tilt_deg"}

* focus: the variance of the Laplacian of the live view's green channel in a 128 x 128-px
  window at `point` (fractions of the frame; the centre by default), divided by the
  window's mean squared, x 1000: grain in focus gives crisp pixel-to-pixel changes, so it
  peaks at best focus and does not depend on the light's level.  `focus_best` is the
  highest seen since the last reset (a new roll).
* edges: the picture's rectangle (fractions x0, y0, x1, y1) found in linear light: the film
  base (gaps between pictures, the rebate) is the brightest wide area that is not the holes;
  columns (rows) whose central part is mostly base are outside the picture.
* tilt_deg: the angle of the picture's left and right edges from vertical (their mean),
  from the strongest gradient per band of rows: positive = turned clockwise.
"""
from __future__ import annotations

import numpy as np

WINDOW = 128


def focus_score(green: np.ndarray, point: tuple[float, float] | None) -> float:
    from scipy.ndimage import laplace

    h, w = green.shape
    px, py = point if point else (0.5, 0.5)
    cx, cy = int(px * w), int(py * h)
    half = WINDOW // 2
    x0, y0 = min(max(0, cx - half), max(0, w - WINDOW)), min(max(0, cy - half), max(0, h - WINDOW))
    win = green[y0:y0 + WINDOW, x0:x0 + WINDOW].astype(np.float32)
    m = float(win.mean())
    return float(laplace(win).var() / max(m * m, 1e-3) * 1000.0)


def _run_edges(frac: np.ndarray, thr: float = 0.7) -> tuple[int, int] | None:
    """Inside interval around the centre where frac (share of base) stays below thr."""
    n = len(frac)
    c = n // 2
    if frac[c] >= thr:
        inside = np.flatnonzero(frac < thr)
        if not len(inside):
            return None
        c = int(inside[np.argmin(np.abs(inside - n // 2))])
    lo = c
    while lo > 0 and frac[lo - 1] < thr:
        lo -= 1
    hi = c
    while hi < n - 1 and frac[hi + 1] < thr:
        hi += 1
    return lo, hi + 1


def picture_edges(lin: np.ndarray) -> tuple[tuple[float, float, float, float] | None, float | None]:
    g = lin[::3, ::3].mean(axis=2)
    h, w = g.shape
    mid = g[int(h * 0.3):int(h * 0.7)]
    col_med = np.median(mid, axis=0)
    # the base: the level of the brightest tenth of the columns' medians (gaps), or of the rows' (rebate)
    row_med = np.median(g[:, int(w * 0.3):int(w * 0.7)], axis=1)
    base = float(max(np.percentile(col_med, 95), np.percentile(row_med, 90)))
    if base <= 0:
        return None, None
    near = np.abs(g - base) < 0.06 * base
    xs = _run_edges(near[int(h * 0.3):int(h * 0.7)].mean(axis=0))
    if xs is None:
        return None, None
    ys = _run_edges(near[:, xs[0]:xs[1]].mean(axis=1) if xs[1] > xs[0] else np.ones(h))
    if ys is None:
        return None, None
    rect = (xs[0] / w, ys[0] / h, xs[1] / w, ys[1] / h)
    # tilt: the strongest horizontal gradient near each vertical edge, per band of rows
    gx = np.abs(np.diff(g, axis=1))
    angles = []
    for edge in (xs[0], xs[1] - 1):
        a, b = max(0, edge - 8), min(w - 1, edge + 8)
        if b - a < 4:
            continue
        rows = np.arange(ys[0] + 4, ys[1] - 4, 4)
        if len(rows) < 6:
            continue
        pos = np.array([a + int(np.argmax(gx[r:r + 4, a:b].sum(axis=0))) for r in rows], np.float32)
        fit = np.polyfit(rows.astype(np.float32), pos, 1)
        angles.append(float(np.degrees(np.arctan(fit[0]))))
    tilt = float(np.mean(angles)) if angles else None
    return rect, (None if tilt is None else -tilt)


def measure(lv: np.ndarray, lin: np.ndarray, point=None, prev: dict | None = None) -> dict:
    focus = focus_score(lv[..., 1], point)
    best = max(focus, (prev or {}).get("focus_best") or 0.0)
    rect, tilt = picture_edges(lin)
    return {"focus": round(focus, 2), "focus_best": round(best, 2), "point": point,
            "edges": None if rect is None else [round(v, 4) for v in rect],
            "tilt_deg": None if tilt is None else round(tilt, 2)}
