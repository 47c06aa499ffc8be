"""One rendering per roll: the film base and the normaliser shared by every frame of a roll.

Each frame normalised on its own is pushed to the same brightness and balance: a night frame
comes out mid-grey, a snow scene grey, and the same chart in two frames renders differently.
A lab prints a roll with one analysis; so does this module:

* `frame_sample(rgb)` - what a frame contributes: a few thousand block means (linear camera RGB)
  of its central region (the outer 12 % of each side holds rebate, sprocket holes and holder)
  and its own rebate estimate.  Small: the daemon's worker returns it, so the daemon itself
  never parses a RAW.
* `analyse(samples, inverter, blank)` - the roll's `Rendering`:
  - the **film base**: the calibrated blank when given, else the per-channel median (in log)
    of the frames' rebate estimates (frames without a rebate do not vote);
  - per frame, the base corrected for that frame's scan exposure (`base.reconcile`: its own
    rebate disagrees with the roll's base by a neutral factor);
  - the **normaliser**: the inverter's own `frame_affine` on each frame's densities, turned
    into two anchor densities per channel (where z = 0 and z = 1), then the per-channel
    *median* over frames: one night or snow frame among several moves it little.  Densities of
    bare light (D < -0.05) and of the holder (D > 3.2) are left out, and so are frames with
    no picture (a blank or an unexposed frame: density spread below 0.1 in every channel).
* `RollAccumulator` - the daemon's per-folder state: add frames as they come, the estimate
  locks once it is stable (it moved by less than `SETTLE` density over the last `STABLE_FOR`
  frames, with at least `MIN_FRAMES`) or when the roll is complete.

`Rendering` is what `ConvertOptions(rendering=...)` takes: preview, master, the plain and the
fast paths all apply the same base and the same (A, b).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from station.pipeline.base import BaseEstimate, estimate_base, reconcile
from station.pipeline.normalise import density

SAMPLE_GRID = 48  # block means per side of the central region: at most 2304 samples per frame
BORDER = 0.12
D_MIN, D_MAX = -0.05, 3.2  # film densities; outside: bare light, the holder
MIN_SPREAD = 0.10  # a frame whose densities vary less than this in every channel has no picture
MIN_FRAMES = 3
STABLE_FOR = 2
SETTLE = 0.03  # density
BASE_GROUP = 0.06  # log10: frames' base estimates this close to the brightest are averaged


@dataclass(frozen=True)
class Rendering:
    """A roll's fixed rendering: film base (linear camera RGB) and normaliser z = A*D + b."""

    base: tuple
    A: tuple
    b: tuple
    base_source: str = "roll"
    frames: int = 0
    locked: bool = True
    # the film type it was analysed for, which renders every frame ("bw", "slide"; None: colour,
    # the configured inverter); a roll with `film: auto` settles it from its frames' votes
    film: str | None = None

    @property
    def id(self) -> str:
        """Short hash of what the pixels depend on (base, A, b, and the film type unless colour),
        to record which rendering an output has."""
        vals = [[round(float(v), 5) for v in x] for x in (self.base, self.A, self.b)]
        key = json.dumps(vals + [self.film] if self.film not in (None, "colour") else vals)
        return hashlib.sha1(key.encode()).hexdigest()[:10]

    @property
    def affine(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.A, np.float32), np.asarray(self.b, np.float32)

    def base_estimate(self) -> BaseEstimate:
        return BaseEstimate(rgb=np.asarray(self.base, np.float32), source=self.base_source)

    def to_dict(self) -> dict:
        return {"id": self.id, "base": list(self.base), "A": list(self.A), "b": list(self.b),
                "base_source": self.base_source, "frames": self.frames, "locked": self.locked, "film": self.film}

    @classmethod
    def from_dict(cls, d: dict) -> "Rendering":
        vals = [tuple(float(v) for v in d[k]) for k in ("base", "A", "b")]
        if any(len(v) != 3 or not np.all(np.isfinite(v)) for v in vals) or min(vals[0]) <= 0:
            raise ValueError("a rendering needs finite base (>0), A and b of three values each")
        film = d.get("film")
        if film is not None and film not in ("colour", "bw", "slide"):
            raise ValueError(f"a rendering's film type is colour, bw or slide, not {film!r}")
        return cls(*vals, base_source=str(d.get("base_source", "roll")), frames=int(d.get("frames", 0)),
                   locked=bool(d.get("locked", True)), film=film)


@dataclass
class FrameSample:
    """What one frame contributes to its roll's analysis."""

    rgb: np.ndarray  # (N, 3) float32 linear camera RGB: block means of the central region
    rebate: BaseEstimate | None  # the frame's own base estimate (source "rebate" when it has one)
    film: str | None = None  # the film type the frame was rendered as (detected with auto): its vote

    def to_dict(self) -> dict:
        return {"rgb": np.round(self.rgb, 7).tolist(), "film": self.film,
                "rebate": None if self.rebate is None else {"rgb": self.rebate.as_list(), "source": self.rebate.source}}

    @classmethod
    def from_dict(cls, d: dict) -> "FrameSample":
        rgb = np.asarray(d["rgb"], np.float32).reshape(-1, 3)
        r = d.get("rebate")
        reb = BaseEstimate(rgb=np.asarray(r["rgb"], np.float32), source=str(r["source"])) if r else None
        film = d.get("film")
        return cls(rgb=rgb, rebate=reb, film=str(film) if film else None)


