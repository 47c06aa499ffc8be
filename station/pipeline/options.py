"""What a conversion is asked to do (`ConvertOptions`) and the two choices every path makes
the same way: the film base of a frame (`choose_base`) and the roll's fixed normaliser
(`frame_affine_for`).  Shared by the plain path (convert.py) and the fast master
(fastmaster.py), which must not import each other."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from station.pipeline.base import BaseEstimate, estimate_base, reconcile

log = logging.getLogger("station.pipeline")


@dataclass
class ConvertOptions:
    inverter: object | None = None  # an Inverter; None = get_inverter() default
    base: BaseEstimate | None = None  # from a blank frame; None = estimate per frame
    half_size: bool = False  # half-size decode (fast, for previews): Bayer binning, see fastdecode.py
    compiled: bool = True  # run a two-part inverter through its baked 3-D LUT (lutinvert.py)
    crop: str = "none"  # "none" or "auto"
    overwrite: bool = False
    jpeg_quality: int = 90
    preview_size: int = 1600
    extra_meta: dict = field(default_factory=dict)
    print: object | None = None  # printing.PrintSettings after the inversion; None = as inverted
    # observe(decoded, positive, base): called after the inversion on the decode-invert path,
    # with the frame in memory (the daemon's worker computes the frame checks' metrics here);
    # not called on the one-pass master path (fastmaster)
    observe: object | None = None
    # the roll's rendering (pipeline/roll.py): its base (unless `base` is given) and its fixed
    # normaliser (A, b) replace the per-frame ones, on every path (preview, master, plain)
    rendering: object | None = None
    sample: bool = False  # also return the frame's roll-analysis sample (ConvertResult.sample)
    # flatfield.FlatField: the light's fall-off, divided out of the linear camera RGB right after
    # the decode, before the base and the inversion, on every path (plain, preview, fast master)
    flatfield: object | None = None
    # film type (pipeline/films.py): "colour" (C-41, the configured inverter), "bw" (silver negative:
    # one density, neutral transfer), "slide" (E-6: no inversion), or "auto" (detected per frame)
    film: str = "colour"



def choose_base(rgb: np.ndarray, options: ConvertOptions, src=None) -> tuple[BaseEstimate, BaseEstimate | None]:
    """The film base for a frame (rgb: linear, any size; a ~384 px copy is enough) and the frame's
    own rebate estimate (None when not measured).

    A given base (a blank, the roll's) is used, scaled when the frame's own rebate disagrees with
    it by a neutral factor (the scan exposure changed: `base.reconcile`, logged); without one,
    the frame's own estimate."""
    fixed = options.base
    if fixed is None and options.rendering is not None:
        fixed = options.rendering.base_estimate()
    own = estimate_base(rgb)
    if fixed is None:
        return own, own
    used, note = reconcile(fixed, own)
    if note:
        log.info("%s: %s", Path(src).name if src else "frame", note)
    return used, own


def frame_affine_for(options: ConvertOptions):
    """The fixed (A, b) of the roll's rendering, or None (the inverter meters the frame)."""
    return options.rendering.affine if options.rendering is not None else None
