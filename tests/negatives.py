"""Analytic colour negatives for the engine tests (independent of the film generator).

A scene of linear reflectances is exposed onto a film with per-layer gammas
and an orange base; the scan is light × 10^-density, mosaicked into a real
Bayer DNG.  Optional rebate border (pure base), sprocket holes (clear light,
brighter than base) and black holder edges.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from station.io.dng import mosaic, write_bayer_dng

BASE_DENSITY = np.array([0.25, 0.62, 0.92])  # R, G, B: the orange mask
GAMMA = np.array([0.55, 0.62, 0.68])  # per-layer contrast
LIGHT = np.array([0.80, 0.95, 0.90])  # backlight through the camera's channels


def expose(scene: np.ndarray, gamma=GAMMA, base=BASE_DENSITY, light=LIGHT, scan_ev: float = 0.0) -> np.ndarray:
    """Scene linear HxWx3 (0..1] → camera-linear scan of its negative."""
    logE = np.log10(np.clip(scene, 1e-4, None))
    d_img = gamma * (logE + 2.5)  # density above base; 0 at logE=-2.5 (deep shadow)
    d_img = 2.2 * np.tanh(np.clip(d_img, 0, None) / 2.2)  # shoulder
    density = base + d_img
    return (light * 10.0 ** (-density) * 2.0 ** scan_ev).astype(np.float32)


def grey_ramp(h: int = 240, w: int = 360, steps: int = 12) -> np.ndarray:
    """Scene: vertical bands of neutral reflectance from 2 % to 90 %, log-spaced."""
    vals = np.geomspace(0.02, 0.9, steps)
    idx = np.minimum((np.arange(w) * steps) // w, steps - 1)
    return np.repeat(np.repeat(vals[idx][None, :, None], h, 0), 3, 2).astype(np.float32)


def with_rebate(scan: np.ndarray, border: int = 40, holes: bool = True, holder: int = 0,
                base=BASE_DENSITY, light=LIGHT, scan_ev: float = 0.0) -> np.ndarray:
    """Surround a scan with film rebate (base only), sprocket holes and black holder edges."""
    h, w, _ = scan.shape
    H, W = h + 2 * border, w + 2 * border
    rebate = (light * 10.0 ** (-base) * 2.0 ** scan_ev).astype(np.float32)
    out = np.empty((H, W, 3), np.float32)
    out[:] = rebate
    out[border:border + h, border:border + w] = scan
    if holes:
        clear = np.minimum(light * 2.0 ** scan_ev, 1.0)
        hh, hw, pitch = border // 2, border // 2, border
        for x in range(pitch // 2, W - hw, pitch):
            out[border // 4: border // 4 + hh, x:x + hw] = clear
            out[H - border // 4 - hh: H - border // 4, x:x + hw] = clear
    if holder:
        out[:holder] = 0.001
        out[-holder:] = 0.001
    return out


def add_noise(scan: np.ndarray, seed: int = 0, full_well: float = 60000.0, read: float = 2e-4) -> np.ndarray:
    """Shot noise (a sensor of `full_well` electrons) plus read noise, then clipped."""
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(np.maximum(scan, 0) / full_well + read**2)
    return np.clip(scan + rng.normal(0, 1, scan.shape).astype(np.float32) * sigma, 0, 1).astype(np.float32)


def write_negative_dng(path: Path, scan: np.ndarray, seed: int = 0, noise: bool = True) -> Path:
    h, w, _ = scan.shape
    scan = scan[: h - h % 2, : w - w % 2]
    noisy = add_noise(scan, seed) if noise else np.clip(scan, 0, 1)
    cfa = (mosaic(noisy) * 65535 + 0.5).astype(np.uint16)
    return write_bayer_dng(path, cfa, make="Station", model="Test Negative")


def blank_then_negatives(n: int) -> bytes:
    """A frame source for the PTP/IP emulator (n: its shot number, from 1) on a roll that is
    calibrated first: shot 1 is a blank piece of film, the later ones negatives."""
    from station.capture.samples import blank_dng_bytes, negative_dng_bytes

    return blank_dng_bytes() if n == 1 else negative_dng_bytes(seed=n)


def blank_light_then_negatives(n: int) -> bytes:
    """As blank_then_negatives, with shot 2 a frame of the bare light (the roll's flat field)."""
    from station.capture.samples import light_dng_bytes

    return light_dng_bytes() if n == 2 else blank_then_negatives(n)
