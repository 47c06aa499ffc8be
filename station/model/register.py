"""Automatic registration of a (negative, positive) pair that is not pixel-aligned
(different crop, rotation, scale - the normal case for lab scans).

Both images are reduced to one grey channel in which they look alike (the
negative's mean density, the positive's mean value), then histogram-equalised:
any monotone tone curve between them disappears, so ORB keypoints and
descriptors match.  A similarity transform (rotation, scale, translation) is
fitted with RANSAC, the positive is resampled onto the negative's pixel grid, and
a mask marks where both exist.  Pairs of the same size that already agree are
kept as they are.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class RegistrationError(ValueError):
    """The pair could not be registered."""


@dataclass
class Registration:
    positive: np.ndarray      # positive resampled onto the negative's grid (HxWx3)
    mask: np.ndarray          # HxW bool, where the positive is valid
    matrix: np.ndarray        # 3x3: negative (x, y) -> positive (x, y)
    rotation_deg: float
    scale: float
    inliers: int
    ncc: float                # agreement of the equalised grey images inside the mask
    method: str


def _grey_neg(neg: np.ndarray) -> np.ndarray:
    d = -np.log10(np.clip(np.asarray(neg, np.float64), 1e-4, None))
    return d.mean(-1)


def _grey_pos(pos: np.ndarray) -> np.ndarray:
    return np.asarray(pos, np.float64).mean(-1)


def _eq(g: np.ndarray) -> np.ndarray:
    from skimage.exposure import equalize_hist
    return equalize_hist(g, nbins=1024)


def _ncc(a, b, mask=None):
    if mask is not None:
        a, b = a[mask], b[mask]
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else 0.0


def _small(g, max_dim):
    from skimage.transform import rescale
    f = min(1.0, max_dim / max(g.shape))
    return (rescale(g, f, anti_aliasing=True) if f < 1 else g), f


def register_pair(negative: np.ndarray, positive: np.ndarray, max_dim: int = 512,
                  min_inliers: int = 12, min_ncc: float = 0.6) -> Registration:
    """Align `positive` (HpxWpx3, any size) to `negative` (HxWx3 linear camera RGB).

    Raises RegistrationError when no convincing transform is found."""
    from skimage.feature import ORB, match_descriptors
    from skimage.measure import ransac
    from skimage.transform import SimilarityTransform, warp, resize

    gn = _eq(_grey_neg(negative))
    gp = _eq(_grey_pos(positive))
    H, W = gn.shape
    if gp.shape == gn.shape:
        ncc0 = _ncc(gn, gp)
        if ncc0 >= 0.9:
            return Registration(np.asarray(positive), np.ones((H, W), bool), np.eye(3), 0.0, 1.0, 0, ncc0, "identity")
    sn, fn = _small(gn, max_dim)
    sp, fp = _small(gp, max_dim)
    try:
        orb_n = ORB(n_keypoints=1000, fast_threshold=0.05, downscale=1.2, n_scales=8)
        orb_p = ORB(n_keypoints=1000, fast_threshold=0.05, downscale=1.2, n_scales=8)
        orb_n.detect_and_extract(sn)
        orb_p.detect_and_extract(sp)
    except (RuntimeError, ValueError, IndexError) as exc:
        raise RegistrationError(f"no usable features ({exc})") from None
    if len(orb_n.keypoints) < min_inliers or len(orb_p.keypoints) < min_inliers:
        raise RegistrationError("too few features to register")
    matches = match_descriptors(orb_n.descriptors, orb_p.descriptors, cross_check=True, max_ratio=0.85)
    if len(matches) < min_inliers:
        raise RegistrationError(f"only {len(matches)} feature matches")
    # keypoints are (row, col); transforms work in (x, y) = (col, row), full resolution
    src = orb_n.keypoints[matches[:, 0]][:, ::-1] / fn
    dst = orb_p.keypoints[matches[:, 1]][:, ::-1] / fp
    rng = np.random.default_rng(0)
    model, inl = ransac((src, dst), SimilarityTransform, min_samples=3,
                        residual_threshold=2.0 / min(fn, fp), max_trials=3000, rng=rng)
    if model is None or inl is None or inl.sum() < min_inliers:
        raise RegistrationError(f"no consistent transform ({0 if inl is None else int(inl.sum())} inliers)")
    if hasattr(SimilarityTransform, "from_estimate"):  # refit on the inliers
        refit = SimilarityTransform.from_estimate(src[inl], dst[inl])
        model = refit if refit else model
    else:  # scikit-image < 0.26
        refit = SimilarityTransform()
        if refit.estimate(src[inl], dst[inl]):
            model = refit
    pos = np.asarray(positive, np.float64)
    warped = warp(pos, model, output_shape=(H, W), order=1, mode="constant", cval=np.nan, preserve_range=True)
    mask = np.all(np.isfinite(warped), -1)
    from scipy.ndimage import binary_erosion
    mask = binary_erosion(mask, iterations=2)
    if mask.mean() < 0.2:
        raise RegistrationError(f"the registered images overlap on only {mask.mean():.0%} of the negative")
    warped = np.where(mask[..., None], np.nan_to_num(warped), 0.0)
    ncc = _ncc(gn, _eq(_grey_pos(warped)), mask)
    if ncc < min_ncc:
        raise RegistrationError(f"registered images disagree (correlation {ncc:.2f} < {min_ncc})")
    return Registration(warped.astype(np.float32), mask, model.params.copy(), float(np.degrees(model.rotation)),
                        float(model.scale), int(inl.sum()), ncc, "orb+ransac")
