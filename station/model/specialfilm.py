"""Generated black-and-white negatives and colour slides, with film.py's rendering chain.

Two stocks beside film.py's colour negatives, each simulated per pixel through the same scene
model (film.py: reflectance basis, scene illuminant, 10 nm spectra), the same scan (a
backlight through the film, a camera's spectral sensitivities, shot/read noise, 14 bits):

* **silver_bw_400** (`simulate_bw`): one panchromatic layer (the sum of a colour stock's three
  layer sensitivities), a silver characteristic curve (film.curve: gamma 0.65, toe and shoulder),
  spectrally flat silver (a 4 % rise into the blue) on a clear neutral base + fog (0.25): no
  mask.  Ground truth: the scene's luminance as an sRGB grey (R = G = B).
* **e6_slide_100** (`simulate_slide`): a colour stock's layer sensitivities and dyes (no
  masking couplers; scaled so equal amounts make a grey neutral to the camera: `slide_dyes`), a reversal curve per layer (dye from Dmax 3.2 unexposed down to Dmin 0.15:
  a logistic in log exposure, slope -1.8 at mid-tone) on a thin neutral base.  The unexposed
  rebate is the densest black (`SpecialScan.base_rgb` is the rebate's camera RGB).  Ground
  truth: the scene (sRGB), as film.py's.

`add_rebate` (film.py) puts the rebate, sprocket holes and holder round either.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from station.model import film

BW_STOCK = "silver_bw_400"
SLIDE_STOCK = "e6_slide_100"
STOCKS = (BW_STOCK, SLIDE_STOCK)
BW_CURVE = (0.0, 0.65, -1.2, 0.3, 1.8, 0.3)  # film.curve params: d0, gamma, toe, toe width, shoulder, width
BW_BASE = 0.25  # clear base + fog, neutral
SLIDE_DMIN, SLIDE_DMAX = 0.15, 3.2  # dye amount (x peak density ~1.3) at white / unexposed
SLIDE_SLOPE = 1.8  # |dD/dlogH| at mid-tone
SLIDE_X0 = -0.44  # log exposure of the mid-density (18 % grey at 0 gives D ~0.95)
SLIDE_BASE = 0.08
SLIDE_LEVEL = 0.75  # the clear highlights' brightest channel at scan_ev 0 (fraction of white)


@dataclass
class SpecialParams:
    scene_K: float | None = None  # None: D55
    scene_ev: float = 0.0
    scan_ev: float = 0.0
    camera: str = "cam_a"
    backlight: str = "high_cri_led"
    grain: float = 0.004
    full_well: float = 640000.0
    read_noise: float = 2.0
    seed: int | None = 0
    source_stock: str = "kodak_portra_400"  # whose layer sensitivities (and dyes, for slides) are used


@dataclass
class SpecialScan:
    camera_rgb: np.ndarray  # HxWx3 float32 linear camera RGB (1.0 = white)
    positive: np.ndarray  # HxWx3 float32 sRGB ground truth
    base_rgb: np.ndarray  # (3,) camera RGB of the unexposed film (bw: base + fog; slide: its black)
    clear_rgb: np.ndarray  # (3,) camera RGB of the bare backlight
    stock: str = BW_STOCK
    params: SpecialParams = field(default_factory=SpecialParams)


def _scene(positive, p: SpecialParams):
    pos = np.asarray(positive)
    if pos.dtype.kind in "ui":
        pos = pos.astype(np.float64) / np.iinfo(pos.dtype).max
    if pos.ndim != 3 or pos.shape[2] < 3:
        raise ValueError(f"positive must be HxWx3, got {pos.shape}")
    stock = film.load_stock(p.source_stock)
    K = p.scene_K or 5500.0
    M_exp, M_tgt = film.scene_matrices(stock, K)
    lin = film.srgb_decode(pos[..., :3].astype(np.float64))
    return stock, K, lin, M_exp, M_tgt


def _setup(positive, params, kw):
    p = params or SpecialParams()
    for k, v in kw.items():
        setattr(p, k, v)
    return p, np.random.default_rng(p.seed), _scene(positive, p)


def _light(p: SpecialParams) -> np.ndarray:
    bl = film.BACKLIGHTS[p.backlight] if isinstance(p.backlight, str) else np.asarray(p.backlight, float)
    cam = film.CAMERAS[p.camera] if isinstance(p.camera, str) else np.asarray(p.camera, float)
    return bl[:, None] * cam  # (41, 3)


def simulate_bw(positive: np.ndarray, params: SpecialParams | None = None, **kw) -> SpecialScan:
    """The camera scan of a silver black-and-white negative of the scene `positive` (sRGB HxWx3)."""
    p, rng, (stock, K, lin, _, M_tgt) = _setup(positive, params, kw)
    h, w, _ = lin.shape
    P = film.reflectance_basis()
    I = film._illum(K)
    S = (10.0 ** stock.log_sensitivity).sum(axis=1)  # (41,) panchromatic
    m = (P * I[:, None]).T @ S  # (3,) linear RGB -> exposure
    m = m / (0.18 * (film._illum(5500.0) @ S))  # 18 % grey under D55 -> H = 1
    H = lin.reshape(-1, 3) @ m * 2.0 ** p.scene_ev
    x = np.log10(np.maximum(H, 1e-7))
    silver = film.curve(x, BW_CURVE)
    if p.grain > 0:
        silver = silver + rng.normal(size=silver.shape) * p.grain * np.sqrt(np.maximum(silver, 0.02))
    spec = 1.0 + 0.04 * np.clip((550.0 - film.WL) / 170.0, -1, 1)  # (41,) nearly flat silver
    spectral_d = BW_BASE + silver[:, None] * spec[None, :]
    light = _light(p)
    raw = (10.0 ** -spectral_d) @ light
    base_raw = (10.0 ** -np.full(41, BW_BASE)) @ light
    gain = film.BASE_LEVEL * 2.0 ** p.scan_ev / base_raw.max()
    sig = film.sensor_read(raw * gain, p.full_well, p.read_noise, rng)
    target = lin.reshape(-1, 3) @ M_tgt
    Y = np.clip(target @ np.array([0.2126, 0.7152, 0.0722]), 0, 1)
    grey = np.repeat(film.srgb_encode(Y)[:, None], 3, axis=1)
    return SpecialScan(camera_rgb=sig.reshape(h, w, 3).astype(np.float32),
                       positive=grey.reshape(h, w, 3).astype(np.float32),
                       base_rgb=(base_raw * gain).astype(np.float32), clear_rgb=(light.sum(0) * gain).astype(np.float32),
                       stock=BW_STOCK, params=p)


def reversal(x: np.ndarray) -> np.ndarray:
    """Log exposure -> dye amount of a reversal (slide) layer: Dmax unexposed, Dmin at white."""
    k = SLIDE_SLOPE * 4.0 / ((SLIDE_DMAX - SLIDE_DMIN) * np.log(10.0))
    return SLIDE_DMIN + (SLIDE_DMAX - SLIDE_DMIN) / (1.0 + 10.0 ** (k * (x - SLIDE_X0)))


def slide_dyes(stock, light: np.ndarray | None = None) -> np.ndarray:
    """(41, 3) the stock's dyes (no masking couplers), each scaled so that equal amounts of the
    three make a neutral grey: equal mid-tone densities in the three channels of a camera
    (`light`: (41, 3) backlight x camera sensitivities, default high_cri_led x cam_a).  A slide
    is balanced to be viewed; its greys are neutral."""
    dyes = stock.dye_density / stock.dye_density.max(axis=0, keepdims=True)
    if light is None:
        light = film.BACKLIGHTS["high_cri_led"][:, None] * film.CAMERAS["cam_a"]
    amt = 1.0  # mid-tone dye amount
    M = np.stack([-np.log10((10.0 ** -(amt * dyes[:, k]))[:, None].T @ light / light.sum(0))[0] / amt
                  for k in range(3)], axis=1)  # (channel, dye): channel density per unit dye
    s = np.linalg.solve(M, np.ones(3))
    s = np.clip(s, 0.2, None)
    return dyes * (s / s.mean())[None, :]


def simulate_slide(positive: np.ndarray, params: SpecialParams | None = None, **kw) -> SpecialScan:
    """The camera scan of an E-6 colour slide of the scene `positive` (sRGB HxWx3)."""
    p, rng, (stock, K, lin, M_exp, M_tgt) = _setup(positive, params, kw)
    h, w, _ = lin.shape
    H = lin.reshape(-1, 3) @ M_exp * 2.0 ** p.scene_ev
    dye = reversal(np.log10(np.maximum(H, 1e-7)))
    if p.grain > 0:
        dye = dye + rng.normal(size=dye.shape) * p.grain * np.sqrt(np.maximum(dye, 0.02))
    dyes = slide_dyes(stock)
    spectral_d = SLIDE_BASE + dye @ dyes.T
    light = _light(p)
    raw = (10.0 ** -spectral_d) @ light
    white_raw = (10.0 ** -(SLIDE_BASE + np.full(3, SLIDE_DMIN) @ dyes.T)) @ light
    black_raw = (10.0 ** -(SLIDE_BASE + np.full(3, SLIDE_DMAX) @ dyes.T)) @ light
    gain = SLIDE_LEVEL * 2.0 ** p.scan_ev / white_raw.max()
    sig = film.sensor_read(raw * gain, p.full_well, p.read_noise, rng)
    target = film.srgb_encode(lin.reshape(-1, 3) @ M_tgt)
    return SpecialScan(camera_rgb=sig.reshape(h, w, 3).astype(np.float32),
                       positive=target.reshape(h, w, 3).astype(np.float32),
                       base_rgb=(black_raw * gain).astype(np.float32), clear_rgb=(light.sum(0) * gain).astype(np.float32),
                       stock=SLIDE_STOCK, params=p)


def simulate(stock: str, positive: np.ndarray, params: SpecialParams | None = None, **kw) -> SpecialScan:
    """`simulate_bw` or `simulate_slide` by stock name."""
    if stock == BW_STOCK:
        return simulate_bw(positive, params, **kw)
    if stock == SLIDE_STOCK:
        return simulate_slide(positive, params, **kw)
    raise ValueError(f"unknown special stock {stock!r}; known: {', '.join(STOCKS)}")


def with_rebate(scan: SpecialScan, **kw) -> np.ndarray:
    """The scan framed by its rebate (unexposed film), sprocket holes and holder (film.add_rebate)."""
    return film.add_rebate(scan.camera_rgb, base_rgb=scan.base_rgb, clear_rgb=scan.clear_rgb, **kw)


def rebate_offset(shape: tuple, border: float = 0.08) -> tuple[int, int]:
    """(dy, dx) of the picture inside `with_rebate`'s output, for a picture of `shape` (h, w)."""
    b = max(4, int(round(border * max(shape[:2]))))
    return b, b // 2
