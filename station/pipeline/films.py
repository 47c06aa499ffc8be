"""Film types: colour negative (C-41), black-and-white silver negative, colour slide (E-6).

`ConvertOptions.film` is "colour" (today's path: the inverter the station is configured with),
"bw", "slide" or "auto".  The choice is one stage of the plan (`stages.Film`, right after
`base`, calling `choose` here): it
resolves "auto" from the frame, records the type in `Frame.film` (→ `ConvertResult.film`),
chooses the film type's inverter for the `invert` stage, and adds the type's warnings.  Both plans
(plain and fused master) carry it; the bw and slide inverters have the two-part form, so they
bake into a 3-D LUT and run on the fused master like the colour one.

* **bw** (`MonoInverter`): a neutral transfer.  The three channels' densities above the base (a
  silver image is spectrally flat, so they agree up to noise) are averaged into one density,
  which also averages the three channels' grain and noise; black and white points on it as the
  classic inversion does (0.5/99.5 percentiles of the picture area), the same A and b for every
  channel, so a roll's rendering stays one neutral transfer; the output is the classic tone
  curve on that one value, written to R = G = B (exactly neutral).
* **slide** (`SlideInverter`): no inversion.  The base (`base` stage) of a slide finds no bright
  rebate, so it is the frame's brightest film (its 99.5th percentile: the clear highlights); the
  density D above it is 0 at white and grows into the shadows.  White point per channel: the
  picture's thinnest 0.5 % (balance and exposure, shared over the roll by its rendering); black
  point: the rebate (unexposed E-6 is its densest black) when the border band is darker than
  the picture (per channel: a neutral black whatever the light), else just beyond the
  picture's densest 0.5 % (within 1.5 .. SLIDE_RANGE of white).
  z = (D - white) / (black - white) and the positive is the transmission across that range, y = (10^(-R z) - 10^-R) / (1 - 10^-R),
  R = SLIDE_RANGE, sRGB-encoded.
* **auto** (`detect`): from the frame and its rebate, logged with the reason:
  a rebate brighter than the picture, not orange (blue above ORANGE of red/green), with a
  neutral, silver-like picture over it (the picture's densities above it agree across the
  channels) → bw; a border darker than the picture (checked first) → slide; anything else →
  colour.  (A negative scanned with much of a black holder inside the outer 12 % could pass for
  a slide: give such a roll its film type, or its blank: with a blank's base (`--base`) the
  film is a negative, and a frame that looks like a slide is rendered as the negative detected
  with a warning naming the file.)  A roll is one film: `vote` settles its type from its
  frames' detections (`station invert --roll`, `detect_roll`; the daemon's roll analysis,
  roll.RollAccumulator).  A frame with no orange
  base that is inverted as a colour negative draws the "looks like a positive" warning (a
  photograph of a scene, not film): it is never inverted silently.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from station.pipeline.classic import ClassicInverter, ClassicParams, classic_pixel, frame_points
from station.pipeline.decode import linear_to_srgb
from station.pipeline.outputs import NEGATIVE_BLUE_MAX, positive_warning

FILMS = ("colour", "bw", "slide")
CHOICES = ("auto",) + FILMS
SLIDE_RANGE = 3.0  # density from a slide's white to its black (E-6 Dmax ~3.0-3.6 over Dmin ~0.1-0.2)
BW_MAX_TINT = 0.04  # bw: picture_tint at most this (silver ~0.016; colour negatives and scenes 0.05-0.3)
DARK_BORDER = 0.2  # slide: at least this fraction of the border band darker than the picture's darkest 1 %
ORANGE = 0.30  # a base with blue under this fraction of red/green is orange whatever the light (C-41: 0.24-0.27)
log = logging.getLogger("station.pipeline")


def check_film(film: str | None) -> str:
    """The film type named (None = "colour"); ValueError naming the choices otherwise."""
    film = film or "colour"
    if film not in CHOICES:
        raise ValueError(f"unknown film type {film!r} (choose from {', '.join(CHOICES)})")
    return film


class TwoPart:
    """The two-part inverter form shared by the film types: z = A*D + b, then `pixel_fn(z)`."""

    def normaliser(self, D: np.ndarray, affine=None) -> np.ndarray:
        A, b = affine if affine is not None else self.frame_affine(D)
        return (np.asarray(D, np.float32) * A + b).astype(np.float32)

    def __call__(self, D: np.ndarray, affine=None) -> np.ndarray:
        z = self.normaliser(D, affine)
        return self.pixel_fn(z.reshape(-1, 3)).reshape(np.shape(D))


# ----------------------------------------------------------------------------- bw: a neutral transfer
@dataclass(frozen=True)
class MonoParams(ClassicParams):
    """The classic tone curve's constants (ClassicParams), used on one channel."""


