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
                  (the default; see docs/MODEL.md for the numbers behind the choice).

Percentiles are computed on at most 65 536 pixels picked with a fixed stride
(deterministic, fast), ignoring non-finite values.
"""
from __future__ import annotations

import numpy as np

KINDS = ("none", "scale", "percentile")
MIN_SPREAD = 0.05  # density; a flat frame is not stretched beyond this
DEFAULTS = {"lo": 0.5, "hi": 99.5}


def _sample(D: np.ndarray, max_n: int = 65536) -> np.ndarray:
    flat = np.asarray(D, np.float32).reshape(-1, 3)
    step = max(1, flat.shape[0] // max_n)
    s = flat[::step]
    ok = np.all(np.isfinite(s), 1)
    s = s[ok]
    if s.shape[0] == 0:
        raise ValueError("no finite density values in the frame")
    return s


def frame_affine(D: np.ndarray, kind: str = "percentile", lo: float = DEFAULTS["lo"], hi: float = DEFAULTS["hi"]):
    """Per-channel affine parameters (A, b), each (3,) float32, from frame statistics.

    D: HxWx3 (or Nx3) densities above base."""
    if kind == "none":
        return np.ones(3, np.float32), np.zeros(3, np.float32)
    s = _sample(D)
    if kind == "scale":
        p_hi = np.percentile(s, hi, axis=0)
        A = 1.0 / np.maximum(p_hi, MIN_SPREAD)
        return A.astype(np.float32), np.zeros(3, np.float32)
    if kind == "percentile":
        p_lo, p_hi = np.percentile(s, [lo, hi], axis=0)
        A = 1.0 / np.maximum(p_hi - p_lo, MIN_SPREAD)
        return A.astype(np.float32), (-p_lo * A).astype(np.float32)
    raise ValueError(f"unknown normaliser kind {kind!r} (known: {', '.join(KINDS)})")


def apply_affine(D: np.ndarray, A, b) -> np.ndarray:
    """z = A*D + b per channel; non-finite densities become the channel's b (D = 0, base)."""
    D = np.asarray(D, np.float32)
    D = np.where(np.isfinite(D), D, 0.0)
    return (D * np.asarray(A, np.float32) + np.asarray(b, np.float32)).astype(np.float32)


class Normaliser:
    """Callable normaliser: `Normaliser(kind, lo, hi)(D) -> z` (same shape as D)."""

    def __init__(self, kind: str = "percentile", lo: float = DEFAULTS["lo"], hi: float = DEFAULTS["hi"]):
        if kind not in KINDS:
            raise ValueError(f"unknown normaliser kind {kind!r} (known: {', '.join(KINDS)})")
        self.kind, self.lo, self.hi = kind, float(lo), float(hi)

    def params(self, D: np.ndarray):
        return frame_affine(D, self.kind, self.lo, self.hi)

    def __call__(self, D: np.ndarray, affine=None) -> np.ndarray:
        A, b = affine if affine is not None else self.params(D)
        return apply_affine(D, A, b)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "lo": self.lo, "hi": self.hi}

    @classmethod
    def from_dict(cls, d: dict) -> "Normaliser":
        return cls(d.get("kind", "percentile"), d.get("lo", DEFAULTS["lo"]), d.get("hi", DEFAULTS["hi"]))
