"""Image-quality metrics on sRGB-encoded images in [0,1] (arrays ...x3)."""
from __future__ import annotations

import numpy as np


def to_lab(srgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded (...,3) in [0,1] -> CIELAB (D65), same shape."""
    from skimage.color import rgb2lab
    a = np.clip(np.asarray(srgb, np.float64), 0, 1)
    return rgb2lab(a.reshape(-1, 1, 3)).reshape(a.shape)


def ciede2000(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel CIEDE2000 between two sRGB images (shape ...x3) -> shape ...."""
    from skimage.color import deltaE_ciede2000
    la, lb = to_lab(a), to_lab(b)
    return deltaE_ciede2000(la.reshape(-1, 3), lb.reshape(-1, 3)).reshape(la.shape[:-1])


def r2(pred: np.ndarray, target: np.ndarray) -> float:
    """Coefficient of determination over all pixels and channels (each channel about its own mean)."""
    p = np.asarray(pred, np.float64).reshape(-1, 3)
    t = np.asarray(target, np.float64).reshape(-1, 3)
    ss_res = np.sum((t - p) ** 2)
    ss_tot = np.sum((t - t.mean(0)) ** 2)
    return float(1.0 - ss_res / ss_tot) if ss_tot > 0 else float("nan")


def psnr(pred: np.ndarray, target: np.ndarray) -> float:
    """Peak signal-to-noise ratio (dB) with peak 1.0."""
    mse = float(np.mean((np.asarray(pred, np.float64) - np.asarray(target, np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def chroma(srgb: np.ndarray) -> np.ndarray:
    """CIELAB C* of sRGB colours (...,3) -> (...)."""
    lab = to_lab(srgb)
    return np.hypot(lab[..., 1], lab[..., 2])


def hue_error_deg(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Absolute CIELAB hue-angle difference in degrees (0..180) between colours (...,3)."""
    lp, lt = to_lab(pred), to_lab(target)
    hp = np.degrees(np.arctan2(lp[..., 2], lp[..., 1]))
    ht = np.degrees(np.arctan2(lt[..., 2], lt[..., 1]))
    d = np.abs(hp - ht) % 360
    return np.minimum(d, 360 - d)


def box_means(img: np.ndarray, boxes) -> np.ndarray:
    """Mean colour inside each (y0, y1, x0, x1) box -> (n, 3)."""
    return np.array([img[y0:y1, x0:x1].reshape(-1, 3).mean(0) for y0, y1, x0, x1 in boxes])
