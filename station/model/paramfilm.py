"""A second, independent negative generator: parametric, not spectral.  Never trained on.

`station.model.film` simulates a negative from measured spectra (sensitivities,
dye densities, base) and a spectral camera.  This module writes negatives from a
different parametrisation, so evaluation can hold out a whole *family* of
negatives, not only stocks.  Nothing here uses a spectrum or the measured film data:

1. **Scene -> layer exposure.** Linear scene RGB, lit by a light of gains
   `scene_light` (a cast in the film's three bands), mixed by a 3x3 film
   sensitivity matrix `film_mix` (rows: the red/green/blue-sensitive layers; the
   off-diagonal part is the layers' spectral overlap), scaled so an 18 % grey
   gets log10 H = 0 at `scene_ev = 0`.
2. **Characteristic curves.** Per layer a Richards (generalised logistic) curve in
   log H with its own maximum density, slope (gamma at the inflection), inflection
   point and asymmetry `nu` (a long toe or a short one, a soft or hard shoulder):
   a different family of shapes than film.py's softplus difference.
3. **Dyes with crosstalk and partial masking.** Seen in the scanner's three
   bands, the formed dyes' densities are `C @ dye`: C has 1 on the diagonal and
   the dyes' unwanted absorptions off it (magenta absorbs blue, cyan absorbs
   green...).  Masking couplers cancel `mask_strength` of the off-diagonal part
   as dye forms and leave, where no dye formed, the mask's colour: the base
   density `base` (support + fog + mask, orange: blue > green > red) plus
   `fog` (neutral).
4. **Scan.** Band transmittances `10**-D` times the backlight's band powers
   (`backlight`), a veiling glare (`flare`: a fraction of the frame's mean light
   added everywhere), then the camera: a 3x3 sensitivity matrix `camera_mix`
   (its own crosstalk between the bands) and white-balance gains; the scan gain
   puts the blank film at `BASE_LEVEL * 2**scan_ev` of sensor white in its
   brightest channel.
5. **Sensor.** Shot noise from a `full_well` in electrons, read noise, clipping,
   14-bit quantisation.

Ground truth: the scene as the photographer saw it (the input positive, sRGB):
the same definition as film.py, so evaluation code uses either.  `blank()` gives
the scan of an unexposed frame (pure base + fog) for the same settings: the
"blank" a user shoots once per roll and scan setting.

Named stocks (`PARAM_STOCKS`) are fixed presets for `station evaluate --family param`;
`random_param_params()` draws new ones (tests).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from station.model.film import NegativeScan, sensor_read, srgb_decode

BASE_LEVEL = 0.7   # blank film at scan_ev = 0 (brightest channel, fraction of sensor white)


@dataclass(frozen=True)
class ParamStock:
    """A parametric colour-negative stock (all per layer/band: red, green, blue)."""
    name: str
    dmax: tuple = (2.4, 2.6, 2.8)        # density of a fully exposed layer above base
    gamma: tuple = (0.60, 0.65, 0.70)    # slope of the curve at its inflection (density per log H)
    inflect: tuple = (0.6, 0.6, 0.6)     # log H of the inflection (relative to an 18 % grey)
    nu: tuple = (1.6, 1.6, 1.6)          # Richards asymmetry: > 1 long toe, < 1 short toe
    film_mix: tuple = ((0.90, 0.10, 0.00), (0.08, 0.84, 0.08), (0.00, 0.12, 0.88))
    crosstalk: tuple = ((1.0, 0.10, 0.02), (0.25, 1.0, 0.08), (0.10, 0.45, 1.0))  # band x dye
    mask_strength: float = 0.7
    base: tuple = (0.25, 0.55, 0.85)     # band density of base + mask
    fog: float = 0.08


# Presets for evaluation: different curve shapes, crosstalk, masking, base colour.
PARAM_STOCKS = {
    "param_daylight_200": ParamStock("param_daylight_200"),
    "param_portrait_400": ParamStock(
        "param_portrait_400", dmax=(2.1, 2.3, 2.5), gamma=(0.52, 0.55, 0.62), inflect=(0.9, 0.8, 0.7), nu=(2.2, 1.8, 1.3),
        film_mix=((0.86, 0.14, 0.00), (0.12, 0.78, 0.10), (0.02, 0.16, 0.82)),
        crosstalk=((1.0, 0.14, 0.04), (0.30, 1.0, 0.12), (0.16, 0.55, 1.0)), mask_strength=0.55,
        base=(0.30, 0.62, 0.95), fog=0.12),
    "param_vivid_100": ParamStock(
        "param_vivid_100", dmax=(2.8, 2.9, 3.0), gamma=(0.72, 0.70, 0.78), inflect=(0.4, 0.5, 0.45), nu=(1.1, 1.3, 0.9),
        film_mix=((0.94, 0.06, 0.00), (0.05, 0.90, 0.05), (0.00, 0.08, 0.92)),
        crosstalk=((1.0, 0.08, 0.03), (0.20, 1.0, 0.06), (0.08, 0.38, 1.0)), mask_strength=0.85,
        base=(0.22, 0.50, 0.78), fog=0.06),
}
CAMERAS = {   # rows: camera R, G, B; columns: the film's red, green, blue bands
    "pcam_1": ((1.0, 0.12, 0.02), (0.10, 1.0, 0.15), (0.02, 0.10, 1.0)),
    "pcam_2": ((1.0, 0.22, 0.05), (0.18, 1.0, 0.25), (0.05, 0.20, 1.0)),
}
WHITE_BALANCE = {"pcam_1": (1.9, 1.0, 1.5), "pcam_2": (2.2, 1.0, 1.3)}
BACKLIGHTS = {   # power in the film's red, green, blue bands
    "white_led": (1.0, 1.0, 0.95), "warm_led": (1.25, 1.0, 0.7), "rgb_triplet": (0.8, 1.0, 1.2), "flash": (0.95, 1.0, 1.1),
}


@dataclass
class ParamScanParams:
    stock: str | ParamStock = "param_daylight_200"
    scene_light: tuple = (1.0, 1.0, 1.0)   # scene light per band (relative; 1 = the film's reference light)
    scene_ev: float = 0.0
    scan_ev: float = 0.0
    camera: str = "pcam_1"
    backlight: str = "white_led"
    flare: float = 0.01          # veiling glare: fraction of the frame's mean light added everywhere
    grain: float = 0.004
    full_well: float = 400000.0
    read_noise: float = 3.0
    seed: int | None = 0

    @property
    def stock_obj(self) -> ParamStock:
        if isinstance(self.stock, ParamStock):
            return self.stock
        if self.stock not in PARAM_STOCKS:
            raise ValueError(f"unknown parametric stock {self.stock!r}; known: {', '.join(PARAM_STOCKS)}")
        return PARAM_STOCKS[self.stock]


def richards(x: np.ndarray, dmax, gamma, x0, nu) -> np.ndarray:
    """Generalised logistic D(x) = dmax * (1 + nu*exp(-k(x - x0)))**(-1/nu), k chosen so the
    slope at x0 is `gamma`.  D -> 0 far below (toe), -> dmax far above (shoulder)."""
    # slope at x0: dmax * k * (1+nu)**(-1/nu - 1)
    k = gamma / (dmax * (1.0 + nu) ** (-1.0 / nu - 1.0))
    return dmax * np.power(1.0 + nu * np.exp(np.clip(-k * (x - x0), -60, 60)), -1.0 / nu)


def _band_density(dye: np.ndarray, st: ParamStock) -> np.ndarray:
    C = np.asarray(st.crosstalk, float)
    off = C - np.diag(np.diag(C))
    Ceff = np.diag(np.diag(C)) + (1.0 - st.mask_strength) * off
    # the mask: where no dye formed, the mask couplers carry the base colour (in `base`);
    # as dye forms, the mask is used up by the part of the unwanted absorption it cancels
    return np.asarray(st.base, float) + st.fog + dye @ Ceff.T


def _scan(band_D: np.ndarray, p: ParamScanParams, rng, flare_mean=None):
    st = p.stock_obj
    light = np.asarray(BACKLIGHTS[p.backlight], float)
    cam = np.asarray(CAMERAS[p.camera], float) * np.asarray(WHITE_BALANCE[p.camera], float)[:, None]
    T = (10.0 ** -band_D) * light
    base_T = 10.0 ** -(np.asarray(st.base, float) + st.fog) * light
    mean_T = T.mean(0) if flare_mean is None else flare_mean
    T = T + p.flare * mean_T
    raw = T @ cam.T
    base_raw = (base_T + p.flare * mean_T) @ cam.T
    clear_raw = light @ cam.T
    gain = BASE_LEVEL * 2.0 ** p.scan_ev / base_raw.max()
    sig = sensor_read(raw * gain, p.full_well, p.read_noise, rng)
    return sig, base_raw * gain, clear_raw * gain, mean_T


def simulate(positive: np.ndarray, params: ParamScanParams | None = None, **kw) -> NegativeScan:
    """The camera scan of a parametric colour negative of the scene `positive` (sRGB, HxWx3)."""
    p = replace(params) if params is not None else ParamScanParams()
    for k, v in kw.items():
        setattr(p, k, v)
    st = p.stock_obj
    pos = np.asarray(positive)
    if pos.dtype.kind in "ui":
        pos = pos.astype(np.float64) / np.iinfo(pos.dtype).max
    pos = np.clip(pos[..., :3].astype(np.float64), 0, 1)
    h, w, _ = pos.shape
    rng = np.random.default_rng(p.seed)
    lin = srgb_decode(pos).reshape(-1, 3)
    M = np.asarray(st.film_mix, float)
    M = M / M.sum(1, keepdims=True)                  # a grey exposes every layer alike
    H = (lin * np.asarray(p.scene_light, float)) @ M.T / 0.18 * 2.0 ** p.scene_ev
    x = np.log10(np.maximum(H, 1e-7))
    dye = np.stack([richards(x[:, c], st.dmax[c], st.gamma[c], st.inflect[c], st.nu[c]) for c in range(3)], 1)
    if p.grain > 0:
        dye = dye + rng.normal(size=dye.shape) * p.grain * np.sqrt(np.maximum(dye, 0.02))
    sig, base_rgb, clear_rgb, _ = _scan(_band_density(dye, st), p, rng)
    return NegativeScan(camera_rgb=sig.reshape(h, w, 3).astype(np.float32), positive=pos.astype(np.float32),
                        base_rgb=base_rgb.astype(np.float32), clear_rgb=clear_rgb.astype(np.float32), params=p)


def blank(params: ParamScanParams | None = None, size: int = 64) -> np.ndarray:
    """Camera RGB (size x size x 3) of an unexposed, developed frame (base + fog + mask)
    scanned with the same settings: what `station roll calibrate` is given as the blank."""
    p = replace(params) if params is not None else ParamScanParams()
    p.scene_ev = -40.0
    p.seed = None if p.seed is None else p.seed + 99991
    return simulate(np.zeros((size, size, 3)), p).camera_rgb


def random_param_params(rng: np.random.Generator) -> ParamScanParams:
    """A random stock (curves, crosstalk, masking, base colour, fog) and scanning setup."""
    u = rng.uniform
    st = ParamStock(
        "param_random", dmax=tuple(u(2.0, 3.0, 3)), gamma=tuple(u(0.5, 0.8, 3)), inflect=tuple(u(0.3, 1.0, 3)),
        nu=tuple(u(0.8, 2.4, 3)),
        film_mix=tuple(map(tuple, np.eye(3) + u(0.0, 0.15, (3, 3)) * (1 - np.eye(3)))),
        crosstalk=tuple(map(tuple, np.eye(3) + np.array([[0, .12, .03], [.28, 0, .1], [.12, .45, 0]]) * u(0.6, 1.4, (3, 3)))),
        mask_strength=float(u(0.5, 0.9)), base=(float(u(0.2, 0.32)), float(u(0.48, 0.65)), float(u(0.75, 0.98))),
        fog=float(u(0.04, 0.15)))
    return ParamScanParams(stock=st, scene_light=tuple(u(0.85, 1.15, 3)), scene_ev=float(u(-1, 2)),
                           scan_ev=float(u(-1, 0.5)), camera=str(rng.choice(list(CAMERAS))),
                           backlight=str(rng.choice(list(BACKLIGHTS))), flare=float(u(0.0, 0.02)),
                           seed=int(rng.integers(1 << 31)))


__all__ = ["ParamStock", "ParamScanParams", "PARAM_STOCKS", "simulate", "blank", "random_param_params", "richards",
           "BASE_LEVEL"]
