"""The engine: one RAW in, positives out.  Every caller (CLI, daemon, demo) uses it.

decode → (flat field) → film base → density → invert (→ print) → (crop) → write.  The print
(printing.py) is composed into the inverter's LUT when it has one.  Each stage is a pure
function in its own module; this file only sequences them and times them.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from station.errors import DecodeError, StationError
from station.pipeline.base import BaseEstimate, estimate_base
from station.pipeline.decode import Decoded, decode
from station.pipeline.normalise import density
from station.pipeline.options import ConvertOptions, choose_base, frame_affine_for  # noqa: F401  (re-exported)
from station.pipeline.outputs import (  # noqa: F401  (shared with fastmaster; re-exported)
    NEGATIVE_BLUE_MAX, ConvertResult, output_meta, positive_warning, resize_long_side,
)

# Output kinds: "tiff" = full-resolution 16-bit TIFF, "jpeg" = full-size JPEG,
# "preview" = small JPEG (long side `preview_size`) for the operator's screen.
KINDS = ("tiff", "jpeg", "preview")
log = logging.getLogger("station.pipeline")


def invert_decoded(dec: Decoded, options: ConvertOptions, src=None) -> tuple[np.ndarray, BaseEstimate, dict]:
    """Decoded frame → (positive sRGB HxWx3, base used, timings)."""
    pos, base, t, _ = _invert_decoded(dec, options, src)
    return pos, base, t


def _invert_decoded(dec: Decoded, options: ConvertOptions, src=None):
    from station.pipeline.invert import get_inverter

    t = {}
    t0 = time.perf_counter()
    base, own = choose_base(dec.rgb, options, src)
    t["base"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    D = density(dec.rgb, base.rgb)
    t["normalise"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    inverter = options.inverter or get_inverter()
    printed = False
    if options.compiled:
        from station.pipeline.lutinvert import LutInverter, compiled

        inverter = compiled(inverter, print=options.print)
        printed = isinstance(inverter, LutInverter)  # the print is composed into its LUT
    affine = frame_affine_for(options)
    pos = inverter(D) if affine is None else inverter(D, affine=affine)
    t["invert"] = time.perf_counter() - t0
    if not printed and options.print is not None and not options.print.identity:
        from station.pipeline.printing import apply_srgb

        t0 = time.perf_counter()
        pos = apply_srgb(pos, options.print)
        t["print"] = time.perf_counter() - t0
    if options.crop == "auto":
        from station.pipeline.crop import auto_crop

        t0 = time.perf_counter()
        pos = auto_crop(pos, D)
        t["crop"] = time.perf_counter() - t0
    sample = None
    if options.sample:
        from station.pipeline.roll import frame_sample

        sample = frame_sample(dec.rgb, rebate=own if own is not None else estimate_base(dec.rgb))
    return pos, base, t, sample


_LAST_PREVIEW: list = []  # [(key, Decoded)]: the last preview-size decode of this process


def _decode_preview(src: Path, long_side: int | None):
    """decode_fast, remembering the last frame: a frame re-made with another print (the page's
    sliders) is not decoded again while its file is unchanged (same size and mtime)."""
    from station.pipeline.fastdecode import decode_fast

    try:
        st = src.stat()
        key = (str(src.resolve()), st.st_size, st.st_mtime_ns, long_side)
    except OSError:
        key = None
    if key is not None and _LAST_PREVIEW and _LAST_PREVIEW[0][0] == key:
        return _LAST_PREVIEW[0][1]
    dec = decode_fast(src, long_side=long_side)
    dec.rgb.flags.writeable = False  # shared by the next re-render: nobody may change it in place
    _LAST_PREVIEW[:] = [(key, dec)] if key is not None else []
    return dec


def convert_file(src: str | Path, outputs: dict[str, Path], options: ConvertOptions | None = None) -> ConvertResult:
    """Convert one input into the outputs named by kind; raise StationError on failure.

    A frame's outputs are written together or not at all (write.publish_frame); a
    positive with no picture in it is a failure; the original is only read.
    """
    from station.pipeline.write import write_positive

    options = options or ConvertOptions()
    src = Path(src)
    unknown = set(outputs) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown output kinds {sorted(unknown)}")
    if not options.half_size and options.compiled and options.crop == "none":
        from station.pipeline.fastmaster import convert_master

        fast = convert_master(src, outputs, options)  # one pass uint16 -> LUT -> uint16; None: not applicable
        if fast is not None:
            return fast
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if options.half_size:
        # preview only: bin straight down to the preview's size (in linear light)
        only_preview = set(outputs) == {"preview"}
        dec = _decode_preview(src, options.preview_size if only_preview else None)
    else:
        dec = decode(src, half_size=False)
    timings["decode"] = time.perf_counter() - t0
    if options.flatfield is not None:
        from dataclasses import replace

        from station.pipeline.flatfield import apply_flat

        t0 = time.perf_counter()
        dec = replace(dec, rgb=apply_flat(dec.rgb, options.flatfield))  # a new array: the cached decode is kept
        timings["flatfield"] = time.perf_counter() - t0
    try:
        pos, base, t, sample = _invert_decoded(dec, options, src)
    except StationError:
        raise
    except Exception as exc:
        raise DecodeError(src, f"inversion failed ({exc.__class__.__name__}: {exc})") from None
    timings.update(t)
    if options.observe is not None:
        t0 = time.perf_counter()
        options.observe(dec, pos, base)
        timings["observe"] = time.perf_counter() - t0
    meta = output_meta(dec.meta, base, options, src)
    t0 = time.perf_counter()
    written = write_positive(outputs, pos, meta, overwrite=options.overwrite, quality=options.jpeg_quality,
                             small=lambda: resize_long_side(pos, options.preview_size), src=src)
    timings["write"] = time.perf_counter() - t0
    return ConvertResult(src=src, outputs=written, base=base, timings=timings, positive_shape=pos.shape[:2],
                         warnings=[w for w in (positive_warning(base),) if w], sample=sample,
                         rendering=options.rendering.id if options.rendering is not None else None)
