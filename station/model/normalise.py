"""Per-frame input normalisation of densities: z = A*D + b, per channel.

The pipeline hands the model D = -log10(camera_rgb / film_base_rgb) (density
above the film base, HxWx3).  Scan exposure and backlight/camera colour are
already cancelled by dividing by the base; what remains different from roll to
roll is the *scene* exposure (a shift of every channel by gamma*dlogH), the
stock's contrast per layer (a scale) and the light's colour (a per-channel
shift).  A per-channel affine map removes exactly these to first order.

Kinds (all return A, b as float32 arrays of shape (3,)):

* ``none``        A = 1, b = 0 (the raw densities);
* ``scale``       A_c = 1 / P_hi(D_c), b = 0 (anchored at the base: D = 0 stays 0);
* ``percentile``  A_c = 1 / (P_hi - P_lo), b_c = -P_lo * A_c: the frame's
                  shadows go to ~0 and its highlights to ~1 in every channel
                  (the default: best on held-out stocks, see docs/MODEL.md);
* ``quantile``    percentile, then each channel's whole quantile function is
                  matched (least squares) to the mean of the three;
* ``neutral``     percentile, then the channels are aligned on the frame's
                  near-neutral pixels (a grey-axis fit);
* ``shift`` / ``shift_shared``  subtract the per-channel / common median;
* ``learned``     [A | b] = ridge regression of frame statistics (percentiles of
                  D and of the colour differences), fitted in training to the
                  per-frame affine that best maps D to the positive's density.

Statistics are metered on the picture: edge rows/columns that are mostly rebate,
sprocket holes or holder are trimmed first (the pipeline crops only after
inverting), then on block means (2x2, more for
big frames: sensor noise stays out) of at most 65 536 pixels picked with a
fixed stride, ignoring non-finite densities and those outside -0.05..3.2.
"""
from __future__ import annotations

import numpy as np

KINDS = ("base", "none", "scale", "percentile", "quantile", "neutral", "shift", "shift_shared", "learned")
NEUTRAL_TOL = 0.08
QUANTILES = (1, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 98, 99)
FEATURE_PCTS = (1.0, 10.0, 50.0, 90.0, 99.0)


DIFF_PCTS = (10.0, 50.0, 90.0)
N_FEATURES = 3 * len(FEATURE_PCTS) + 2 * len(DIFF_PCTS) + 1


def frame_features(D: np.ndarray) -> np.ndarray:
    """Frame statistics for the learned normaliser -> (N_FEATURES,) float64:
    per-channel percentiles of D (FEATURE_PCTS, channel-major), percentiles
    (DIFF_PCTS) of the colour differences D_r - D_g and D_b - D_g (the frame's
    colour balance, a 'grey world' in density), and a constant 1."""
    s = _sample(D)
    p = np.percentile(s, FEATURE_PCTS, axis=0)  # (5, 3)
    diffs = np.stack([s[:, 0] - s[:, 1], s[:, 2] - s[:, 1]], 1)
    q = np.percentile(diffs, DIFF_PCTS, axis=0)  # (3, 2)
    return np.concatenate([p.T.reshape(-1), q.T.reshape(-1), [1.0]])
MIN_SPREAD = 0.05  # density; a flat frame is not stretched beyond this
DEFAULTS = {"lo": 0.5, "hi": 99.5}


METER_BORDER = 0.12  # outer fraction of each side left out of the metering (as classic)


