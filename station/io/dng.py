"""Write minimal but valid Bayer DNG files that LibRaw (rawpy) opens.

Used by the film generator, the demo's virtual camera, tests and benchmarks:
a real RAW container around simulated sensor data, so every test goes
through the same decoder a real camera file does.
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import tifffile

_CFA_CODES = {"R": 0, "G": 1, "B": 2}


def _srational(values) -> list[int]:
    out: list[int] = []
    for v in values:
        f = Fraction(float(v)).limit_denominator(10000)
        out += [f.numerator, f.denominator]
    return out


def _rational(values) -> list[int]:
    return _srational(values)


# A plausible camera-to-XYZ matrix (XYZ->camera, as DNG's ColorMatrix1 wants).
DEFAULT_COLOR_MATRIX = (
    0.6722, -0.0635, -0.0963,
    -0.4287, 1.2460, 0.2028,
    -0.0908, 0.2162, 0.5668,
)


def mosaic(rgb: np.ndarray, pattern: str = "RGGB") -> np.ndarray:
    """Sample an HxWx3 image into an HxW Bayer mosaic (H and W even)."""
    h, w, _ = rgb.shape
    cfa = np.empty((h, w), dtype=rgb.dtype)
    for i, ch in enumerate(pattern.upper()):
        dy, dx = divmod(i, 2)
        cfa[dy::2, dx::2] = rgb[dy::2, dx::2, _CFA_CODES[ch]]
    return cfa


def write_bayer_dng(
    path: str | os.PathLike,
    cfa: np.ndarray,
    pattern: str = "RGGB",
    black: int = 0,
    white: int = 65535,
    color_matrix=DEFAULT_COLOR_MATRIX,
    as_shot_neutral=(1.0, 1.0, 1.0),
    make: str = "Station",
    model: str = "Virtual Negative",
    orientation: int = 1,
    datetime: str | None = None,
) -> Path:
    """Write `cfa` (HxW uint16 Bayer data, values in [black, white]) as a DNG.

    The file is written to a dot-temporary and renamed, so readers never see
    a partial file.  Returns the final path.
    """
    path = Path(path)
    cfa = np.ascontiguousarray(cfa, dtype=np.uint16)
    if cfa.ndim != 2 or cfa.shape[0] % 2 or cfa.shape[1] % 2:
        raise ValueError(f"{path}: CFA must be 2-D with even sides, got {cfa.shape}")
    pattern = pattern.upper()
    if sorted(pattern) != ["B", "G", "G", "R"]:
        raise ValueError(f"{path}: unsupported CFA pattern {pattern!r}")
    extratags = [
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, tuple(_CFA_CODES[c] for c in pattern), True),  # CFAPattern
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, "s", 0, f"{make} {model}", True),  # UniqueCameraModel
        (50714, "H", 1, int(black), True),  # BlackLevel
        (50717, "H", 1, int(white), True),  # WhiteLevel
        (50721, "2i", 9, _srational(color_matrix), True),  # ColorMatrix1
        (50728, "2I", 3, _rational(as_shot_neutral), True),  # AsShotNeutral
        (50778, "H", 1, 21, True),  # CalibrationIlluminant1 = D65
        (271, "s", 0, make, True),
        (272, "s", 0, model, True),
        (274, "H", 1, int(orientation), True),
    ]
    if datetime:
        extratags.append((306, "s", 0, datetime, True))
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        tifffile.imwrite(
            fh,
            cfa,
            photometric=32803,  # CFA
            compression=None,
            subfiletype=0,
            extratags=extratags,
            metadata=None,
        )
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path
