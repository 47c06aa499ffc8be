"""The full-resolution master in one pass: LibRaw uint16 -> LUT -> uint16 TIFF.

The plain path (convert.invert_decoded) makes four full-size float32 copies
of a frame (linear RGB, density, positive, then the uint16 for the TIFF):
at 24 MP that is ~1.2 GB of memory traffic and most of the time.  Here:

1. LibRaw decodes to HxWx3 uint16 (LINEAR demosaic, as decode.py); a flat field
   (options.flatfield) is divided out in place, in float32 row bands;
2. the film base is estimated on a 1/N strided copy (what estimate_base
   looks at anyway), and the normaliser's (A, b) from a ~262k-pixel sample
   of the densities;
   (the same pixels LutInverter samples on the float path);
3. since density, normaliser and the LUT's input scaling are per-channel
   functions of the 16-bit input value, they are tabulated for all 65536
   values (a 1-D "shaper" per channel), and one compiled pass does
   uint16 -> shaper -> 3-D LUT -> uint16 sRGB;
4. the uint16 result is written as the TIFF (no float copy).

The result equals the float LUT path (LutInverter on density()) to within
uint16 rounding: same base, same normaliser sample, same LUT.  The normaliser must be a per-channel affine with a
`frame_affine(D)`, as classic and the MLP models have.

These steps are stages of the one pipeline interface (stages.py: `Frame`, `Stage`, `run`), with the
plain plan's stage names (decode, flatfield, base, film, normalise, invert, sample, write); `master_plan`
returns the plan, or None when it does not apply (not a RAW, an inverter with no two-part form,
auto crop), and convert_file then runs the plain plan.  The frame checks' observer is not called
on this plan (options.observe).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from station.pipeline.normalise import EPS, density
from station.pipeline.stages import Film, Frame, NotApplicable, Write, run


def shaper_for(base_rgb: np.ndarray, affine) -> callable:
    """v (0..65535 float64) -> z = A * D(v) + b per channel, D = -log10(max(v/65535, EPS) / base)."""
    A, b = (np.asarray(a, np.float64).reshape(3) for a in affine)
    base = np.maximum(np.asarray(base_rgb, np.float64).reshape(3), EPS)

    def shaper(v):
        x = np.maximum(np.asarray(v, np.float64) / 65535.0, EPS)[:, None]
        return (-np.log10(x / base)) * A + b

    return shaper


def sample_density(rgb16: np.ndarray, base_rgb: np.ndarray) -> np.ndarray:
    """Densities of the pixels LutInverter.frame_affine samples (lutinvert.sample_frame)."""
    from station.pipeline.lutinvert import sample_frame

    return density(sample_frame(rgb16).astype(np.float32) * (1.0 / 65535.0), base_rgb)


def small_linear(rgb16: np.ndarray, long_side: int = 384) -> np.ndarray:
    h, w = rgb16.shape[:2]
    step = max(1, int(np.ceil(max(h, w) / long_side)))
    return rgb16[::step, ::step].astype(np.float32) * (1.0 / 65535.0)


class DecodeU16:
    """src → raw16 (H, W, 3) uint16 linear (LibRaw, as decode.py), meta.  A frame under 8 px
    is `NotApplicable` (the plain plan reports it)."""

    name = "decode"

    def __call__(self, frame: Frame, options) -> Frame:
        from station.pipeline.readers import decode_raw_u16

        rgb16, meta = decode_raw_u16(frame.src, False)
        if rgb16.shape[0] < 8 or rgb16.shape[1] < 8:
            raise NotApplicable("too small for the fused master")
        return replace(frame, raw16=rgb16, meta=meta)


class FlatFieldU16:
    """raw16 / the flat field's gain, in float32 row bands.  In place: the fused plan owns its
    decode and keeps one full-size copy of it (the one exception to stages' purity)."""

    name = "flatfield"

    def __call__(self, frame: Frame, options) -> Frame:
        if getattr(options, "flatfield", None) is None:
            return frame
        from station.pipeline.flatfield import apply_flat_u16

        apply_flat_u16(frame.raw16, options.flatfield)
        return replace(frame)


class BaseU16:
    """raw16 → base, own: `options.choose_base` on a ~384 px linear copy."""

    name = "base"

    def __call__(self, frame: Frame, options) -> Frame:
        from station.pipeline.options import choose_base

        base, own = choose_base(small_linear(frame.raw16), options, frame.src)
        return replace(frame, base=base, own=own)


class ShaperU16:
    """raw16, base → inverter (the film type's compiled, else the plan's LutInverter), affine
    (A, b) (the roll's, else the inverter's on a sample of the frame's densities) and shaper:
    v (0..65535) → z = A*D(v) + b per channel."""

    name = "normalise"

    def __init__(self, lut_inverter):
        self.lut_inverter = lut_inverter

    def __call__(self, frame: Frame, options) -> Frame:
        from station.pipeline.lutinvert import LutInverter, compiled
        from station.pipeline.options import frame_affine_for

        inv = self.lut_inverter
        if frame.inverter is not None:  # the film type's (stages.Film)
            inv = compiled(frame.inverter, print=getattr(options, "print", None))
            if not isinstance(inv, LutInverter) or getattr(inv.direct, "frame_affine", None) is None:
                raise NotApplicable("the film type's inverter has no two-part form")
        affine = frame_affine_for(options)
        if affine is None:
            affine = inv.direct.frame_affine(sample_density(frame.raw16, frame.base.rgb))
        if affine is None:
            raise TypeError("the inverter's normaliser is not a per-channel affine (no frame_affine)")
        return replace(frame, inverter=inv, affine=affine, shaper=shaper_for(frame.base.rgb, affine))


class LutU16:
    """raw16 (H, W, 3) uint16, shaper, inverter (a LutInverter) → positive (H, W, 3) uint16 sRGB:
    shaper → 3-D LUT in one compiled pass (the print, if any, is composed into the LUT)."""

    name = "invert"

    def __call__(self, frame: Frame, options) -> Frame:
        inv = frame.inverter  # compiled by ShaperU16
        out = inv.lut.apply_u16(frame.raw16, frame.shaper, method=inv.method)
        return replace(frame, positive=out, inverter=inv, printed=True)


class SampleU16:
    """raw16 → sample (`options.sample`, from a 768 px linear copy); raw16 is dropped from the
    frame here (the write needs only the positive)."""

    name = "sample"

    def __call__(self, frame: Frame, options) -> Frame:
        sample = None
        if options.sample:
            from station.pipeline.roll import frame_sample

            sample = frame_sample(small_linear(frame.raw16, 768))
        return replace(frame, sample=sample, raw16=None)


def inversion_u16(lut_inverter) -> tuple:
    """The fused inversion stages for a compiled inverter (a LutInverter with frame_affine)."""
    return (BaseU16(), ShaperU16(lut_inverter), LutU16())


def invert_u16(rgb16: np.ndarray, lut_inverter, base=None, options=None, src=None) -> tuple[np.ndarray, object, dict]:
    """HxWx3 uint16 linear (65535 = white) -> (HxWx3 uint16 sRGB positive, base, timings).

    With `options` (a ConvertOptions) the base and the normaliser are chosen as on the plain
    path (options.choose_base, the roll's fixed affine)."""
    from station.pipeline.options import ConvertOptions

    options = options or ConvertOptions(base=base)
    if base is not None and options.base is None:
        options = ConvertOptions(**{**options.__dict__, "base": base})
    frame = run(inversion_u16(lut_inverter), Frame(src=src, raw16=rgb16), options)
    return frame.positive, frame.base, frame.timings


def master_plan(src, options, inverter=None):
    """The fused plan for a full-resolution conversion of `src`, or None when it does not apply
    (preview, not compiled, auto crop, not a RAW, an inverter with no two-part form).
    `inverter`: the film type's (else options.inverter, else the default)."""
    from station.pipeline.invert import get_inverter
    from station.pipeline.lutinvert import LutInverter, compiled
    from station.pipeline.readers import check_file, sniff

    src = Path(src)
    if options.half_size or not options.compiled or options.crop != "none":
        return None
    check_file(src)
    if sniff(src) != "raw":
        return None
    inv = compiled(inverter or options.inverter or get_inverter(), print=getattr(options, "print", None))
    if not isinstance(inv, LutInverter) or getattr(inv.direct, "frame_affine", None) is None:
        return None
    return (DecodeU16(), FlatFieldU16(), BaseU16(), Film(), ShaperU16(inv), LutU16(), SampleU16(), Write())
