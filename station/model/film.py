"""Film-physics negative generator: positive image -> simulated colour negative -> camera scan.

The chain, per pixel (all spectra on a 10 nm grid, 380-780 nm, 41 samples):

1. **scene**: the positive (sRGB-encoded, [0,1]) is linearised and turned into a
   smooth reflectance spectrum ``r(l) = sum_k c_k P_k(l)`` with a partition-of-unity
   basis (blue / green / red bands with soft 490 nm and 585 nm edges), so a grey
   stays spectrally flat.  The scene is lit by a blackbody of temperature ``scene_K``.
2. **exposure**: each emulsion layer integrates ``r * illuminant * 10**log_sensitivity``.
   Layers are balanced so an 18 % grey under the stock's reference illuminant
   (D55, or 3200 K for tungsten stock) gets log10 H = 0 in every layer; ``scene_ev``
   shifts all layers.
3. **development**: the fitted characteristic curve of each layer (toe, straight line,
   shoulder) gives a dye amount; a little film grain (density noise) is added.
4. **dyes**: spectral density = base (support + fog + orange mask) + sum of dye
   amount * dye spectral density.  The measured dye spectra carry their unwanted
   absorptions; the colour-masking couplers are modelled by cancelling a fraction
   ``MASK_FRACTION`` of each dye's unwanted (off-band) absorption as that dye forms
   (the mask's colour at zero exposure is already in the measured base density).
5. **scan**: a backlight spectrum is transmitted (``10**-D``) and integrated by a
   camera's spectral sensitivities; the scan gain puts the film base at
   ``BASE_LEVEL * 2**scan_ev`` of sensor white in its brightest channel.
6. **sensor**: shot + read noise, clipping at 1.0, 14-bit quantisation.

Output: linear camera RGB (float32 HxWx3, 1.0 = sensor white) and the ground
truth positive: **the scene as the photographer saw it** - the colorimetric
rendering of the reflectance spectra, adapted (Bradford) from the scene
illuminant to D65 and sRGB encoded - which for a neutral is exactly the neutral
input value.  Because the target is the scene (not a print of the negative), a
model trained on it also corrects exposure errors and illuminant casts.

Film data: see station/model/data/films.json (fitted from spektrafilm, GPL-3.0).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

WL = np.arange(380, 781, 10, dtype=np.float64)  # (41,) nm
DATA = Path(__file__).resolve().parent / "data"
MASK_FRACTION = 0.7
BASE_LEVEL = 0.6  # brightest base channel at scan_ev = 0 (fraction of sensor white)
# Stocks kept out of training, used by `station evaluate`.
HELD_OUT_STOCKS = ("fujifilm_pro_400h", "kodak_ultramax_400", "kodak_vision3_500t")
ILLUMINANT_K = {"D55": 5500.0, "T": 3200.0}


# ----------------------------------------------------------------------------- colour helpers
def srgb_encode(x: np.ndarray) -> np.ndarray:
    """Linear [0,1] -> sRGB-encoded [0,1] (values outside are clipped)."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def srgb_decode(v: np.ndarray) -> np.ndarray:
    """sRGB-encoded [0,1] -> linear [0,1]."""
    v = np.clip(v, 0.0, 1.0)
    return np.where(v <= 0.04045, v / 12.92, np.power((v + 0.055) / 1.055, 2.4))


def _g(lam, mu, s1, s2):
    s = np.where(lam < mu, s1, s2)
    return np.exp(-0.5 * ((lam - mu) / s) ** 2)


def cie_cmf(lam: np.ndarray = WL) -> np.ndarray:
    """CIE 1931 2-degree colour matching functions, (len(lam), 3), multi-lobe fit of
    Wyman, Sloan & Shirley (JCGT 2013)."""
    x = 1.056 * _g(lam, 599.8, 37.9, 31.0) + 0.362 * _g(lam, 442.0, 16.0, 26.7) - 0.065 * _g(lam, 501.1, 20.4, 26.2)
    y = 0.821 * _g(lam, 568.8, 46.9, 40.5) + 0.286 * _g(lam, 530.9, 16.3, 31.1)
    z = 1.217 * _g(lam, 437.0, 11.8, 36.0) + 0.681 * _g(lam, 459.0, 26.0, 13.8)
    return np.stack([x, y, z], 1)


