"""From linear camera RGB to density above the film base.

`density(rgb, base) -> D` with D_c = -log10(rgb_c / base_c): 0 at the film
base, growing with the amount of dye the exposure made.  Dividing by the
base removes the light's colour and level and the scan exposure, so a frame
scanned one stop brighter gives the same D as long as the base is measured
under the same light (from the rebate of the same frame, or from the blank
frame of the roll shot with the same settings).  Values below 0 (a hole, a
flare) are kept, not clipped: an inverter decides what to do with them.
"""
from __future__ import annotations

import numpy as np

EPS = 1.0 / 65535.0


def density(rgb: np.ndarray, base: np.ndarray) -> np.ndarray:
    """HxWx3 linear RGB and (3,) base → HxWx3 float32 density above base."""
    base = np.asarray(base, dtype=np.float32).reshape(1, 1, 3)
    out = np.maximum(np.asarray(rgb, dtype=np.float32), EPS)
    np.divide(out, np.maximum(base, EPS), out=out)
    np.log10(out, out=out)
    np.negative(out, out=out)
    return out
