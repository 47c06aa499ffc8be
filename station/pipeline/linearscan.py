"""`--format linear-tiff`: the scan itself, for editing elsewhere.

What the file holds (docs/METADATA.md): the input decoded to linear camera RGB (LibRaw,
no white balance, no colour matrix, black subtracted; a TIFF scan as read), the flat field
divided out when one is used, then each channel divided by the film base the positive was
made with (the blank's, the roll's or the frame's rebate), so that the clear film base is
1.0 (65535) and the orange mask is gone.  Nothing else: no inversion, no print, no crop, no
curve.  Brighter than the base (sprocket holes, the bare light) clips at 65535.  The ICC
profile says linear (gamma 1.0); its primaries are sRGB's as a stand-in: the numbers are
the camera's own channels.
"""
from __future__ import annotations

import numpy as np


def linear_scan(rgb: np.ndarray, base_rgb, rows: int = 512) -> np.ndarray:
    """HxWx3 linear float (1.0 = sensor white) / base -> uint16, 65535 = the film base."""
    inv = (65535.0 / np.maximum(np.asarray(base_rgb, np.float32).reshape(3), 1e-6)).astype(np.float32)
    out = np.empty(rgb.shape[:2] + (3,), np.uint16)
    for r0 in range(0, rgb.shape[0], rows):
        band = rgb[r0:r0 + rows, :, :3].astype(np.float32) * inv
        out[r0:r0 + rows] = np.clip(band + 0.5, 0.0, 65535.0).astype(np.uint16)
    return out
