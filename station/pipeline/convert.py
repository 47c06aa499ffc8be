"""The engine: one RAW in, positives out.  Every caller (CLI, daemon, demo) uses it.

decode → (flat field) → film base → density → invert (→ print) → (crop) → write, as a plan of
stages (stages.py: one `Frame` state, one `Stage` interface, one sequencer `run` that times each
stage and names the file and the stage on failure).  This module only chooses the plan: the
fused uint16 master (fastmaster.master_plan) for a full-resolution RAW when the inverter bakes
into a LUT, else the plain float plan (stages.PLAIN).  The print (printing.py) is composed into
the inverter's LUT when it has one.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from station.pipeline import stages
from station.pipeline.base import BaseEstimate
from station.pipeline.decode import Decoded
from station.pipeline.options import ConvertOptions, choose_base, frame_affine_for  # noqa: F401  (re-exported)
from station.pipeline.outputs import (  # noqa: F401  (shared with fastmaster; re-exported)
    NEGATIVE_BLUE_MAX, ConvertResult, output_meta, positive_warning, resize_long_side,
)
from station.pipeline.stages import _LAST_PREVIEW, Frame, NotApplicable, run  # noqa: F401  (re-exported)

# Output kinds: "tiff" = full-resolution 16-bit TIFF, "jpeg" = full-size JPEG,
# "preview" = small JPEG (long side `preview_size`) for the operator's screen,
# "linear" = the linear scan before the inversion (linearscan.py; the plain plan only).
KINDS = ("tiff", "jpeg", "preview", "linear")
log = logging.getLogger("station.pipeline")

_decode_preview = stages.decode_preview  # older name


def invert_decoded(dec: Decoded, options: ConvertOptions, src=None) -> tuple[np.ndarray, BaseEstimate, dict]:
    """Decoded frame → (positive sRGB HxWx3, base used, timings): the plain plan's inversion stages."""
    frame = run(stages.INVERSION, Frame(src=Path(src) if src else None, decoded=dec, meta=dec.meta), options)
    return frame.positive, frame.base, frame.timings


def convert_file(src: str | Path, outputs: dict[str, Path], options: ConvertOptions | None = None) -> ConvertResult:
    """Convert one input into the outputs named by kind; raise StationError on failure.

    A frame's outputs are written together or not at all (write.publish_frame); a
    positive with no picture in it is a failure; the original is only read.
    """
    options = options or ConvertOptions()
    src = Path(src)
    unknown = set(outputs) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown output kinds {sorted(unknown)}")
    frame = Frame(src=src, outputs=dict(outputs))
    done = None
    if not options.half_size and options.compiled and options.crop == "none" and "linear" not in outputs:
        from station.pipeline.fastmaster import master_plan

        plan = master_plan(src, options)  # one pass uint16 -> LUT -> uint16; None: not applicable
        if plan is not None:
            try:
                done = run(plan, frame, options)
            except NotApplicable:
                done = None
    if done is None:
        done = run(stages.PLAIN, frame, options)
    return result(done, options)


def result(frame: Frame, options: ConvertOptions) -> ConvertResult:
    """The ConvertResult of a frame that went through a whole plan."""
    return ConvertResult(src=frame.src, outputs=frame.written, base=frame.base, timings=frame.timings,
                         positive_shape=frame.positive.shape[:2],
                         warnings=list(frame.warnings), sample=frame.sample, film=frame.film,
                         rendering=options.rendering.id if options.rendering is not None else None)