def blackbody(T: float, lam: np.ndarray = WL) -> np.ndarray:
    """Planck spectrum at temperature T (K), normalised to 1 at 560 nm."""
    l = lam * 1e-9
    c2 = 1.4388e-2
    s = 1.0 / (l ** 5 * (np.exp(c2 / (l * T)) - 1.0))
    l0 = 560e-9
    return s / (1.0 / (l0 ** 5 * (np.exp(c2 / (l0 * T)) - 1.0)))


XYZ_TO_SRGB = np.array([[3.2404542, -1.5371385, -0.4985314],
                        [-0.9692660, 1.8760108, 0.0415560],
                        [0.0556434, -0.2040259, 1.0572252]])
BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
D65_XYZ = np.array([0.95047, 1.0, 1.08883])


def reflectance_basis(lam: np.ndarray = WL, edges=(490.0, 585.0), width=12.0) -> np.ndarray:
    """(len(lam), 3) smooth basis for linear R, G, B; the rows sum to 1 (grey is flat)."""
    b = 1.0 / (1.0 + np.exp((lam - edges[0]) / width))
    r = 1.0 / (1.0 + np.exp(-(lam - edges[1]) / width))
    return np.stack([r, 1.0 - r - b, b], 1)


# ----------------------------------------------------------------------------- cameras, backlights
def _gauss(mu, s):
    return np.exp(-0.5 * ((WL - mu) / s) ** 2)


CAMERAS = {
    # idealised Bayer sensitivities (behind the IR-cut filter) of three sensor families
    "cam_a": np.stack([_gauss(600, 32) + 0.08 * _gauss(460, 25), _gauss(535, 38), _gauss(460, 30)], 1),
    "cam_b": np.stack([_gauss(610, 28) + 0.05 * _gauss(520, 30), _gauss(540, 42), _gauss(465, 26) + 0.05 * _gauss(540, 30)], 1),
    "cam_c": np.stack([_gauss(595, 36), _gauss(530, 35) + 0.1 * _gauss(590, 30), _gauss(455, 33)], 1),
}
BACKLIGHTS = {
    "led_5000": 0.9 * _gauss(452, 11) + _gauss(585, 70),          # phosphor white LED
    "high_cri_led": 0.7 * _gauss(450, 12) + 0.6 * _gauss(530, 45) + _gauss(625, 55),
    "daylight": blackbody(5500.0),
    "halogen": blackbody(3100.0),
}


# ----------------------------------------------------------------------------- film stocks
def softplus(x):
    return np.logaddexp(0.0, x)


def curve(x: np.ndarray, p) -> np.ndarray:
    """Characteristic curve: D(x) = d0 + g*(t*softplus((x-a)/t) - u*softplus((x-b)/u)), x = log10 H."""
    d0, g, a, t, b, u = p
    return d0 + g * (t * softplus((x - a) / t) - u * softplus((x - b) / u))


@dataclass(frozen=True)
class FilmStock:
    key: str
    name: str
    log_sensitivity: np.ndarray  # (41,3) R,G,B-sensitive layers (cyan, magenta, yellow dye forming)
    dye_density: np.ndarray      # (41,3) cyan, magenta, yellow dye spectral density
    base_density: np.ndarray     # (41,) support + fog + orange mask
    curve_params: np.ndarray     # (3,6)
    reference_K: float

    def characteristic(self, log_h: np.ndarray) -> np.ndarray:
        """log10 exposure (...,3) -> dye amount (...,3) per layer."""
        return np.stack([curve(log_h[..., c], self.curve_params[c]) for c in range(3)], -1)

    @property
    def masked_dyes(self) -> np.ndarray:
        """(41,3) dye density with MASK_FRACTION of the off-band absorption cancelled."""
        return self.dyes_masked(MASK_FRACTION)

    def dyes_masked(self, fraction: float, dye_mix=None) -> np.ndarray:
        """(41,3) dye density (plus `dye_mix` extra crosstalk) with `fraction` of the off-band absorption cancelled."""
        bands = [(WL >= 590), (WL >= 490) & (WL < 600), (WL < 510)]
        dyes = self.dye_density.copy()
        if dye_mix is not None:
            P = reflectance_basis()           # red, green, blue bands
            X = np.asarray(dye_mix, float)    # X[band, dye]
            peak = dyes.max(0)
            dyes = dyes + P @ (X * peak[None, :])
        out = dyes.copy()
        for i, band in enumerate(bands):
            unwanted = np.where(band, 0.0, dyes[:, i])
            out[:, i] -= fraction * unwanted
        return out