def _sample(D: np.ndarray, max_n: int = 65536) -> np.ndarray:
    """Pixels (N,3) the frame statistics are taken from: the central region (the
    outer METER_BORDER of each side may hold rebate, sprocket holes, holder - the
    pipeline crops only after inverting), as 2x2+ block means.  No absolute
    density thresholds: the statistics stay exact under a per-channel shift of D,
    i.e. under any error of the film-base estimate."""
    D = np.asarray(D, np.float32)
    if D.ndim == 3:
        h, w = D.shape[:2]
        by, bx = int(h * METER_BORDER), int(w * METER_BORDER)
        if h - 2 * by >= 16 and w - 2 * bx >= 16:
            D = D[by:h - by, bx:w - bx]
    if D.ndim == 3 and min(D.shape[:2]) >= 32:
        # block means (2x2, or more for big frames) keep sensor noise out of the percentiles
        k = max(2, max(D.shape[:2]) // 256)
        h, w = (D.shape[0] // k) * k, (D.shape[1] // k) * k
        D = D[:h, :w].reshape(h // k, k, w // k, k, 3).mean(axis=(1, 3))
    flat = D.reshape(-1, 3)
    step = max(1, flat.shape[0] // max_n)
    s = flat[::step]
    ok = np.all(np.isfinite(s), 1)
    s = s[ok]
    if s.shape[0] == 0:
        raise ValueError("no finite density values in the frame")
    return s


def frame_affine(D: np.ndarray, kind: str = "percentile", lo: float = DEFAULTS["lo"], hi: float = DEFAULTS["hi"],
                 weights=None, anchor: float = 1.0):
    """Per-channel affine parameters (A, b), each (3,) float32, from frame statistics.

    D: HxWx3 (or Nx3) densities above base.  `weights` (N_FEATURESx6) only for kind "learned":
    [A | b] = frame_features(D) @ weights (a ridge regression fitted in training)."""
    if kind == "learned":
        if weights is None:
            raise ValueError("the learned normaliser needs its regression weights")
        ab = frame_features(D) @ np.asarray(weights, np.float64)
        A = ab[:3]
        # keep the sign and keep the gain within a sane range
        A = np.sign(A + 1e-12) * np.clip(np.abs(A), 0.2, 10.0)
        return A.astype(np.float32), ab[3:].astype(np.float32)
    if kind == "none":
        return np.ones(3, np.float32), np.zeros(3, np.float32)
    s = _sample(D)
    if kind == "base":
        # anchored at the film base: D = 0 is black in every channel (the base says where
        # neutral black is), the frame's highlight P_hi is white in every channel, and a
        # *common* (neutral) levels shift puts the frame's shadows at 0
        p_lo, p_hi = np.percentile(s, [lo, hi], axis=0)
        p_hi = np.maximum(p_hi, MIN_SPREAD)
        m = float(np.clip(np.median(p_lo / p_hi), 0.0, 0.8))
        # black point per channel: `anchor` of the way from the frame's own shadows to the
        # base-anchored neutral one (anchor 1: black's colour from the base alone)
        black = anchor * m * p_hi + (1.0 - anchor) * np.minimum(p_lo, p_hi - MIN_SPREAD)
        A = 1.0 / (p_hi - black)
        return A.astype(np.float32), (-black * A).astype(np.float32)
    if kind == "scale":
        p_hi = np.percentile(s, hi, axis=0)
        A = 1.0 / np.maximum(p_hi, MIN_SPREAD)
        return A.astype(np.float32), np.zeros(3, np.float32)
    if kind == "percentile":
        p_lo, p_hi = np.percentile(s, [lo, hi], axis=0)
        A = 1.0 / np.maximum(p_hi - p_lo, MIN_SPREAD)
        return A.astype(np.float32), (-p_lo * A).astype(np.float32)
    if kind == "quantile":
        # 2-point (lo, hi) normalisation first, then a least-squares per-channel
        # affine that matches each channel's whole quantile function to the mean
        # of the three: the tone distributions (and so the grey axis) line up.
        p_lo, p_hi = np.percentile(s, [lo, hi], axis=0)
        A = 1.0 / np.maximum(p_hi - p_lo, MIN_SPREAD)
        b = -p_lo * A
        q = np.percentile(s, QUANTILES, axis=0) * A + b      # (nq, 3)
        ref = q.mean(1)
        for c in range(3):
            X = np.c_[q[:, c], np.ones(len(q))]
            a_c, e_c = np.linalg.lstsq(X, ref, rcond=None)[0]
            a_c = float(np.clip(a_c, 0.5, 2.0))
            A[c], b[c] = A[c] * a_c, b[c] * a_c + e_c
        return A.astype(np.float32), b.astype(np.float32)
    if kind == "neutral":
        # 2-point normalisation, then align the channels on the frame's
        # near-neutral pixels (grey axis): each channel is regressed on the mean of
        # the three over pixels whose channels already agree within NEUTRAL_TOL.
        p_lo, p_hi = np.percentile(s, [lo, hi], axis=0)
        A = 1.0 / np.maximum(p_hi - p_lo, MIN_SPREAD)
        b = -p_lo * A
        for _ in range(2):
            z = s * A + b
            m = z.mean(1)
            sel = (np.abs(z - m[:, None]).max(1) < NEUTRAL_TOL) & (m > 0.03) & (m < 0.97)
            if sel.sum() < max(50, 0.02 * len(z)):
                break
            for c in range(3):
                X = np.c_[m[sel], np.ones(sel.sum())]
                al, be = np.linalg.lstsq(X, z[sel, c], rcond=None)[0]
                al = float(np.clip(al, 0.7, 1.4))
                A[c], b[c] = A[c] / al, (b[c] - be) / al
        return A.astype(np.float32), b.astype(np.float32)
    if kind in ("shift", "shift_shared"):
        med = np.percentile(s, 50, axis=0)
        if kind == "shift_shared":
            med = np.full(3, med.mean())
        return np.ones(3, np.float32), (-med).astype(np.float32)
    raise ValueError(f"unknown normaliser kind {kind!r} (known: {', '.join(KINDS)})")


def apply_affine(D: np.ndarray, A, b) -> np.ndarray:
    """z = A*D + b per channel; non-finite densities become the channel's b (D = 0, base)."""
    D = np.asarray(D, np.float32)
    D = np.where(np.isfinite(D), D, 0.0)
    return (D * np.asarray(A, np.float32) + np.asarray(b, np.float32)).astype(np.float32)


class Normaliser:
    """Callable normaliser: `Normaliser(kind, lo, hi)(D) -> z` (same shape as D)."""

    def __init__(self, kind: str = "percentile", lo: float = DEFAULTS["lo"], hi: float = DEFAULTS["hi"], weights=None,
                 anchor: float = 1.0):
        if kind not in KINDS:
            raise ValueError(f"unknown normaliser kind {kind!r} (known: {', '.join(KINDS)})")
        self.kind, self.lo, self.hi = kind, float(lo), float(hi)
        self.anchor = float(anchor)
        if not 0.0 < self.anchor <= 1.0:
            raise ValueError(f"normaliser anchor must be in (0, 1], got {anchor}")
        self.weights = None
        if weights is not None:
            w = np.asarray(weights, np.float64)
            if w.shape != (N_FEATURES, 6) or not np.all(np.isfinite(w)):
                raise ValueError(f"learned normaliser weights must be finite {N_FEATURES}x6, got {w.shape}")
            self.weights = w

    def params(self, D: np.ndarray):
        return frame_affine(D, self.kind, self.lo, self.hi, self.weights, self.anchor)

    def __call__(self, D: np.ndarray, affine=None) -> np.ndarray:
        A, b = affine if affine is not None else self.params(D)
        return apply_affine(D, A, b)

    def to_dict(self) -> dict:
        d = {"kind": self.kind, "lo": self.lo, "hi": self.hi}
        if self.kind == "base":
            d["anchor"] = self.anchor
        if self.weights is not None:
            d["weights"] = np.round(self.weights, 6).tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Normaliser":
        return cls(d.get("kind", "percentile"), d.get("lo", DEFAULTS["lo"]), d.get("hi", DEFAULTS["hi"]), d.get("weights"),
                   d.get("anchor", 1.0))


def oracle_affine(D: np.ndarray, positive: np.ndarray, mask=None):
    """The per-channel affine that best maps this frame's D to the positive's own
    density -log10(linear positive) (least squares over mid-tone pixels): the
    target of the learned normaliser.  Returns (A, b) float64 (3,)."""
    from station.model.film import srgb_decode
    lin = srgb_decode(np.asarray(positive, np.float64)).reshape(-1, 3)
    Dm = np.asarray(D, np.float64).reshape(-1, 3)
    ok_all = np.all(np.isfinite(Dm), 1)
    if mask is not None:
        ok_all &= np.asarray(mask).reshape(-1)
    A, b = np.zeros(3), np.zeros(3)
    for c in range(3):
        ok = ok_all & (lin[:, c] > 0.02) & (lin[:, c] < 0.9)
        if ok.sum() < 50:
            A[c], b[c] = -1.5, 1.0
            continue
        t = -np.log10(lin[ok, c])
        X = np.c_[Dm[ok, c], np.ones(ok.sum())]
        A[c], b[c] = np.linalg.lstsq(X, t, rcond=None)[0]
    return A, b


def fit_learned(Ds, positives, masks=None, ridge: float = 1e-3) -> "Normaliser":
    """Fit the learned normaliser: ridge regression frame_features -> oracle (A, b)."""
    X, Y = [], []
    for i, (D, P) in enumerate(zip(Ds, positives)):
        m = None if masks is None else masks[i]
        A, b = oracle_affine(D, P, m)
        X.append(frame_features(D))
        Y.append(np.concatenate([A, b]))
    X, Y = np.array(X), np.array(Y)
    if len(X) < 4:
        raise ValueError("the learned normaliser needs at least 4 training frames")
    reg = ridge * np.eye(X.shape[1])
    reg[-1, -1] = 0.0
    W = np.linalg.solve(X.T @ X + reg * len(X), X.T @ Y)
    return Normaliser("learned", weights=W)
