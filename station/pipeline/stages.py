"""The pipeline as stages: one `Frame` state, one `Stage` interface, one sequencer (`run`).

A conversion is a *plan*: a tuple of stages run in order by `run(plan, frame, options)`.
Every stage has the same interface::

    class Stage(Protocol):
        name: str                                   # its key in Frame.timings
        def __call__(self, frame: Frame, options: ConvertOptions) -> Frame: ...

A stage is pure: it reads the fields it needs from the frame it is given and returns a new
`Frame` (`dataclasses.replace`) with the fields it makes; it never changes the one it got (the
arrays it received may be shared, e.g. the preview decode cache).  A stage with nothing to do
for these options (no flat field, no print, crop "none", ...) returns the frame it was given,
unchanged, and is then not timed.  The sequencer times every stage that ran
(`Frame.timings[stage.name]`, seconds) and turns an unexpected exception of any stage into a
`DecodeError` naming the file and the stage (a `StationError` passes through as it is, and so
do `MemoryError` and `FileNotFoundError`, which the daemon's worker reports in their own words).

Shapes (kornia-style, H x W x C, C = 3 = camera/sRGB R, G, B):

====================  ===========================  ==========================================
Frame field           shape, dtype                 meaning
====================  ===========================  ==========================================
decoded.rgb           (H, W, 3) float32            linear camera RGB, 1.0 = sensor white
raw16                 (H, W, 3) uint16             the same, 65535 = white (fused master plan)
base / own            BaseEstimate, rgb (3,)       film base used / the frame's own rebate
density               (H, W, 3) float32            D = -log10(rgb / base), 0 at the base
positive              (H', W', 3) float32 | uint16 sRGB-encoded positive, [0, 1] or 0..65535
sample                roll.FrameSample             the frame's contribution to its roll
written               {kind: Path}                 the outputs published
====================  ===========================  ==========================================

The plans (convert.py chooses one per conversion):

* **plain** (`PLAIN`): decode → flatfield → base → film → normalise → invert → print → crop → sample →
  observe → write, all float32;
* **fused master** (fastmaster.master_plan): decode16 → flatfield → base → film → normalise (a 1-D
  shaper per channel) → invert (uint16 → shaper → 3-D LUT → uint16) → sample → write: the same
  stage names and the same interface, on uint16 data, for full-resolution RAW masters.

Where a new stage goes: write a class with `name` and `__call__(frame, options) -> frame` here
(or in its own module, importing `Frame` from here), document the fields it reads and writes
with their shapes, and put it in the plan(s) at its place; it is timed and its failures are
reported by `run`.  The film types (films.py) are plans made this way.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from station.errors import DecodeError, StationError
from station.pipeline.base import BaseEstimate, estimate_base


@dataclass
class Frame:
    """What one input carries through a plan (see the module docstring for the shapes)."""

    src: Path | None
    outputs: dict = field(default_factory=dict)  # {kind: Path} asked for
    decoded: object | None = None  # readers.Decoded (float32 linear .rgb, .meta)
    raw16: np.ndarray | None = None  # (H, W, 3) uint16 linear (fused plan)
    meta: dict = field(default_factory=dict)  # the source's metadata (EXIF...)
    base: BaseEstimate | None = None  # the film base used
    own: BaseEstimate | None = None  # the frame's own rebate estimate (None: not measured)
    density: np.ndarray | None = None  # (H, W, 3) float32 density above base
    inverter: object | None = None  # the inverter used (after `compiled`)
    printed: bool = False  # the print is already in the positive (composed into the LUT)
    affine: tuple | None = None  # the normaliser (A, b) used (fused plan)
    shaper: object | None = None  # v (0..65535) -> z per channel (fused plan)
    positive: np.ndarray | None = None  # (H', W', 3) sRGB float32 [0, 1] or uint16
    sample: object | None = None  # roll.FrameSample
    written: dict = field(default_factory=dict)  # {kind: Path} published
    film: str | None = None  # the film type the plan renders ("colour" | "bw" | "slide")
    timings: dict = field(default_factory=dict)  # {stage name: seconds}
    warnings: list = field(default_factory=list)  # one line each, e.g. "looks like a positive"


class Stage(Protocol):
    name: str

    def __call__(self, frame: Frame, options) -> Frame: ...


class NotApplicable(Exception):
    """Raised by a stage of a specialised plan (the fused master) when this input needs the
    general plan instead; the caller runs that one (convert.convert_file)."""


def run(plan, frame: Frame, options) -> Frame:
    """Run the stages of `plan` in order on `frame`; time each; name the file and the stage on failure."""
    for stage in plan:
        t0 = time.perf_counter()
        try:
            out = stage(frame, options)
        except (StationError, MemoryError, FileNotFoundError, NotApplicable):
            raise
        except Exception as exc:
            raise DecodeError(frame.src, f"{stage.name} stage failed ({exc.__class__.__name__}: {exc})") from None
        if out is not frame:
            out = replace(out, timings={**out.timings, stage.name: time.perf_counter() - t0})
        frame = out
    return frame


# ----------------------------------------------------------------------------- decode
_LAST_PREVIEW: list = []  # [(key, Decoded)]: the last preview-size decode of this process


def decode_preview(src: Path, long_side: int | None):
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


class Decode:
    """src → decoded (H, W, 3) float32 linear, meta.  Full resolution, or with
    `options.half_size` the preview decode (binned straight down to the preview's size when
    the preview is the only output; cached, see `decode_preview`)."""

    name = "decode"

    def __call__(self, frame: Frame, options) -> Frame:
        from station.pipeline.decode import decode

        if options.half_size:
            only_preview = set(frame.outputs) == {"preview"}
            dec = decode_preview(frame.src, options.preview_size if only_preview else None)
        else:
            dec = decode(frame.src, half_size=False)
        return replace(frame, decoded=dec, meta=dec.meta)


class FlatField:
    """decoded.rgb / the light's fall-off (`options.flatfield`), as a new array (the cached
    decode is kept).  Nothing to do without a flat field."""

    name = "flatfield"

    def __call__(self, frame: Frame, options) -> Frame:
        if options.flatfield is None:
            return frame
        from station.pipeline.flatfield import apply_flat

        return replace(frame, decoded=replace(frame.decoded, rgb=apply_flat(frame.decoded.rgb, options.flatfield)))


class Base:
    """decoded.rgb → base (the film base used) and own (the frame's rebate estimate):
    `options.choose_base` (a blank's or the roll's base, reconciled with the frame's rebate)."""

    name = "base"

    def __call__(self, frame: Frame, options) -> Frame:
        from station.pipeline.options import choose_base

        base, own = choose_base(frame.decoded.rgb, options, frame.src)
        return replace(frame, base=base, own=own)


class Film:
    """decoded.rgb (or raw16), own, base → film ("colour" | "bw" | "slide"), inverter (the film
    type's, None for colour: the configured one) and warnings (films.choose).
    `options.film`: "colour" (default), "bw", "slide" or "auto" (detected here, logged).
    A negative frame that is film base all over (a blank: films.unexposed) is refused here,
    naming the file, before any rendering could stretch its noise into a "picture"."""

    name = "film"

    def __call__(self, frame: Frame, options) -> Frame:
        from station.pipeline.films import choose, unexposed

        if frame.decoded is not None:
            rgb = frame.decoded.rgb
        else:
            h, w = frame.raw16.shape[:2]
            step = max(1, int(np.ceil(max(h, w) / 384)))
            rgb = frame.raw16[::step, ::step].astype(np.float32) * (1.0 / 65535.0)
        film, inverter, warnings = choose(getattr(options, "film", None), rgb, frame.own, frame.base, frame.src)
        if film != "slide":
            problem = unexposed(rgb, frame.base)
            if problem:
                raise DecodeError(frame.src, problem)
        return replace(frame, film=film, inverter=inverter, warnings=[*frame.warnings, *warnings])


class Normalise:
    """decoded.rgb (H, W, 3), base (3,) → density (H, W, 3) float32 above the base."""

    name = "normalise"

    def __call__(self, frame: Frame, options) -> Frame:
        from station.pipeline.normalise import density

        return replace(frame, density=density(frame.decoded.rgb, frame.base.rgb))


class Invert:
    """density (H, W, 3) → positive (H, W, 3) sRGB float32 in [0, 1].

    The inverter is the one given to the stage, else the frame's (the film type's, `Film`),
    else `options.inverter`, else the default; with `options.compiled` it runs through its baked 3-D LUT, with the
    print composed into it (then `printed`).  The roll's fixed normaliser replaces the
    frame's own (`options.frame_affine_for`)."""

    name = "invert"

    def __init__(self, inverter=None):
        self.inverter = inverter

    def __call__(self, frame: Frame, options) -> Frame:
        from station.pipeline.invert import get_inverter
        from station.pipeline.options import frame_affine_for

        inverter = self.inverter or frame.inverter or options.inverter or get_inverter()
        printed = False
        if options.compiled:
            from station.pipeline.lutinvert import LutInverter, compiled

            inverter = compiled(inverter, print=options.print)
            printed = isinstance(inverter, LutInverter)  # the print is composed into its LUT
        affine = frame_affine_for(options)
        D = frame.density
        pos = inverter(D) if affine is None else inverter(D, affine=affine)
        return replace(frame, positive=pos, inverter=inverter, printed=printed)


class Print:
    """positive (sRGB float) → printed positive (`options.print`), unless the print is
    identity or already composed into the inverter's LUT."""

    name = "print"

    def __call__(self, frame: Frame, options) -> Frame:
        if frame.printed or options.print is None or options.print.identity:
            return frame
        from station.pipeline.printing import apply_srgb

        return replace(frame, positive=apply_srgb(frame.positive, options.print))


class Crop:
    """positive (H, W, 3), density → the straightened picture area (H', W', 3) with
    `options.crop == "auto"`."""

    name = "crop"

    def __call__(self, frame: Frame, options) -> Frame:
        if options.crop != "auto":
            return frame
        from station.pipeline.crop import auto_crop

        return replace(frame, positive=auto_crop(frame.positive, frame.density, film=frame.film))


class Sample:
    """decoded.rgb, film → sample: the frame's contribution to its roll's rendering
    (`options.sample`), with the film type rendered (detected with auto: the frame's vote)."""

    name = "sample"

    def __call__(self, frame: Frame, options) -> Frame:
        if not options.sample:
            return frame
        from station.pipeline.roll import frame_sample

        rebate = frame.own if frame.own is not None else estimate_base(frame.decoded.rgb)
        return replace(frame, sample=frame_sample(frame.decoded.rgb, rebate=rebate, film=frame.film))


class Observe:
    """options.observe(decoded, positive, base): the frame in memory for an observer (the
    daemon's frame checks); the frame itself is unchanged."""

    name = "observe"

    def __call__(self, frame: Frame, options) -> Frame:
        if options.observe is None:
            return frame
        options.observe(frame.decoded, frame.positive, frame.base)
        return replace(frame)


class Write:
    """positive (float or uint16), meta → written {kind: Path}: every output of the frame
    published together (write.write_positive); a positive with no picture is refused."""

    name = "write"

    def __call__(self, frame: Frame, options) -> Frame:
        from station.pipeline.outputs import output_meta, resize_long_side
        from station.pipeline.write import write_positive

        pos = frame.positive
        meta = output_meta(frame.meta, frame.base, options, frame.src)
        if frame.film not in (None, "colour"):
            meta["station_film"] = frame.film  # the type rendered (given, or detected with --film auto)
            meta["station_method"] = frame.film  # its own transfer made it, not the colour model
            meta.pop("station_model", None)
        if pos.dtype == np.uint16:
            def small():
                h, w = pos.shape[:2]
                step = max(1, max(h, w) // (2 * options.preview_size))
                return resize_long_side(pos[::step, ::step].astype(np.float32) * (1.0 / 65535.0), options.preview_size)
        else:
            def small():
                return resize_long_side(pos, options.preview_size)

        def linear():  # `--format linear-tiff` (the plain plan: the decoded frame is at hand)
            from station.pipeline.linearscan import linear_scan

            return linear_scan(frame.decoded.rgb, frame.base.rgb)

        written = write_positive(frame.outputs, pos, meta, overwrite=options.overwrite, quality=options.jpeg_quality,
                                 small=small, src=frame.src, linear=linear)
        return replace(frame, written=written)


# the inversion proper (what `invert_decoded` runs on a frame already decoded)
INVERSION = (Base(), Film(), Normalise(), Invert(), Print(), Crop(), Sample())
PLAIN = (Decode(), FlatField(), *INVERSION, Observe(), Write())