@lru_cache(maxsize=1)
def _films_json() -> dict:
    return json.loads((DATA / "films.json").read_text())


def stock_names() -> list[str]:
    return sorted(_films_json()["stocks"])


def training_stocks() -> list[str]:
    return [s for s in stock_names() if s not in HELD_OUT_STOCKS]


@lru_cache(maxsize=None)
def load_stock(key: str) -> FilmStock:
    st = _films_json()["stocks"].get(key)
    if st is None:
        raise ValueError(f"unknown film stock {key!r}; known: {', '.join(stock_names())}")
    return FilmStock(
        key=key, name=st["name"],
        log_sensitivity=np.asarray(st["log_sensitivity"], float),
        dye_density=np.asarray(st["dye_density"], float),
        base_density=np.asarray(st["base_density"], float),
        curve_params=np.asarray(st["curve_params"], float),
        reference_K=ILLUMINANT_K.get(st.get("reference_illuminant"), 5500.0),
    )


# ----------------------------------------------------------------------------- the simulation
@dataclass
class ScanParams:
    stock: str = "kodak_portra_400"
    scene_K: float | None = None   # None: the stock's reference illuminant
    scene_ev: float = 0.0          # exposure of the negative (stops)
    scan_ev: float = 0.0           # exposure of the camera scan (stops)
    camera: str = "cam_a"
    backlight: str = "high_cri_led"
    grain: float = 0.003           # density noise (std) at density 1, per output pixel
    layer_gamma: tuple = (1.0, 1.0, 1.0)   # contrast multiplier per layer ("virtual stock" augmentation)
    layer_shift: tuple = (0.0, 0.0, 0.0)   # log-exposure speed shift per layer
    full_well: float = 640000.0    # electrons at sensor white: 40k e- sensor, each output pixel = 4x4 binned
    read_noise: float = 2.0        # electrons
    seed: int | None = 0
    # wider randomisation (training of the residual model; defaults = the measured stock as is)
    mask_fraction: float | None = None   # masking strength (None: MASK_FRACTION)
    fog: float = 0.0                     # extra neutral fog density
    base_tint: tuple = (0.0, 0.0, 0.0)   # relative change of the base density in the red/green/blue bands
    dye_mix: tuple | None = None         # 3x3 extra dye crosstalk (band x dye), added to each dye's spectrum
    flare: float = 0.0                   # veiling glare: fraction of the frame's mean light added everywhere


@dataclass
class NegativeScan:
    camera_rgb: np.ndarray   # HxWx3 float32, linear camera RGB, 1.0 = sensor white
    positive: np.ndarray     # HxWx3 float32, sRGB-encoded ground truth in [0,1]
    base_rgb: np.ndarray     # (3,) camera RGB of the unexposed film (base + fog)
    clear_rgb: np.ndarray    # (3,) camera RGB of the bare backlight (unclipped)
    params: ScanParams = field(default_factory=ScanParams)

    @property
    def density(self) -> np.ndarray:
        """D = -log10(camera_rgb / base_rgb), the model's input (true base)."""
        return -np.log10(np.maximum(self.camera_rgb, 1e-6) / self.base_rgb).astype(np.float32)


def _illum(K: float) -> np.ndarray:
    s = blackbody(K)
    return s / (s @ cie_cmf()[:, 1])  # unit luminance


