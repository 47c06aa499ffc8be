"""Measure the film base (the orange mask plus base+fog) of a negative.

The base is the least dense thing *on film*.  It is measured either from a
blank frame (`base_from_blank`: an unexposed piece of the same roll, same
light and exposure) or estimated from the frame itself (`estimate_base`):

1. Work on a small copy (long side ~384 px) in log10 RGB.
2. Candidates are the pixels of the border band (the rebate around the
   picture), minus pixels at the sensor's white (sprocket holes and gaps in
   the holder usually clip) and minus very dark pixels (black holder edges:
   darker than anything on film, more than 2.5 density below the brightest
   unclipped light).
3. Modes of the candidates' colours are found on a coarse 3-D histogram
   (bins of 0.04 in log10).  Light that passed through no film (a hole) is
   brighter than the base in every channel and *less orange*: seen through
   the base, blue loses much more than red (C-41 mask: blue density ~0.6
   above red, blue/red ≈ 3-4, while image dye is near neutral).  So a mode
   is rejected as "clear" when a darker mode differs from it by that orange
   pattern, the mode itself is not as orange as film (LIGHT_MIN_BLUE), and
   that darker mode could itself be the base (almost nothing in the frame
   thinner than it, BASE_MAX_THINNER): beside picture content, such as a blue sky
   whose yellow dye takes an orange-looking step, the rebate is not mistaken
   for a hole.
4. The base is the brightest remaining mode with enough support, if almost
   nothing in the frame is thinner than it; its value is the median of the
   pixels in that bin.

When no rebate is in the frame (a tight crop), the fallback is a high
per-channel percentile of the whole frame (the thinnest shadows are close to
base + fog), and the estimate says so in `source`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BIN = 0.04  # log10 units per histogram bin
CLIP = 0.985  # at or above this the sensor is (nearly) saturated


@dataclass(frozen=True)
class BaseEstimate:
    rgb: np.ndarray  # (3,) linear camera RGB of the film base
    source: str  # "blank frame", "rebate", "frame percentile (no rebate found)"

    def as_list(self) -> list[float]:
        return [float(v) for v in self.rgb]


def _small(rgb: np.ndarray, long_side: int = 384) -> np.ndarray:
    h, w = rgb.shape[:2]
    step = max(1, int(np.ceil(max(h, w) / long_side)))
    return rgb[::step, ::step]


def _border_mask(h: int, w: int, frac: float) -> np.ndarray:
    by, bx = max(1, int(h * frac)), max(1, int(w * frac))
    m = np.zeros((h, w), bool)
    m[:by], m[-by:], m[:, :bx], m[:, -bx:] = True, True, True, True
    return m


def _modes(logs: np.ndarray, min_frac: float) -> list[tuple[np.ndarray, int]]:
    """Histogram modes of Nx3 log colours: [(median colour, count)], brightest first."""
    q = np.floor(logs / BIN).astype(np.int64)
    keys, inverse, counts = np.unique(q, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    # Merge each bin with its 26 neighbours' counts so a mode split over bin edges still counts.
    lut = {tuple(k): c for k, c in zip(keys, counts)}
    offsets = [(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)]
    smooth = np.array([sum(lut.get((k[0] + a, k[1] + b, k[2] + c), 0) for a, b, c in offsets) for k in keys])
    n = len(logs)
    order = np.argsort(-smooth)
    picked: list[int] = []
    for i in order:
        if smooth[i] < min_frac * n:
            break
        # a local maximum: no already-picked bin within 2 bins
        if all(np.max(np.abs(keys[i] - keys[j])) > 2 for j in picked):
            picked.append(i)
    out = []
    for i in picked:
        near = np.max(np.abs(q - keys[i]), axis=1) <= 1
        out.append((np.median(logs[near], axis=0), int(smooth[i])))
    out.sort(key=lambda m: -float(np.mean(m[0])))
    return out


LIGHT_MIN_BLUE = 0.18  # bare light through a camera: blue at least this of red/green (generated: 0.21-1.6)
BASE_MAX_THINNER = 0.01  # a base: less than this fraction of the frame is thinner film than it


def _is_clear_over(bright: np.ndarray, dim: np.ndarray) -> bool:
    """True when `dim` looks like `bright` seen through an orange film base.

    `bright` must not be as orange as film: light through no film keeps the light's colour
    (blue 0.21-1.6 of red/green over the generator's wide backlights and cameras), while a
    C-41 base is often far below that (0.06-0.84, median 0.2).  Otherwise the rebate, when
    picture content beside it sits an orange-looking step denser (a blue sky's yellow dye, a
    warm tone), was taken for a hole over that content."""
    d = bright - dim  # log10 drop per channel (R, G, B)
    lin = 10.0 ** np.asarray(bright, np.float64)
    light = lin[2] >= LIGHT_MIN_BLUE * max(lin[0], lin[1])
    return bool(light and np.all(d > 0.05) and _orange(d))


def _orange(d):
    """The drop pattern of an orange mask: blue loses far more than red.

    A C-41 base is roughly R 0.2-0.3, G 0.5-0.65, B 0.75-0.95 in density over
    clear film (blue/red ≈ 3-4), while image dye over the base is close to
    neutral (blue/red ≈ 1-1.4): a ratio above 1.8 separates the two.
    """
    d = np.asarray(d)
    return (d[..., 2] - d[..., 0] > 0.2) & (d[..., 2] > 1.8 * np.maximum(d[..., 0], 0.01))


def estimate_base(rgb: np.ndarray, border: float = 0.12) -> BaseEstimate:
    """Estimate the film base from a frame (HxWx3 linear); see the module docstring."""
    small = _small(np.asarray(rgb, dtype=np.float32))
    h, w = small.shape[:2]
    flat = small.reshape(-1, 3)
    unclipped = np.all(flat < CLIP, axis=1) & np.all(flat > 1e-5, axis=1)
    logs_all = np.log10(np.maximum(flat, 1e-6))
    if unclipped.any():
        bright_ref = np.percentile(logs_all[unclipped].mean(axis=1), 99.5)
    else:
        bright_ref = 0.0
    not_black = logs_all.mean(axis=1) > bright_ref - 2.5
    band = _border_mask(h, w, border).reshape(-1) & unclipped & not_black
    if band.sum() >= 50:
        modes = _modes(logs_all[band], min_frac=0.04)
        frame_logs = logs_all[unclipped & not_black]

        def thinner(cand) -> float:
            # A rebate must be at least as bright as (almost) all of the picture.
            # Pixels thinner than the candidate that do not look like bare light
            # (a hole is brighter with the orange signature removed) mean it is no base.
            lift = frame_logs - cand
            return float(np.mean(np.all(lift > 0.03, axis=1) & ~_orange(lift))) if len(frame_logs) else 0.0

        could_be_base = [thinner(m[0]) < BASE_MAX_THINNER for m in modes]
        # Drop modes that are light through no film (holes, holder gaps): brighter than a mode
        # that could be the base by a mask's orange step.  Over picture content (a mode with
        # film thinner than it in the frame) a mode is no hole, whatever the colours.
        keep = [(m, ok) for m, ok in zip(modes, could_be_base)
                if not any(_is_clear_over(m[0], o[0]) for o, o_ok in zip(modes, could_be_base)
                           if o_ok and o is not m and np.mean(o[0]) < np.mean(m[0]))]
        if keep and keep[0][1]:  # the brightest film mode, if (almost) nothing is thinner
            return BaseEstimate(rgb=(10.0 ** keep[0][0][0]).astype(np.float32), source="rebate")
    sel = logs_all[unclipped & not_black] if (unclipped & not_black).any() else logs_all
    base = np.percentile(sel, 99.5, axis=0)
    return BaseEstimate(rgb=(10.0 ** base).astype(np.float32), source="frame percentile (no rebate found)")


class NotBlankError(ValueError):
    """A 'blank' frame that is not blank (picture content, uneven): refused, with the reason."""


BLANK_MIN_LEVEL = 0.01  # the blank's brightest channel (median) must be at least this of sensor white
NEGATIVE_BLUE_MAX = 0.45  # an orange film base: blue at most this fraction of red/green (docs/PIPELINE.md)
BLANK_MAX_SPREAD = 0.12  # log10 (0.4 EV): brightness variation allowed across a blank's centre
BLANK_MAX_TINT = 0.08  # log10: variation of the colour (log B - log R) allowed across it


def _block_means(a: np.ndarray, k: int) -> np.ndarray:
    h, w = (a.shape[0] // k) * k, (a.shape[1] // k) * k
    return a[:h, :w].reshape(h // k, k, w // k, k, 3).mean(axis=(1, 3))


def base_from_blank(rgb: np.ndarray, colour: bool = False) -> BaseEstimate:
    """Measure the base from a blank (unexposed, developed) frame of the same roll.

    The central half of the frame is used, after dropping clipped pixels
    (holes) and dark ones (holder), as a per-channel median.  A frame that is
    not blank is refused (`NotBlankError`, a ValueError naming the reason): its
    centre must be uniform in brightness (P99 - P1 of the log level of 4x4 block
    means <= BLANK_MAX_SPREAD, i.e. picture content or a badly uneven light is
    refused) and in colour (log B - log R within BLANK_MAX_TINT).  Also refused: a blank too dark
    to measure (its brightest channel under BLANK_MIN_LEVEL of sensor white: shot many stops under,
    or with the light off; its base would render every frame near black), and, with `colour` (the
    roll is a colour negative), one with no orange mask (blue over NEGATIVE_BLUE_MAX of red/green:
    the bare light with no film in the holder; its base would give every frame a cast).
    """
    small = _small(np.asarray(rgb, dtype=np.float32), long_side=512)
    h, w = small.shape[:2]
    centre_img = small[h // 4: h - h // 4, w // 4: w - w // 4]
    centre = centre_img.reshape(-1, 3)
    good = np.all(centre < CLIP, axis=1) & np.all(centre > 1e-5, axis=1)
    if good.sum() < 16:
        raise ValueError("the blank frame has no usable film area (clipped or black)")
    if good.mean() < 0.5:
        raise NotBlankError(f"not a blank frame: {100 * (1 - good.mean()):.0f}% of its centre is clipped or black "
                            "(bare light or the holder, not film)")
    level = np.median(centre[good], axis=0)
    if level.max() < BLANK_MIN_LEVEL:
        raise NotBlankError(f"too dark for a blank: its brightest channel is at {100 * level.max():.2f}% of sensor "
                            f"white (at least {100 * BLANK_MIN_LEVEL:g}% needed; expose longer, the light on)")
    if colour and level[2] > NEGATIVE_BLUE_MAX * max(level[0], level[1]):
        raise NotBlankError(f"not colour negative film: no orange film base (blue at "
                            f"{level[2] / max(level[0], level[1]):.2f} of red/green; a colour negative's is under "
                            f"{NEGATIVE_BLUE_MAX}): the bare light with no film in the holder? (a black-and-white "
                            "roll: film type bw)")
    blocks = _block_means(centre_img, 4) if min(centre_img.shape[:2]) >= 16 else centre_img
    bl = np.log10(np.maximum(blocks.reshape(-1, 3), 1e-6))
    bl = bl[np.all(bl > np.log10(1e-5), axis=1) & np.all(bl < np.log10(CLIP), axis=1)]
    if len(bl) >= 8:
        level = bl.mean(axis=1)
        spread = float(np.percentile(level, 99) - np.percentile(level, 1))
        tint = bl[:, 2] - bl[:, 0]
        tint_spread = float(np.percentile(tint, 99) - np.percentile(tint, 1))
        if spread > BLANK_MAX_SPREAD:
            raise NotBlankError(f"not a blank frame: its brightness varies by {spread / np.log10(2):.1f} EV across the "
                                f"centre (picture content? at most {BLANK_MAX_SPREAD / np.log10(2):.1f} EV allowed)")
        if tint_spread > BLANK_MAX_TINT:
            raise NotBlankError(f"not a blank frame: its colour varies across the centre (blue/red by "
                                f"{tint_spread:.2f} in log10; picture content?)")
    pix = centre[good]
    lum = np.log10(pix).mean(axis=1)
    med = np.median(lum)
    pix = pix[np.abs(lum - med) < 0.15]
    return BaseEstimate(rgb=np.median(pix, axis=0).astype(np.float32), source="blank frame")


EXPOSURE_MIN = 0.03  # log10 (0.1 EV): smaller neutral disagreements are measurement noise
NEUTRAL_TOL = 0.05  # log10: the channels' disagreement must agree within this to count as neutral


def reconcile(fixed: BaseEstimate, own: BaseEstimate | None) -> tuple[BaseEstimate, str | None]:
    """The base to use for a frame, given the roll's (a blank frame) and the frame's own rebate.

    When the frame's rebate disagrees with the blank by a *neutral* factor (every channel by the
    same ratio: the scan exposure changed between the blank and this frame), the blank's colour is
    kept and its level scaled to the rebate's.  Returns (base, note); note is None when nothing
    changed, else a line for the log."""
    if own is None or own.source != "rebate":
        return fixed, None
    d = np.log10(np.maximum(np.asarray(own.rgb, np.float64), 1e-9) / np.maximum(np.asarray(fixed.rgb, np.float64), 1e-9))
    m = float(d.mean())
    if abs(m) < EXPOSURE_MIN or float(d.max() - d.min()) > NEUTRAL_TOL:
        return fixed, None
    ev = m / np.log10(2.0)
    src = fixed.source.split(", scan exposure")[0]
    rgb = (np.asarray(fixed.rgb, np.float64) * 10.0 ** m).astype(np.float32)
    return (BaseEstimate(rgb=rgb, source=f"{src}, scan exposure corrected {ev:+.2f} EV (from the rebate)"),
            f"the frame's rebate is {ev:+.2f} EV from the {src} (same colour): scan exposure changed, base scaled")
