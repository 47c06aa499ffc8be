"""The classic density inversion: no model, for comparison and as a fallback.

Maths (per channel c, D = density above the film base):
1. Frame black and white points in density: D_lo_c = P0.5(D_c) (thinnest:
   the shadows) and D_hi_c = P99.5(D_c) (densest: the highlights).  Taking
   them per channel removes the dye layers' different contrasts and the
   mask's colour, as a lab printer's per-channel balance does.
2. Relative scene log exposure: e_c = R * (D_c - D_hi_c) / (D_hi_c - D_lo_c),
   0 at the highlight and -R at the shadow; R = 2.2 (about 7.3 stops).
3. Linear positive y_c = 10 ** e_c * HEADROOM, then sRGB encoding and a mild
   print-like S-curve around mid-grey.
Pure numpy; the frozen `ClassicParams` carries the constants.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from station.pipeline.decode import linear_to_srgb


@dataclass(frozen=True)
class ClassicParams:
    low_pct: float = 0.5
    high_pct: float = 99.5
    log_range: float = 2.2
    headroom: float = 0.92
    contrast: float = 0.25  # strength of the S-curve in sRGB space
    border: float = 0.12  # outer fraction of each side left out of the metering


def frame_points(D: np.ndarray, params: ClassicParams = ClassicParams()) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (D_lo, D_hi) of a frame, from a subsample of its picture area.

    Metered on the central region (the outer `border` of each side holds the
    rebate, sprocket holes and holder), and only on film densities: below
    -0.05 is light through no film, above 3.2 is the holder or a masked edge.
    """
    D = np.asarray(D, np.float32)
    if D.ndim == 3 and min(D.shape[:2]) >= 8:
        h, w = D.shape[:2]
        by, bx = int(h * params.border), int(w * params.border)
        centre = D[by: h - by, bx: w - bx] if h - 2 * by > 8 and w - 2 * bx > 8 else D
        # Block means (about 256 px on the long side) keep sensor noise out of the percentiles.
        k = max(2, max(centre.shape[:2]) // 256)
        ch, cw = (centre.shape[0] // k) * k, (centre.shape[1] // k) * k
        blocks = centre[:ch, :cw].reshape(ch // k, k, cw // k, k, 3).mean(axis=(1, 3))
        s = blocks.reshape(-1, 3)
    else:  # (N, 3) samples already chosen (pooled block means of a roll's frames)
        s = D.reshape(-1, 3)
    film = s[np.all((s > -0.05) & (s < 3.2), axis=1)]
    s = film if len(film) else s
    lo = np.percentile(s, params.low_pct, axis=0)
    hi = np.percentile(s, params.high_pct, axis=0)
    hi = np.maximum(hi, lo + 0.05)
    return lo.astype(np.float32), hi.astype(np.float32)


def s_curve(v: np.ndarray, strength: float) -> np.ndarray:
    """A monotone S-curve on [0,1] fixing 0, 0.5 and 1 (strength in [0, 0.5))."""
    return v + strength * (v - 0.5) * (1.0 - np.abs(2.0 * v - 1.0))


def classic_invert(D: np.ndarray, params: ClassicParams = ClassicParams(), points=None) -> np.ndarray:
    """HxWx3 density above base → HxWx3 float32 sRGB-encoded positive in [0,1]."""
    lo, hi = points if points is not None else frame_points(D, params)
    e = (D - hi) * (params.log_range / (hi - lo))
    y = np.power(10.0, np.minimum(e, 0.2), dtype=np.float32) * params.headroom
    out = linear_to_srgb(y)
    out = s_curve(out, params.contrast)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def classic_pixel(z: np.ndarray, params: ClassicParams = ClassicParams()) -> np.ndarray:
    """The pixel-wise half of the classic inversion, on z = (D - D_lo) / (D_hi - D_lo).

    e = R * (z - 1), so classic_pixel(z) == classic_invert(D) with the same points."""
    z = np.asarray(z, dtype=np.float32)
    e = (z - np.float32(1.0)) * np.float32(params.log_range)
    y = np.power(10.0, np.minimum(e, 0.2), dtype=np.float32) * params.headroom
    return np.clip(s_curve(linear_to_srgb(y), params.contrast), 0.0, 1.0).astype(np.float32)


class ClassicInverter:
    """Inverter protocol wrapper: `__call__(D) -> sRGB positive`.

    It has the model contract's two-part shape too (so it runs through the 3-D
    LUT like a learned model): `frame_affine(D) -> (A, b)`, `normaliser(D) -> z`
    with z = A*D + b (0 at the frame's shadow point, 1 at its highlight point),
    `pixel_fn(z)` and `z_range` (beyond the top, where the output reaches white, it is constant; below
    the bottom it is black to within 0.001)."""

    name = "classic"
    z_range_exact = True  # constant beyond z_range: a LUT needs no margin

    def __init__(self, params: ClassicParams = ClassicParams()):
        self.params = params
        # the output saturates (sRGB 1.0) where y = 10**e * headroom reaches 1: put that
        # kink on the LUT's top face, beyond it the function is constant (clamping is exact)
        top = 1.0 + min(0.2, float(np.log10(1.0 / params.headroom))) / params.log_range
        bottom = 1.0 - 4.0 / params.log_range
        self.z_range = (np.full(3, bottom, np.float32), np.full(3, top, np.float32))

    def frame_affine(self, D: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = frame_points(D, self.params)
        A = (1.0 / (hi - lo)).astype(np.float32)
        return A, (-lo * A).astype(np.float32)

    def normaliser(self, D: np.ndarray, affine=None) -> np.ndarray:
        A, b = affine if affine is not None else self.frame_affine(D)
        return (np.asarray(D, np.float32) * A + b).astype(np.float32)

    def pixel_fn(self, z: np.ndarray) -> np.ndarray:
        return classic_pixel(z, self.params)

    def __call__(self, D: np.ndarray, affine=None) -> np.ndarray:
        if affine is None:
            return classic_invert(D, self.params)
        return self.pixel_fn(self.normaliser(D, affine).reshape(-1, 3)).reshape(np.shape(D))