def scene_matrices(stock: FilmStock, scene_K: float):
    """Linear-RGB -> layer exposure (3x3) and linear-RGB -> target linear sRGB (3x3)."""
    P = reflectance_basis()
    I = _illum(scene_K)
    Iref = _illum(stock.reference_K)
    S = 10.0 ** stock.log_sensitivity
    norm = 1.0 / (0.18 * (Iref @ S))           # grey 18 % under the reference -> H = 1
    M_exp = (P * I[:, None]).T @ S * norm      # (3 rgb, 3 layers)
    cmf = cie_cmf()
    xyz = (P * I[:, None]).T @ cmf             # (3 rgb, 3 xyz) for reflectance basis
    white = I @ cmf
    cone_w, cone_d = BRADFORD @ white, BRADFORD @ D65_XYZ
    adapt = np.linalg.inv(BRADFORD) @ np.diag(cone_d / cone_w) @ BRADFORD
    M_tgt = xyz @ adapt.T @ XYZ_TO_SRGB.T
    M_tgt = M_tgt / (np.ones(3) @ M_tgt)       # flat white -> exactly (1,1,1)
    return M_exp, M_tgt



def sensor_read(sig: np.ndarray, full_well: float, read_noise: float, rng) -> np.ndarray:
    """The camera sensor: `sig` (any shape, 1.0 = sensor white) with shot noise (a sensor of
    `full_well` electrons at white; 0 = none) and read noise (electrons), clipped and
    quantised to 14 bits."""
    if full_well > 0:
        e = sig * full_well
        e = e + rng.normal(size=e.shape) * np.sqrt(np.maximum(e, 0) + read_noise ** 2)
        sig = e / full_well
    return np.round(np.clip(sig, 0.0, 1.0) * 16383) / 16383

def simulate(positive: np.ndarray, params: ScanParams | None = None, **kw) -> NegativeScan:
    """Simulate the camera scan of a colour negative of the scene `positive`.

    positive: HxWx3 sRGB-encoded float in [0,1] (or uint8/uint16).
    Returns a NegativeScan (linear camera RGB + ground-truth sRGB positive)."""
    p = params or ScanParams()
    for k, v in kw.items():
        setattr(p, k, v)
    pos = np.asarray(positive)
    if pos.dtype.kind in "ui":
        pos = pos.astype(np.float64) / np.iinfo(pos.dtype).max
    if pos.ndim != 3 or pos.shape[2] < 3:
        raise ValueError(f"positive must be HxWx3, got {pos.shape}")
    pos = pos[..., :3].astype(np.float64)
    rng = np.random.default_rng(p.seed)
    stock = load_stock(p.stock)
    scene_K = p.scene_K or stock.reference_K
    lin = srgb_decode(pos)
    h, w, _ = lin.shape
    M_exp, M_tgt = scene_matrices(stock, scene_K)
    target = srgb_encode(lin.reshape(-1, 3) @ M_tgt).reshape(h, w, 3).astype(np.float32)
    H = lin.reshape(-1, 3) @ M_exp * 2.0 ** p.scene_ev
    log_h = np.log10(np.maximum(H, 1e-7))
    dye = stock.characteristic(log_h + np.asarray(p.layer_shift, float)) * np.asarray(p.layer_gamma, float)
    if p.grain > 0:
        dye = dye + rng.normal(size=dye.shape) * p.grain * np.sqrt(np.maximum(dye, 0.02))
    base_d = stock.base_density * (1.0 + reflectance_basis() @ np.asarray(p.base_tint, float)) + p.fog
    mf = MASK_FRACTION if p.mask_fraction is None else p.mask_fraction
    dyes = stock.masked_dyes if (p.mask_fraction is None and p.dye_mix is None) else stock.dyes_masked(mf, p.dye_mix)
    spectral_d = base_d[None, :] + dye @ dyes.T   # (N,41)
    bl = BACKLIGHTS[p.backlight] if isinstance(p.backlight, str) else np.asarray(p.backlight, float)
    cam = CAMERAS[p.camera] if isinstance(p.camera, str) else np.asarray(p.camera, float)
    light = bl[:, None] * cam            # (41,3)
    raw = (10.0 ** -spectral_d) @ light
    base_raw = (10.0 ** -base_d) @ light
    if p.flare > 0:
        glare = p.flare * raw.mean(0)
        raw, base_raw = raw + glare, base_raw + glare
    clear_raw = light.sum(0)
    gain = BASE_LEVEL * 2.0 ** p.scan_ev / base_raw.max()
    sig = sensor_read(raw * gain, p.full_well, p.read_noise, rng)
    return NegativeScan(
        camera_rgb=sig.reshape(h, w, 3).astype(np.float32),
        positive=target,
        base_rgb=(base_raw * gain).astype(np.float32),
        clear_rgb=(clear_raw * gain).astype(np.float32),
        params=p,
    )


