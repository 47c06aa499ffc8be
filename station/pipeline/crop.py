"""`--crop auto`: find the picture inside the film rebate and straighten it.

The picture is where the film carries image dye: density above the base
greater than `threshold` (the rebate sits at ~0), and below 3.2 (the holder
and masks are darker than any film).  On a block-averaged copy the largest
connected picture region gives the tilt (its orientation, for tilts up to
10°) and, after rotating, the bounding box whose rows and columns are mostly
picture.  The film base has already been measured from the rebate before
this stage, so cropping never changes the colours.
"""
from __future__ import annotations

import numpy as np

MAX_TILT_DEG = 10.0


def _picture_mask(D: np.ndarray, k: int, threshold: float, top: float = 3.2) -> np.ndarray:
    h, w = (D.shape[0] // k) * k, (D.shape[1] // k) * k
    m = D[:h, :w].mean(axis=2).reshape(h // k, k, w // k, k).mean(axis=(1, 3))
    return (m > threshold) & (m < top)


def slide_depth(D: np.ndarray) -> tuple[np.ndarray, float]:
    """A slide's densities turned the way a negative's are for finding its picture: a slide's
    rebate (unexposed E-6) is its densest black, not its thinnest film, so the crop measures
    how much thinner than that black the film is: (D_black - D), with D_black the frame's
    rebate's: the median of the outer 4 % of the frame's sides where it is denser than the
    frame's median (not the sprocket holes; the holder, denser still, is the smaller part).
    Returns (depth, the top of the film's range: above it is the bare light of a sprocket
    hole, brighter than any film); the holder, denser than the rebate, has depth < 0."""
    d = np.asarray(D, np.float32)
    m = d.mean(axis=2)
    h, w = m.shape
    by, bx = max(1, int(h * 0.04)), max(1, int(w * 0.04))
    band = np.concatenate([m[:by].ravel(), m[-by:].ravel(), m[:, :bx].ravel(), m[:, -bx:].ravel()])
    dense = band[band > np.median(m)]
    black = float(np.median(dense)) if dense.size else float(np.percentile(m, 99))
    return black - d, black + 0.05


def _span(frac: np.ndarray, need: float = 0.5) -> tuple[int, int] | None:
    good = frac >= need
    if not good.any():
        return None
    # longest run of good rows/columns
    best, start = (0, 0), None
    for i, g in enumerate(np.append(good, False)):
        if g and start is None:
            start = i
        elif not g and start is not None:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    return best


def tilt_degrees(D: np.ndarray, threshold: float = 0.06, top: float = 3.2) -> float:
    """Tilt of the picture area in degrees (positive = counter-clockwise), 0 if unsure."""
    from skimage.measure import label, regionprops

    k = max(1, max(D.shape[:2]) // 400)
    mask = _picture_mask(D, k, threshold, top)
    if mask.sum() < 100:
        return 0.0
    from scipy.ndimage import binary_fill_holes

    lab = label(binary_fill_holes(mask))  # content as thin as the rebate inside the picture is picture
    region = max(regionprops(lab), key=lambda r: r.area)
    if region.axis_major_length < 1.1 * region.axis_minor_length:
        return 0.0  # a square picture (6x6, 24x24 mm) has no major axis: its orientation would be noise
    angle = np.degrees(region.orientation)  # angle of the major axis to the row axis
    # Reduce to the smallest rotation that makes the axes horizontal/vertical.
    tilt = ((angle + 45.0) % 90.0) - 45.0
    return float(tilt) if abs(tilt) <= MAX_TILT_DEG and abs(tilt) > 0.2 else 0.0


def auto_crop(pos: np.ndarray, D: np.ndarray, threshold: float = 0.06, film: str | None = None) -> np.ndarray:
    """Positive (HxWx3) and its densities → the straightened picture area.  `film` "slide":
    the picture is what is thinner than the black rebate (`slide_depth`)."""
    from scipy import ndimage

    top = 3.2
    if film == "slide":
        D, top = slide_depth(D)
    tilt = tilt_degrees(D, threshold, top)
    if tilt:
        pos = ndimage.rotate(pos, -tilt, axes=(1, 0), reshape=False, order=1, mode="nearest")
        D = ndimage.rotate(D, -tilt, axes=(1, 0), reshape=False, order=1, mode="constant", cval=0.0)
    k = max(1, max(D.shape[:2]) // 800)
    mask = _picture_mask(D, k, threshold, top)
    rows, cols = _span(mask.mean(axis=1)), _span(mask.mean(axis=0))
    if rows is None or cols is None:
        return pos
    y0, y1, x0, x1 = rows[0] * k, rows[1] * k, cols[0] * k, cols[1] * k
    if (y1 - y0) < 0.2 * pos.shape[0] or (x1 - x0) < 0.2 * pos.shape[1]:
        return pos  # nothing plausible found: keep the full frame
    # a small inset keeps the soft edge of the rebate out
    iy, ix = max(1, (y1 - y0) // 100), max(1, (x1 - x0) // 100)
    return np.ascontiguousarray(pos[y0 + iy: y1 - iy, x0 + ix: x1 - ix])