class MonoInverter(TwoPart, ClassicInverter):
    """Inverter for silver black-and-white negatives: one density, one neutral transfer.

    `frame_affine(D (H, W, 3)) -> (A (3,), b (3,))`, equal in the three channels;
    `normaliser(D, affine) -> z (H, W, 3)`; `pixel_fn(z (N, 3)) -> (N, 3)` sRGB with R = G = B."""

    name = "bw"

    def __init__(self, params: MonoParams = MonoParams()):
        super().__init__(params)  # classic's z_range for these constants

    def frame_affine(self, D: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        D = np.asarray(D, np.float32)
        mono = np.repeat(D.mean(axis=-1, keepdims=True), 3, axis=-1)
        lo, hi = frame_points(mono, self.params)
        lo, hi = float(lo.mean()), float(hi.mean())
        A = np.full(3, 1.0 / max(hi - lo, 0.05), np.float32)
        return A, (-lo * A).astype(np.float32)

    def pixel_fn(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, np.float32)
        m = z.mean(axis=-1, keepdims=True)
        return np.repeat(classic_pixel(np.repeat(m, 3, axis=-1), self.params)[..., :1], 3, axis=-1)


# ----------------------------------------------------------------------------- slide: no inversion
@dataclass(frozen=True)
class SlideParams:
    density_range: float = SLIDE_RANGE
    white_pct: float = 0.5  # the picture's thinnest 0.5 % is white
    border: float = 0.12


def border_band(a: np.ndarray, frac: float) -> np.ndarray:
    """(N, 3) pixels of the outer `frac` of each side of an (H, W, 3) array."""
    h, w = a.shape[:2]
    by, bx = max(1, int(h * frac)), max(1, int(w * frac))
    return np.concatenate([a[:by].reshape(-1, 3), a[-by:].reshape(-1, 3),
                           a[by:-by, :bx].reshape(-1, 3), a[by:-by, -bx:].reshape(-1, 3)])


class SlideInverter(TwoPart):
    """Inverter (in name: it renders) for colour slides: the positive is the film's transmission.

    `frame_affine(D (H, W, 3))` → z = 0 at the picture's white per channel, 1 at the rebate's
    black; `pixel_fn(z (N, 3))` → sRGB (N, 3) of the transmission across SLIDE_RANGE."""

    name = "slide"
    z_range_exact = True  # white beyond z = 0, black beyond z = 1

    def __init__(self, params: SlideParams = SlideParams()):
        self.params = params
        self.z_range = (np.zeros(3, np.float32), np.ones(3, np.float32))

    def frame_affine(self, D: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        D = np.asarray(D, np.float32)
        if D.ndim == 3 and min(D.shape[:2]) >= 8:
            h, w = D.shape[:2]
            by, bx = int(h * p.border), int(w * p.border)
            centre = D[by:h - by, bx:w - bx].reshape(-1, 3)
            band = border_band(D, p.border)
        else:
            centre, band = D.reshape(-1, 3), np.empty((0, 3), np.float32)
        centre = centre[np.all(np.isfinite(centre), axis=1) & np.all(centre > -0.05, axis=1)]
        if not len(centre):
            centre = D.reshape(-1, 3)
        white = np.percentile(centre, p.white_pct, axis=0)
        # no rebate in view (a mounted slide cropped, or a roll's samples of picture areas only):
        # just beyond the picture's densest 0.5 %, within 1.5 .. density_range of white
        black = np.clip(np.percentile(centre, 99.5, axis=0) + 0.1, white + 1.5, white + p.density_range)
        band = band[np.all(band > -0.05, axis=1)]  # not the sprocket holes (bare light)
        if len(band) >= 16:
            rebate = band[band.mean(axis=1) > np.percentile(centre.mean(axis=1), 99)]  # darker than the picture
            if len(rebate) >= DARK_BORDER * len(band):
                black = np.maximum(np.median(rebate, axis=0), white + 1.0)
        A = (1.0 / (black - white)).astype(np.float32)
        return A, (-white * A).astype(np.float32)

    def pixel_fn(self, z: np.ndarray) -> np.ndarray:
        R = self.params.density_range
        z = np.clip(np.asarray(z, np.float32), 0.0, 1.0)
        floor = 10.0 ** -R
        y = (np.power(10.0, -R * z, dtype=np.float32) - floor) / (1.0 - floor)
        return np.clip(linear_to_srgb(np.clip(y, 0.0, 1.0)), 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------- auto: detection
def _small(rgb: np.ndarray, long_side: int = 384) -> np.ndarray:
    h, w = rgb.shape[:2]
    step = max(1, int(np.ceil(max(h, w) / long_side)))
    return np.asarray(rgb[::step, ::step], np.float32)


def blue_ratio(base) -> float:
    rgb = np.asarray(base.rgb, np.float64).reshape(3)
    top = max(rgb[0], rgb[1])
    return float(rgb[2] / top) if top > 0 else 0.0


def picture_tint(small: np.ndarray, own) -> float | None:
    """How far the picture's densities above the rebate are from neutral: the median over the
    central region's film pixels (mean D > 0.15) of max_c |D_c - mean D| / mean D; None with
    too little picture.  Silver: ~0.02 (generated, any camera and light); colour negatives and
    scenes: 0.07-0.3."""
    h, w = small.shape[:2]
    by, bx = int(h * 0.12), int(w * 0.12)
    centre = small[by:h - by, bx:w - bx].reshape(-1, 3)
    D = -np.log10(np.maximum(centre, 1e-6) / np.maximum(np.asarray(own.rgb, np.float32), 1e-6))
    D = D[(D.mean(axis=1) > 0.15) & np.all(D < 3.2, axis=1)]
    if len(D) < 50:
        return None
    return float(np.median(np.abs(D - D.mean(axis=1, keepdims=True)).max(axis=1) / D.mean(axis=1)))


def dark_border(small: np.ndarray) -> float:
    """The fraction of the border band (outer 12 %, sprocket holes left out) darker than the
    picture's darkest 1 %: a slide's black rebate or mount ~0.4, a scene's edges <= 0.06."""
    h, w = small.shape[:2]
    logs = np.log10(np.maximum(small, 1e-6)).mean(axis=2)
    by, bx = int(h * 0.12), int(w * 0.12)
    centre = logs[by:h - by, bx:w - bx].reshape(-1)
    band = border_band(logs[..., None].repeat(3, axis=2), 0.12)[:, 0]
    band = band[band < np.log10(0.985)]
    if not len(band) or not len(centre):
        return 0.0
    return float(np.mean(band < np.percentile(centre, 1)))


def detect(rgb: np.ndarray, own, negative: bool = False) -> tuple[str, str]:
    """(film type, why) of a frame: `rgb` linear (H, W, 3), any size; `own` its rebate estimate
    (base.estimate_base).  A border mostly darker than the picture → slide; a rebate brighter
    than the picture, not orange, with a neutral picture over it → bw; else colour.  (The rebate's own colour in camera RGB is the light's times the film's, so it is
    reported, not relied on: a B&W base under a halogen lamp is as blue-poor as 0.33.)
    `negative`: the film is a negative (a blank's base is given): never slide; a dark border is
    then a black holder, said in `why` (starting "looks like a slide")."""
    small = _small(rgb)
    dark = dark_border(small)
    slide_why = f"{100 * dark:.0f}% of the border darker than the picture (a slide's black rebate or mount)"
    if dark >= DARK_BORDER and not negative:  # before the rebate: the edge of a sprocket hole can pass for one
        return "slide", slide_why
    if dark >= DARK_BORDER:
        film, why = _negative_type(small, own)
        return film, f"looks like a slide ({slide_why}), but the film base given is a negative's blank: {why}"
    return _negative_type(small, own)


def _negative_type(small: np.ndarray, own) -> tuple[str, str]:
    """(bw or colour, why) of a negative from its rebate `own` and picture (see `detect`)."""
    if own is not None and own.source == "rebate":
        ratio = blue_ratio(own)
        tint = picture_tint(small, own)
        if tint is None:
            return "colour", f"rebate (blue at {ratio:.2f} of red/green), too little picture to tell"
        if tint <= BW_MAX_TINT and ratio > ORANGE:
            return "bw", f"rebate with a neutral (silver) picture over it (tint {tint:.3f} <= {BW_MAX_TINT})"
        return "colour", f"rebate (blue at {ratio:.2f} of red/green) with a coloured picture (tint {tint:.2f})"
    return "colour", "no rebate found"


def vote(films) -> tuple[str, str]:
    """(film type, why) of a roll from its frames' detected types (`detect`, one each): a roll
    is one film, so the most votes win (a tie, or no vote: colour, the default)."""
    from collections import Counter

    votes = Counter(f for f in films if f in FILMS)
    if not votes:
        return "colour", "no frame could be read"
    top = votes.most_common()
    tie = len(top) > 1 and top[0][1] == top[1][1]
    film = "colour" if tie else top[0][0]
    count = ", ".join(f"{n} {f}" for f, n in top)
    return film, f"a tie ({count}): colour, the default" if tie else f"{votes[film]} of {sum(votes.values())} frames ({count})"


def detect_roll(paths, negative: bool = False) -> tuple[str, str]:
    """(film type, why) of a roll (`station invert --roll --film auto`): each frame (a small fast
    decode) is detected and votes (`vote`).  Frames that cannot be read do not vote (the
    conversion reports them).  `negative`: a blank's base is given (`detect`: never slide)."""
    from station.pipeline.base import estimate_base
    from station.pipeline.fastdecode import decode_fast

    films = []
    for p in paths:
        try:
            rgb = decode_fast(p, long_side=384).rgb
        except Exception:
            continue
        films.append(detect(rgb, estimate_base(rgb), negative)[0])
    return vote(films)


# ----------------------------------------------------------------------------- the choice
INVERTERS = {"bw": MonoInverter, "slide": SlideInverter}


UNEXPOSED_MAX_D = 0.08  # a frame whose centre stays within this density above its base is unexposed film


def unexposed(rgb: np.ndarray, base) -> str | None:
    """The one-line reason a negative frame holds no picture, or None: its central half (the
    `_small` copy) is film base all over -- the mean density above `base` of its 99th percentile
    pixel under UNEXPOSED_MAX_D, and its 1st not far below 0 -- i.e. a blank (unexposed,
    developed film).  A frame's per-frame rendering would stretch that blank's noise into a
    "picture"; the roll's blank belongs in --base / `station roll calibrate` instead."""
    small = _small(rgb)
    h, w = small.shape[:2]
    centre = small[h // 4: h - h // 4, w // 4: w - w // 4].reshape(-1, 3)
    if len(centre) < 16 or np.median(centre.max(axis=1)) >= 0.985:
        return None  # too small to tell, or clipped light: not film (the tonal check names it)
    D = -np.log10(np.maximum(centre, 1e-6) / np.maximum(np.asarray(base.rgb, np.float32), 1e-6)).mean(axis=1)
    lo, hi = np.percentile(D, [1, 99])
    if hi >= UNEXPOSED_MAX_D or lo <= -2 * UNEXPOSED_MAX_D:
        return None
    return (f"no picture: the frame is unexposed film (its centre is within {max(hi, 0.0):.2f} density of the film "
            "base): a blank; give it as the roll's blank (--base, station roll calibrate)")


def choose(film: str | None, rgb, own, base, src=None) -> tuple[str, object | None, list[str]]:
    """(film type, its inverter or None for colour (the configured one), warnings) of a frame.

    `film`: "colour" (None), "bw", "slide" or "auto" (detected from `rgb` (H, W, 3) linear,
    any size, and `own`, the frame's rebate estimate; logged); `base`: the base used.  With
    "auto" and a blank's base (source "blank frame": `--base`) the film is a negative: a frame
    that looks like a slide is rendered as the negative detected, with a warning."""
    film = check_film(film)
    warnings = []
    if film == "auto":
        # a blank's base (`--base`, the station's blank) is a negative's: the film is no slide
        negative = str(getattr(base, "source", "")).startswith("blank frame")
        film, why = detect(rgb, own, negative)
        log.info("%s: film type %s (auto: %s)", Path(src).name if src else "frame", film, why)
        if why.startswith("looks like a slide"):
            warnings.append(f"{why}; rendered as a {film} negative with the blank (a slide: --film slide, "
                            "without --base)")
    if film == "colour":
        w = positive_warning(base)
        if w:
            warnings.append(w)
    elif film == "bw" and base.source == "rebate" and blue_ratio(base) <= ORANGE:
        warnings.append(f"film type bw, but the rebate is orange (blue at {blue_ratio(base):.2f} of "
                        "red/green): a colour negative? rendered as black-and-white")
    return film, (INVERTERS[film]() if film in INVERTERS else None), warnings