# ----------------------------------------------------------------------------- scenes and charts
# ColorChecker Classic, sRGB (D65) 8-bit values (BabelColor averages), row by row.
COLORCHECKER = np.array([
    [115, 82, 68], [194, 150, 130], [98, 122, 157], [87, 108, 67], [133, 128, 177], [103, 189, 170],
    [214, 126, 44], [80, 91, 166], [193, 90, 99], [94, 60, 108], [157, 188, 64], [224, 163, 46],
    [56, 61, 150], [70, 148, 73], [175, 54, 60], [231, 199, 31], [187, 86, 149], [8, 133, 161],
    [243, 243, 242], [200, 200, 200], [160, 160, 160], [122, 122, 121], [85, 85, 85], [52, 52, 52],
], float) / 255.0
SATURATED_PATCHES = (6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17)  # 0-based indices


def colorchecker_chart(patch: int = 16, gap: int = 4, surround: float = 0.2) -> tuple[np.ndarray, list]:
    """A 4x6 ColorChecker (sRGB float) and the (y0,y1,x0,x1) box of each patch's centre."""
    h, w = 4 * (patch + gap) + gap, 6 * (patch + gap) + gap
    img = np.full((h, w, 3), surround)
    boxes = []
    for i, c in enumerate(COLORCHECKER):
        r, k = divmod(i, 6)
        y, x = gap + r * (patch + gap), gap + k * (patch + gap)
        img[y:y + patch, x:x + patch] = c
        m = patch // 4
        boxes.append((y + m, y + patch - m, x + m, x + patch - m))
    return img, boxes


