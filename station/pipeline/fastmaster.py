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
`frame_affine(D)`, as classic and the MLP models have.  `convert_master` returns None when it does not apply (not a
RAW, an inverter with no two-part form, auto crop), and convert_file then
takes the plain path.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from station.errors import DecodeError, StationError
from station.pipeline.normalise import EPS, density


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


def invert_u16(rgb16: np.ndarray, lut_inverter, base=None, options=None, src=None) -> tuple[np.ndarray, object, dict]:
    """HxWx3 uint16 linear (65535 = white) -> (HxWx3 uint16 sRGB positive, base, timings).

    With `options` (a ConvertOptions) the base and the normaliser are chosen as on the plain
    path (options.choose_base, the roll's fixed affine)."""
    from station.pipeline.options import ConvertOptions, choose_base, frame_affine_for

    options = options or ConvertOptions(base=base)
    if base is not None and options.base is None:
        options = ConvertOptions(**{**options.__dict__, "base": base})
    t = {}
    t0 = time.perf_counter()
    base, _ = choose_base(small_linear(rgb16), options, src)
    t["base"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    affine = frame_affine_for(options)
    if affine is None:
        affine = lut_inverter.direct.frame_affine(sample_density(rgb16, base.rgb))
    if affine is None:
        raise TypeError("the inverter's normaliser is not a per-channel affine (no frame_affine)")
    shaper = shaper_for(base.rgb, affine)
    t["normalise"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = lut_inverter.lut.apply_u16(rgb16, shaper, method=lut_inverter.method)
    t["invert"] = time.perf_counter() - t0
    return out, base, t


def convert_master(src, outputs: dict, options):
    """Fast path of convert_file for full-resolution RAW conversions; None when it does not apply."""
    from station.pipeline.outputs import ConvertResult, output_meta, positive_warning, resize_long_side
    from station.pipeline.readers import check_file, decode_raw_u16, sniff
    from station.pipeline.invert import get_inverter
    from station.pipeline.lutinvert import LutInverter, compiled
    from station.pipeline.write import write_positive

    src = Path(src)
    if options.half_size or not options.compiled or options.crop != "none":
        return None
    check_file(src)
    if sniff(src) != "raw":
        return None
    inverter = compiled(options.inverter or get_inverter(), print=getattr(options, "print", None))
    if not isinstance(inverter, LutInverter) or getattr(inverter.direct, "frame_affine", None) is None:
        return None
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    rgb16, meta0 = decode_raw_u16(src, False)
    timings["decode"] = time.perf_counter() - t0
    if rgb16.shape[0] < 8 or rgb16.shape[1] < 8:
        return None  # the plain path reports it
    if getattr(options, "flatfield", None) is not None:
        from station.pipeline.flatfield import apply_flat_u16

        t0 = time.perf_counter()
        apply_flat_u16(rgb16, options.flatfield)  # in place, float32 row bands, before the base
        timings["flatfield"] = time.perf_counter() - t0
    try:
        pos16, base, t = invert_u16(rgb16, inverter, options=options, src=src)
    except StationError:
        raise
    except Exception as exc:  # as convert_file: every failure names the file
        raise DecodeError(src, f"inversion failed ({exc.__class__.__name__}: {exc})") from None
    sample = None
    if options.sample:
        from station.pipeline.roll import frame_sample

        sample = frame_sample(small_linear(rgb16, 768))
    del rgb16
    timings.update(t)
    meta = output_meta(meta0, base, options, src)
    t0 = time.perf_counter()

    def small():
        h, w = pos16.shape[:2]
        step = max(1, max(h, w) // (2 * options.preview_size))
        return resize_long_side(pos16[::step, ::step].astype(np.float32) * (1.0 / 65535.0), options.preview_size)

    written = write_positive(outputs, pos16, meta, overwrite=options.overwrite, quality=options.jpeg_quality,
                             small=small, src=src)
    timings["write"] = time.perf_counter() - t0
    return ConvertResult(src=src, outputs=written, base=base, timings=timings, positive_shape=pos16.shape[:2],
                         warnings=[w for w in (positive_warning(base),) if w], sample=sample,
                         rendering=options.rendering.id if options.rendering is not None else None)