def frame_sample(rgb: np.ndarray, grid: int = SAMPLE_GRID, rebate: BaseEstimate | None = None,
                 film: str | None = None) -> FrameSample:
    """A frame's contribution (HxWx3 linear camera RGB, any size): block means of its centre."""
    rgb = np.asarray(rgb, np.float32)
    h, w = rgb.shape[:2]
    by, bx = int(h * BORDER), int(w * BORDER)
    c = rgb[by:h - by, bx:w - bx] if h - 2 * by >= 8 and w - 2 * bx >= 8 else rgb
    ky, kx = max(1, c.shape[0] // grid), max(1, c.shape[1] // grid)
    hh, ww = (c.shape[0] // ky) * ky, (c.shape[1] // kx) * kx
    blocks = c[:hh, :ww].reshape(hh // ky, ky, ww // kx, kx, 3).mean(axis=(1, 3)).reshape(-1, 3)
    return FrameSample(rgb=blocks.astype(np.float32), rebate=rebate if rebate is not None else estimate_base(rgb),
                       film=film)


def has_picture(sample: FrameSample) -> bool:
    """False for a frame whose centre is uniform (a blank, an empty holder's bare light)."""
    L = np.log10(np.maximum(sample.rgb, 1e-6))
    return bool(len(L) >= 8 and np.any(np.percentile(L, 99, axis=0) - np.percentile(L, 1, axis=0) >= MIN_SPREAD))


def shared_base(samples: list[FrameSample], blank: BaseEstimate | None = None) -> BaseEstimate:
    """The roll's film base: the blank when given, else the median (in log) of the frames' rebates."""
    if blank is not None:
        return blank
    samples = [s for s in samples if has_picture(s)]  # not bare light, not a blank
    rebates = [s.rebate for s in samples if s.rebate is not None and s.rebate.source == "rebate"]
    kind = "rebate"
    if not rebates:  # no frame shows a rebate: the frames' own estimates (their thinnest parts)
        rebates = [s.rebate for s in samples if s.rebate is not None]
        kind = "frame estimates"
        if not rebates:
            raise ValueError("no frame gives a film-base estimate")
    # The base is the least dense thing on film: an estimate fooled by a dense patch of picture
    # in the border is darker than the base, never brighter (bare light is recognised by its
    # colour).  So: the median of the estimates within BASE_GROUP of the brightest.
    logs = np.log10(np.maximum(np.stack([r.rgb for r in rebates]), 1e-9))
    level = logs.mean(axis=1)
    group = logs[level >= level.max() - BASE_GROUP]
    return BaseEstimate(rgb=(10.0 ** np.median(group, axis=0)).astype(np.float32),
                        source=f"roll {kind} (median of {len(group)} of {len(rebates)} frames)")


def frame_densities(sample: FrameSample, base: BaseEstimate) -> np.ndarray | None:
    """(N, 3) film densities of a frame's sample above its (exposure-corrected) base, or None
    when the frame has no picture (blank, unexposed) or too few film samples."""
    fb, _ = reconcile(base, sample.rebate)
    D = density(sample.rgb.reshape(-1, 1, 3), fb.rgb).reshape(-1, 3)
    D = D[np.all(np.isfinite(D) & (D > D_MIN) & (D < D_MAX), axis=1)]
    if len(D) < 32:
        return None
    spread = np.percentile(D, 99, axis=0) - np.percentile(D, 1, axis=0)
    if np.all(spread < MIN_SPREAD):
        return None
    return D.astype(np.float32)


def _anchors(inverter, D: np.ndarray) -> np.ndarray:
    """(2, 3): per channel the density where z = 0 and where z = 1 under the frame's own affine."""
    A, b = (np.asarray(v, np.float64).reshape(3) for a in [inverter.frame_affine(D)] for v in a)
    A = np.where(np.abs(A) < 1e-6, 1e-6, A)
    return np.stack([-b / A, (1.0 - b) / A])


def analyse(samples: list[FrameSample], inverter, blank: BaseEstimate | None = None) -> Rendering:
    """The roll's rendering from its frames' samples (see the module docstring)."""
    base = shared_base(samples, blank)
    anchors = []
    for s in samples:
        D = frame_densities(s, base)
        if D is not None:
            anchors.append(_anchors(inverter, D))
    if not anchors:
        raise ValueError("no frame of the roll has a picture to analyse")
    lo, hi = np.median(np.stack(anchors), axis=0)
    hi = np.where(np.abs(hi - lo) < 0.05, lo + 0.05, hi)
    A = 1.0 / (hi - lo)
    b = -lo * A
    return Rendering(base=tuple(float(v) for v in base.rgb), A=tuple(float(v) for v in A),
                     b=tuple(float(v) for v in b), base_source=base.source, frames=len(anchors))


def movement(r1: Rendering | None, r2: Rendering) -> float:
    """How far two renderings are apart, in density: the largest shift of an anchor (z = 0 or 1)
    or of the base (log10)."""
    if r1 is None:
        return float("inf")
    a1 = np.stack([-np.asarray(r1.b) / np.asarray(r1.A), (1 - np.asarray(r1.b)) / np.asarray(r1.A)])
    a2 = np.stack([-np.asarray(r2.b) / np.asarray(r2.A), (1 - np.asarray(r2.b)) / np.asarray(r2.A)])
    db = np.abs(np.log10(np.asarray(r1.base) / np.asarray(r2.base)))
    return float(max(np.max(np.abs(a1 - a2)), np.max(db)))


class RollAccumulator:
    """A roll's analysis as its frames arrive (the daemon keeps one per folder under incoming).

    `add(key, sample)` returns the current estimate (None until a frame with a picture came);
    `rendering` is the estimate, `locked` says whether it is final: stable (moved less than
    `settle` over the last `stable_for` frames, with at least `min_frames`) or the roll is
    complete (`expected` frames seen).  A locked rendering never changes.

    `film`: the roll's film type, recorded in its rendering ("bw"/"slide": `inverter` is that
    film's); "auto": the frames' detected types (`FrameSample.film`) vote (films.vote) and the
    analysis uses the leading type's normaliser (`inverter` for colour); when the lead changes
    the estimate starts settling again.  `film_why` says how the type was settled."""

    def __init__(self, inverter, blank: BaseEstimate | None = None, expected: int | None = None,
                 min_frames: int = MIN_FRAMES, stable_for: int = STABLE_FOR, settle: float = SETTLE,
                 film: str | None = None):
        self.inverter, self.blank, self.expected = inverter, blank, expected
        self.min_frames, self.stable_for, self.settle = min_frames, stable_for, settle
        self.samples: dict[str, FrameSample] = {}
        self.rendering: Rendering | None = None
        self.locked = False
        self._calm = 0
        self.auto = film == "auto"
        self._colour = inverter
        self.film = "colour" if self.auto else film  # auto: the vote's lead ("colour" until one comes)
        self.film_why = None if self.auto else "the roll's film type"

    def _vote(self) -> None:
        """auto: the leading film type of the frames' votes, and its normaliser."""
        from station.pipeline.films import INVERTERS, vote

        film, self.film_why = vote(s.film for s in self.samples.values())
        if film != self.film:
            self.film = film
            self.inverter = INVERTERS[film]() if film in INVERTERS else self._colour
            self._calm = 0
            self.rendering = None  # an estimate for another film type: no movement to compare

    def add(self, key: str, sample: FrameSample) -> Rendering | None:
        if self.locked or key in self.samples:
            return self.rendering
        self.samples[key] = sample
        if self.auto:
            self._vote()
        try:
            new = analyse(list(self.samples.values()), self.inverter, self.blank)
        except ValueError:
            return self.rendering
        moved = movement(self.rendering, new)
        self._calm = self._calm + 1 if moved <= self.settle else 0
        complete = self.expected is not None and len(self.samples) >= self.expected
        if (new.frames >= self.min_frames and self._calm >= self.stable_for) or complete:
            self.locked = True
        self.rendering = Rendering(new.base, new.A, new.b, new.base_source, new.frames, self.locked, self.film)
        return self.rendering

    def complete(self) -> Rendering | None:
        """The roll is complete (or the operator says so): lock what there is."""
        if self.rendering is not None and not self.locked:
            self.locked = True
            r = self.rendering
            self.rendering = Rendering(r.base, r.A, r.b, r.base_source, r.frames, True, r.film)
        return self.rendering


def sample_file(path, long_side: int = 768, flat=None) -> FrameSample:
    """A file's roll sample from a fast half-size decode (Bayer binning for RAWs), through the
    flat field `flat` (pipeline.flatfield.FlatField) when given, as the frame is converted."""
    from station.pipeline.fastdecode import decode_fast
    from station.pipeline.flatfield import apply_flat

    return frame_sample(apply_flat(decode_fast(path, long_side=long_side).rgb, flat))  # apply_flat(x, None) is x


def analyse_files(paths, inverter, blank: BaseEstimate | None = None, skip=(), flat=None) -> tuple[Rendering, list]:
    """`station invert --roll`: one fast pass over the roll's files -> (rendering, [(path, reason)]
    for files that could not be read).  Files in `skip` (the blank) are left out; `flat`: the
    roll's flat field, divided out of every sample."""
    from station.errors import StationError

    skip = {str(p) for p in skip}
    samples, failures = [], []
    for p in paths:
        if str(p) in skip:
            continue
        try:
            samples.append(sample_file(p, flat=flat))
        except StationError as exc:
            failures.append((p, exc.reason))
        except Exception as exc:  # the conversion pass reports it again, with the file's name
            failures.append((p, f"{exc.__class__.__name__}: {exc}"))
    if not samples:
        raise ValueError("no frame of the roll could be read")
    return analyse(samples, inverter, blank), failures