def grey_ramp(steps: int = 12, patch: int = 10, height: int = 16, lo: float = 0.06, hi: float = 0.92):
    """A horizontal ramp of neutral sRGB patches and their centre boxes."""
    vals = np.linspace(lo, hi, steps)
    img = np.repeat(np.repeat(vals[None, :, None], height, 0), patch, 1)
    img = np.repeat(img, 3, 2)
    boxes = [(height // 4, height - height // 4, i * patch + patch // 4, (i + 1) * patch - patch // 4) for i in range(steps)]
    return img, boxes


def procedural_scene(size: int = 192, seed: int = 0) -> np.ndarray:
    """A random 'Mondrian' of shaded rectangles and discs over a gradient (sRGB float).

    Colour statistics are kept natural: most surfaces are of low or moderate
    chroma, a few are saturated, and there is always something near-white and
    something near-black (a real scene's highlights and shadows are mostly
    near-neutral - the premise of any per-frame exposure/balance estimate)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size

    def colour(chroma_scale):
        grey = rng.uniform(0.05, 0.85)
        hue = rng.uniform(0, 1, 3)
        c = grey + (hue - hue.mean()) * chroma_scale
        return np.clip(c, 0.01, 1.0)

    top, bottom = colour(rng.uniform(0, 0.4)), colour(rng.uniform(0, 0.4))
    img = top[None, None] * (1 - yy[..., None]) + bottom[None, None] * yy[..., None]
    n = int(rng.integers(8, 20))
    for k in range(n):
        if k == n - 1:
            c = np.full(3, rng.uniform(0.85, 0.97)) + rng.normal(size=3) * 0.01   # a highlight
        elif k == n - 2:
            c = np.full(3, rng.uniform(0.03, 0.12)) + rng.normal(size=3) * 0.005  # a shadow
        else:
            c = colour(rng.choice([0.1, 0.3, 0.6, 1.2], p=[0.35, 0.3, 0.2, 0.15]))
        shade = 1 - rng.uniform(0, 0.4) * (xx if rng.random() < .5 else yy)
        if rng.random() < 0.5:
            y0, x0 = rng.integers(0, size, 2)
            hh, ww = rng.integers(size // 12, size // 3, 2)
            m = (yy * size >= y0) & (yy * size < y0 + hh) & (xx * size >= x0) & (xx * size < x0 + ww)
        else:
            cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.04, 0.2)
            m = (yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2
        img[m] = np.clip(c, 0, 1)[None] * shade[m][:, None]
    return np.clip(img, 0, 1)


def photo(name: str, size: int | None = None, rng: np.random.Generator | None = None) -> np.ndarray:
    """A scikit-image bundled photo as sRGB float; random square crop resized to `size` if given."""
    import skimage.data
    from skimage.transform import resize
    img = getattr(skimage.data, name)()[..., :3].astype(np.float64) / 255.0
    if size:
        rng = rng or np.random.default_rng(0)
        s = int(min(img.shape[:2]) * rng.uniform(0.5, 1.0))
        y, x = rng.integers(0, img.shape[0] - s + 1), rng.integers(0, img.shape[1] - s + 1)
        img = resize(img[y:y + s, x:x + s], (size, size), anti_aliasing=True, order=1)
    return img


def scene_with_charts(base: np.ndarray, with_charts: bool = True):
    """`base` scene with a ColorChecker and grey ramp pasted in; returns image, {"checker": boxes, "ramp": boxes}."""
    img = base.copy()
    boxes = {"checker": [], "ramp": []}
    if with_charts:
        cc, cb = colorchecker_chart()
        gr, gb = grey_ramp()
        H, W = img.shape[:2]
        if H < cc.shape[0] + gr.shape[0] + 8 or W < max(cc.shape[1], gr.shape[1]) + 8:
            raise ValueError("scene too small for the charts")
        # inside the central region a photographer would put a chart (and the
        # normaliser meters): 15 % in from the edges
        y0, x0 = int(0.15 * H), int(0.15 * W)
        img[y0:y0 + cc.shape[0], x0:x0 + cc.shape[1]] = cc
        boxes["checker"] = [(a + y0, b + y0, c + x0, d + x0) for a, b, c, d in cb]
        y1 = H - int(0.15 * H) - gr.shape[0]
        if y1 < y0 + cc.shape[0] + 2 or x0 + max(cc.shape[1], gr.shape[1]) > W:
            raise ValueError("scene too small for the charts")
        img[y1:y1 + gr.shape[0], x0:x0 + gr.shape[1]] = gr
        boxes["ramp"] = [(a + y1, b + y1, c + x0, d + x0) for a, b, c, d in gb]
    return img, boxes


# ----------------------------------------------------------------------------- rebate, DNG
def add_rebate(scan: NegativeScan | np.ndarray, base_rgb=None, clear_rgb=None, border: float = 0.08,
               sprockets: bool = True, holder: bool = True, seed: int = 0) -> np.ndarray:
    """Surround a scanned frame with film rebate: unexposed film (pure base) with
    sprocket holes (clear: the bare backlight, clipped at sensor white) along the
    top and bottom, and optionally black film-holder edges outside the film.

    Returns a new HxWx3 float32 camera-RGB image (larger than the frame)."""
    if isinstance(scan, NegativeScan):
        img, base_rgb, clear_rgb = scan.camera_rgb, scan.base_rgb, scan.clear_rgb
    else:
        img = np.asarray(scan, np.float32)
        if base_rgb is None or clear_rgb is None:
            raise ValueError("base_rgb and clear_rgb are needed with a plain array")
    rng = np.random.default_rng(seed)
    h, w, _ = img.shape
    b = max(4, int(round(border * max(h, w))))
    H, W = h + 2 * b, w + 2 * b // 2
    out = np.empty((H, W, 3), np.float32)
    out[:] = np.asarray(base_rgb, np.float32)
    out += rng.normal(size=out.shape).astype(np.float32) * 0.003 * out
    out[b:b + h, b // 2:b // 2 + w] = img
    if sprockets:
        hole_h, hole_w = max(2, int(b * 0.45)), max(2, int(b * 0.35))
        step = max(hole_w * 2, int(b * 0.9))
        clear = np.clip(np.asarray(clear_rgb, np.float32), 0, 1)
        for x in range(step // 2, W - hole_w, step):
            for y in ((b - hole_h) // 2, H - b + (b - hole_h) // 2):
                out[y:y + hole_h, x:x + hole_w] = clear
    if holder:
        e = max(2, b // 6)
        out[:e] = 0.004
        out[-e:] = 0.004
    return np.clip(out, 0, 1)


def write_dng(path, camera_rgb: np.ndarray, pattern: str = "RGGB", black: int = 512, white: int = 16383,
              make: str = "Station", model: str = "FilmSim") -> None:
    """Mosaic linear camera RGB (1.0 = sensor white) to a Bayer CFA and write a DNG
    via `station.io.dng.write_bayer_dng`."""
    from station.io.dng import write_bayer_dng
    rgb = np.clip(np.asarray(camera_rgb, np.float64), 0, 1)
    h, w = rgb.shape[:2]
    h, w = h - h % 2, w - w % 2
    idx = {"R": 0, "G": 1, "B": 2}
    cfa = np.empty((h, w), np.float64)
    for k, ch in enumerate(pattern):
        dy, dx = divmod(k, 2)
        cfa[dy::2, dx::2] = rgb[dy:h:2, dx:w:2, idx[ch]]
    cfa = np.round(black + cfa * (white - black)).astype(np.uint16)
    write_bayer_dng(path, cfa, pattern=pattern, black=black, white=white, make=make, model=model)


# ----------------------------------------------------------------------------- datasets
TRAIN_PHOTOS = ("astronaut", "coffee", "chelsea", "colorwheel")
EVAL_PHOTOS = ("rocket",)


def random_params(rng: np.random.Generator, stocks=None, jitter: float = 1.0) -> ScanParams:
    """Random shooting/scanning conditions; `jitter` scales the per-layer contrast
    (±8 %) and speed (±0.1 log H) perturbations that turn the 8 training stocks into
    a continuum of 'virtual stocks'."""
    stocks = list(stocks or training_stocks())
    st = load_stock(str(rng.choice(stocks)))
    return ScanParams(
        layer_gamma=tuple(float(x) for x in 1.0 + jitter * rng.uniform(-0.08, 0.08, 3)),
        layer_shift=tuple(float(x) for x in jitter * rng.uniform(-0.1, 0.1, 3)),
        stock=st.key,
        scene_K=float(st.reference_K * rng.uniform(0.85, 1.25)),
        scene_ev=float(rng.uniform(-1.0, 1.5)),
        scan_ev=float(rng.uniform(-1.0, 0.5)),
        camera=str(rng.choice(list(CAMERAS))),
        backlight=str(rng.choice(list(BACKLIGHTS))),
        seed=int(rng.integers(1 << 31)),
    )


def random_camera(rng: np.random.Generator) -> np.ndarray:
    """A random Bayer camera (41,3): peaks, widths and crosstalk lobes drawn around real sensors'."""
    u = rng.uniform
    r = _gauss(u(585, 625), u(24, 40)) + u(0, 0.12) * _gauss(u(450, 530), 28)
    g = _gauss(u(520, 550), u(32, 48)) + u(0, 0.12) * _gauss(u(580, 610), 30)
    b = _gauss(u(445, 470), u(24, 36)) + u(0, 0.08) * _gauss(u(520, 560), 30)
    return np.stack([r, g, b], 1)


def random_backlight(rng: np.random.Generator) -> np.ndarray:
    """A random backlight spectrum (41,): white LEDs of several CCT/CRI, narrowband RGB
    triplets, flash, halogen."""
    u = rng.uniform
    kind = rng.choice(["led", "led_hicri", "rgb", "flash", "halogen"], p=[0.3, 0.25, 0.2, 0.15, 0.1])
    if kind == "led":        # phosphor white: blue pump + broad phosphor (the ratio sets the CCT)
        return u(0.4, 1.2) * _gauss(u(445, 460), u(9, 13)) + _gauss(u(560, 610), u(55, 80))
    if kind == "led_hicri":
        return u(0.4, 0.9) * _gauss(450, 12) + u(0.4, 0.8) * _gauss(530, 45) + _gauss(u(610, 640), 55)
    if kind == "rgb":        # narrowband triplet
        return (u(0.6, 1.4) * _gauss(u(445, 470), u(8, 15)) + u(0.6, 1.4) * _gauss(u(515, 540), u(10, 18))
                + _gauss(u(615, 650), u(8, 15)))
    if kind == "flash":
        return blackbody(u(5200, 6500)) + 0.3 * _gauss(u(440, 470), 20)
    return blackbody(u(2800, 3400))


def random_params_wide(rng: np.random.Generator, stocks=None) -> ScanParams:
    """Much wider conditions than `random_params`: randomised stocks beyond the measured ones
    (per-layer contrast and speed, masking strength, dye crosstalk, fog, base colour), random
    cameras and backlights, flare, low-exposure noise, scan exposures -1.5..+0.7 EV (base below sensor white)."""
    stocks = list(stocks or training_stocks())
    st = load_stock(str(rng.choice(stocks)))
    u = rng.uniform
    scan_ev = float(u(-1.5, 0.7))   # the base stays below sensor white
    X = np.array([[0, .06, .02], [.12, 0, .05], [.05, .2, 0]]) * u(0, 1.5, (3, 3))
    return ScanParams(
        stock=st.key,
        layer_gamma=tuple(float(x) for x in u(0.75, 1.25, 3)),
        layer_shift=tuple(float(x) for x in u(-0.3, 0.3, 3)),
        scene_K=float(st.reference_K * u(0.8, 1.3)),
        scene_ev=float(u(-1.5, 2.5)),
        scan_ev=scan_ev,
        camera=random_camera(rng) if rng.random() < 0.7 else str(rng.choice(list(CAMERAS))),
        backlight=random_backlight(rng),
        grain=float(u(0.002, 0.008)),
        full_well=float(u(150000, 640000)),
        read_noise=float(u(2, 6)),
        mask_fraction=float(u(0.4, 0.9)),
        fog=float(u(0.0, 0.15)),
        base_tint=tuple(float(x) for x in u(-0.2, 0.2, 3)),
        dye_mix=tuple(map(tuple, X)),
        flare=float(u(0.0, 0.03)) if rng.random() < 0.7 else 0.0,
        seed=int(rng.integers(1 << 31)),
    )


def random_scene(rng: np.random.Generator, size: int = 160, photos=TRAIN_PHOTOS) -> np.ndarray:
    u = rng.random()
    if u < 0.45 and photos:
        img = photo(str(rng.choice(list(photos))), size, rng)
    else:
        img = procedural_scene(size, int(rng.integers(1 << 31)))
    if rng.random() < 0.5 and size >= 160:
        img, _ = scene_with_charts(img)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    return img


def generate_pairs(n: int, seed: int = 0, size: int = 160, stocks=None, photos=TRAIN_PHOTOS, jitter: float = 1.0,
                   wide: float = 0.0):
    """Yield n NegativeScan objects of random scenes, stocks, exposures, cameras; a fraction
    `wide` of them with the much wider `random_params_wide` conditions."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        img = random_scene(rng, size, photos)
        p = random_params_wide(rng, stocks) if rng.random() < wide else random_params(rng, stocks, jitter)
        yield simulate(img, p)
