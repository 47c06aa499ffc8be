"""The live positive's fast path: 8-bit live-view codes straight through the roll's LUT to
8-bit sRGB, in one pass.

A live-view frame has 256 codes per channel, and everything before the 3-D LUT is per
channel: code -> linear (the tone map) -> density against the base -> the normaliser's
z = A*D + b (per channel) -> the LUT's grid coordinate.  So each channel's 256 grid
coordinates are tabulated once per frame (the *shaper*, 3 x 256) and the pixels go code ->
shaper -> tetrahedral lookup -> uint8, with no float frame in between (the pipeline's own
`Lut3D.apply_u16` does the same for 16-bit RAW data).  The LUT is the inverter's compiled
one, the roll's print composed in (station.pipeline.lutinvert), so the picture is the one
`LutInverter.__call__` gives, to 8-bit rounding.

`available(fn)`: the inverter has a LUT and numba is there; otherwise the caller uses the
plain per-pixel path.
"""
from __future__ import annotations

import numpy as np

from station.model import lut as _lut


def available(fn) -> bool:
    """`fn` (the compiled inverter) has a 3-D LUT this path can use."""
    return _lut.HAVE_NUMBA and isinstance(getattr(fn, "lut", None), _lut.Lut3D)


def shaper(lut: "_lut.Lut3D", dtab: np.ndarray, affine) -> np.ndarray:
    """(3, 256) float32 grid coordinates: dtab (3 x 256 densities per code) through the
    normaliser (A, b) into the LUT's grid, clipped into it (NaN -> 0), as Lut3D.apply does."""
    A, b = affine
    scale, offset = lut.coords(A, b)
    t = dtab.astype(np.float32) * scale[:, None] + offset[:, None]
    t = np.clip(np.nan_to_num(t, nan=0.0), 0.0, lut.size - 1 - 1e-4)
    return np.ascontiguousarray(t, np.float32)


def apply_u8(lut: "_lut.Lut3D", lv: np.ndarray, shp: np.ndarray, method: str = "tetrahedral") -> np.ndarray:
    """HxWx3 uint8 codes -> HxWx3 uint8 sRGB through the shaper and the LUT."""
    src = np.ascontiguousarray(lv, np.uint8).reshape(-1, 3)
    out = np.empty_like(src)
    _lut.apply_shaped_nb(src, shp, lut.table.reshape(-1), lut.size, method == "tetrahedral", 255.0, out)
    return out.reshape(lv.shape)
