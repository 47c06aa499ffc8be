"""Synthetic colour negatives as Bayer DNGs, for the demo and the tests.

Each frame is a different scene (gradients, discs and bars placed by a seed),
turned into a negative the way film does it: density grows with log exposure,
every layer sits on the orange mask (film base), and the camera sees the light
that gets through, mosaicked RGGB and written with station.io.dng.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

# Transmission of the film base (the orange mask) for R, G, B as a camera under
# a daylight LED would record it.
FILM_BASE = np.array([0.80, 0.48, 0.28], dtype=np.float32)
GAMMA = np.array([0.62, 0.66, 0.70], dtype=np.float32)  # density per decade of exposure


def scene(h: int, w: int, seed: int) -> np.ndarray:
    """A positive scene, linear, HxWx3 in [0.02, 1]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    y /= h
    x /= w
    angle = rng.uniform(0, np.pi)
    t = (np.cos(angle) * x + np.sin(angle) * y)
    t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
    c0, c1 = rng.uniform(0.05, 0.9, 3), rng.uniform(0.05, 0.9, 3)
    img = (1 - t)[..., None] * c0 + t[..., None] * c1
    for _ in range(rng.integers(3, 7)):
        cy, cx, r = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.25)
        mask = ((y - cy) ** 2 + ((x - cx) * w / h) ** 2) < r * r
        img[mask] = rng.uniform(0.03, 1.0, 3)
    # a grey step wedge along the bottom: handy to eyeball the inversion
    steps = 8
    band = y > 0.9
    img[band] = (np.floor(x[band] * steps) / (steps - 1))[..., None] * 0.95 + 0.03
    return np.clip(img, 0.02, 1.0).astype(np.float32)


def negative_raw(h: int, w: int, seed: int, exposure: float = 0.85) -> np.ndarray:
    """Linear camera RGB (HxWx3, 1.0 = sensor white) of the negative of `scene`."""
    pos = scene(h, w, seed)
    density = GAMMA * np.log10(pos / 0.02)  # 0 in the deepest shadow (clear film)
    trans = FILM_BASE * 10.0 ** (-density)
    rng = np.random.default_rng(seed + 1)
    raw = trans * exposure + rng.normal(0, 0.002, trans.shape).astype(np.float32)
    # a strip of bare film base at the left edge (the rebate), as on a real scan
    raw[:, : max(2, w // 40)] = FILM_BASE * exposure
    return np.clip(raw, 0, 1)


def negative_dng_bytes(h: int = 400, w: int = 600, seed: int = 0, *, model: str = "Virtual Negative") -> bytes:
    """One synthetic negative as the bytes of a Bayer DNG (RGGB, 16-bit)."""
    from station.io.dng import mosaic, write_bayer_dng

    rgb = negative_raw(h, w, seed)
    cfa = mosaic(np.round(rgb * 65535).astype(np.uint16), "RGGB")
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "neg.dng"
        write_bayer_dng(path, cfa, "RGGB", black=0, white=65535, make="Station", model=model)
        return path.read_bytes()


def blank_dng_bytes(h: int = 400, w: int = 600, seed: int = 0, exposure: float = 0.85) -> bytes:
    """A blank frame (developed, unexposed film: the base alone) as the bytes of a Bayer DNG."""
    from station.io.dng import mosaic, write_bayer_dng

    rng = np.random.default_rng(seed)
    rgb = np.clip(FILM_BASE * exposure + rng.normal(0, 0.002, (h, w, 3)).astype(np.float32), 0, 1)
    cfa = mosaic(np.round(rgb * 65535).astype(np.uint16), "RGGB")
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "blank.dng"
        write_bayer_dng(path, cfa, "RGGB", black=0, white=65535, make="Station", model="Virtual Negative")
        return path.read_bytes()


def light_dng_bytes(h: int = 400, w: int = 600, seed: int = 0, level: float = 0.8, falloff: float = 0.2) -> bytes:
    """A frame of the bare light (no film) with a radial corner fall-off, as the bytes of a Bayer DNG."""
    from station.io.dng import mosaic, write_bayer_dng

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((x - (w - 1) / 2) ** 2 + (y - (h - 1) / 2) ** 2) / (((w - 1) / 2) ** 2 + ((h - 1) / 2) ** 2)
    light = np.array([0.80, 0.95, 0.90], np.float32) * level * (1 - falloff * r2)[..., None]
    rgb = np.clip(light + rng.normal(0, 0.002, (h, w, 3)).astype(np.float32), 0, 1)
    cfa = mosaic(np.round(rgb * 65535).astype(np.uint16), "RGGB")
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "light.dng"
        write_bayer_dng(path, cfa, "RGGB", black=0, white=65535, make="Station", model="Virtual Light")
        return path.read_bytes()


def write_negatives(folder: str | os.PathLike, n: int, h: int = 400, w: int = 600, seed: int = 0) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"negative_{i + 1:02d}.dng"
        p.write_bytes(negative_dng_bytes(h, w, seed + i))
        out.append(p)
    return out
