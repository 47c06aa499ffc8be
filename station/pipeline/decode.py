"""Decode a RAW (or a 16-bit scan) into linear, scene-independent camera RGB.

`decode(path) -> Decoded`: float32 HxWx3, 1.0 = the sensor's white level,
black subtracted, no auto-brightness, no per-frame white balance (all
channel multipliers are 1, so the numbers are the camera's own channel
responses and identical shots decode identically).  The film base divides
out the light's colour later (see normalise.py), which is why no white
balance is needed here.

RAW files go through LibRaw (rawpy): every format it knows (DNG, NEF,
CR2/CR3, ARW, RAF, ORF, RW2, ...).  TIFF scans (8/16-bit, e.g. a film
scanner's linear "HDR raw" output) go through tifffile and are taken as
linear; PNG/JPEG are taken as sRGB-encoded and linearised.
"""
from __future__ import annotations

import os
from pathlib import Path

from station.errors import DecodeError
from station.pipeline.readers import (  # noqa: F401  (the readers' names, re-exported)
    IMAGE_EXT, RAW_EXT, SRGB_EXT, TIFF_EXT, Decoded, check_file, ciff_meta, decode_raw, decode_raw_u16, exif_date,
    is_rgb_scan, linear_to_srgb, open_raw, raw_meta, read_image, sniff, srgb_to_linear, validated,
)

# older names (tests and tools still use them)
_check_file, _decode_raw, _raw_meta = check_file, decode_raw, raw_meta


def decode(path: str | os.PathLike, half_size: bool = False) -> Decoded:
    """Decode `path` to linear camera RGB; raise DecodeError naming the file and reason."""
    path = Path(path)
    check_file(path)
    kind = sniff(path)
    if kind == "raw":
        if half_size:  # Bayer 2x2 binning (LibRaw's half-size numbers, faster); LibRaw for other sensors
            from station.pipeline.fastdecode import decode_fast

            dec = decode_fast(path)
        else:
            dec = decode_raw(path, False)
    else:
        dec = read_image(path, kind, half_size)
    return validated(dec, path)
