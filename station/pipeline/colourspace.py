"""Output colour spaces: the pixels converted, and an ICC profile that says what they are.

The inversion makes sRGB-encoded positives.  `--colour-space` writes the 16-bit TIFF in
another RGB space: the pixels are converted (sRGB transfer curve undone, a 3x3 matrix through
XYZ, the target's transfer curve applied) and the file carries the matching ICC profile.

Pillow's ImageCms creates only an sRGB profile, so the other profiles are written here: ICC
v4.3 display-class matrix/TRC profiles (header, 'desc'/'cprt' as mluc, D50 'wtpt', Bradford
'chad', D50-adapted rXYZ/gXYZ/bXYZ columns, parametric 'para' curves, MD5 profile ID), the
form LittleCMS itself writes for cmsCreateRGBProfile.  tests/test_output_options.py checks
each with LittleCMS (through ImageCms): a colour converted here and taken back to sRGB through
the profile comes back as it was.

The conversion uses the same D50-adapted matrices the profiles hold (what a colour-managed
reader computes), so the file and its profile agree exactly.  The positive was already
limited to sRGB's gamut by the inversion: a wider space holds the same colours, with more
room for edits.
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

D50 = np.array([0.9642, 1.0, 0.8249])
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])


@dataclass(frozen=True)
class Space:
    key: str
    description: str
    primaries: tuple  # (xr, yr), (xg, yg), (xb, yb)
    white: tuple  # (x, y)
    # ICC parametric curve (decoding, encoded -> linear): ("srgb",) | ("gamma", g) | ("romm",)
    curve: tuple


D65_XY = (0.3127, 0.3290)
D50_XY = (0.3457, 0.3585)
SPACES = {
    "srgb": Space("srgb", "sRGB IEC61966-2.1", ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06)), D65_XY, ("srgb",)),
    "display-p3": Space("display-p3", "Display P3", ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), D65_XY, ("srgb",)),
    "adobe-rgb": Space("adobe-rgb", "Adobe RGB (1998) compatible", ((0.64, 0.33), (0.21, 0.71), (0.15, 0.06)), D65_XY,
                       ("gamma", 563 / 256)),
    "prophoto": Space("prophoto", "ProPhoto RGB (ROMM RGB)", ((0.7347, 0.2653), (0.1596, 0.8404), (0.0366, 0.0001)),
                      D50_XY, ("romm",)),
    # `--format linear-tiff`: linear light; the camera's own primaries, sRGB's stand in (docs/METADATA.md)
    "linear": Space("linear", "station linear scan (camera RGB, gamma 1.0)", ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06)),
                    D65_XY, ("gamma", 1.0)),
}
CHOICES = ("srgb", "display-p3", "adobe-rgb", "prophoto")


def _xyz(xy) -> np.ndarray:
    x, y = xy
    return np.array([x / y, 1.0, (1 - x - y) / y])


@lru_cache(maxsize=None)
def to_pcs(key: str) -> np.ndarray:
    """3x3: the space's linear RGB -> XYZ relative to D50 (ICC PCS), Bradford-adapted."""
    sp = SPACES[key]
    P = np.stack([_xyz(p) for p in sp.primaries], axis=1)
    W = _xyz(sp.white)
    M = P * np.linalg.solve(P, W)  # columns scaled so that RGB (1,1,1) is the white
    src, dst = _BRADFORD @ W, _BRADFORD @ D50
    adapt = np.linalg.inv(_BRADFORD) @ np.diag(dst / src) @ _BRADFORD
    return adapt @ M


def matrix(src: str, dst: str) -> np.ndarray:
    """3x3: linear `src` RGB -> linear `dst` RGB (through D50, as a colour-managed reader does)."""
    return np.linalg.inv(to_pcs(dst)) @ to_pcs(src)


def decode_curve(v: np.ndarray, key: str) -> np.ndarray:
    """Encoded (0..1) -> linear, the space's transfer curve."""
    kind = SPACES[key].curve
    v = np.clip(v, 0.0, 1.0)
    if kind[0] == "srgb":
        return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    if kind[0] == "romm":
        return np.where(v < 1 / 32, v / 16, v ** 1.8)
    return v ** kind[1]


def encode_curve(v: np.ndarray, key: str) -> np.ndarray:
    """Linear (0..1) -> encoded, the inverse of `decode_curve`."""
    kind = SPACES[key].curve
    v = np.clip(v, 0.0, 1.0)
    if kind[0] == "srgb":
        return np.where(v <= 0.0031308, v * 12.92, 1.055 * np.power(v, 1 / 2.4) - 0.055)
    if kind[0] == "romm":
        return np.where(v < 1 / 512, v * 16, np.power(v, 1 / 1.8))
    return np.power(v, 1 / kind[1])


ENC_POINTS = 1 << 18  # the encoding table's nodes, uniform in sqrt(linear): within 0.4 of a 16-bit level


@lru_cache(maxsize=None)
def _tables(dst: str):
    """(sRGB decoding table for every uint16, the 3x3 matrix, the `dst` encoding table):
    encode(v) = enc[round(sqrt(v) * (ENC_POINTS - 1))] as uint16 (sqrt spreads the nodes where
    the curves are steep, near black)."""
    dec = decode_curve(np.arange(65536) / 65535.0, "srgb").astype(np.float32)
    u = np.arange(ENC_POINTS) / (ENC_POINTS - 1)
    enc = (encode_curve(u * u, dst) * 65535.0 + 0.5).astype(np.uint16)
    return dec, matrix("srgb", dst).astype(np.float32), enc


try:  # one compiled pass per pixel; the numpy bands below give the same numbers
    import numba as _nb

    from station.model.lut import HAVE_NUMBA as _HAVE_NUMBA

    if not _HAVE_NUMBA:
        raise ImportError

    @_nb.njit(parallel=True, fastmath=True, cache=True, nogil=True)
    def _convert_nb(src, dec, M, enc, out):  # pragma: no cover - compiled
        top = enc.shape[0] - 1
        for k in _nb.prange(src.shape[0]):
            r, g, b = dec[src[k, 0]], dec[src[k, 1]], dec[src[k, 2]]
            for c in range(3):
                v = M[c, 0] * r + M[c, 1] * g + M[c, 2] * b
                v = min(max(v, 0.0), 1.0)
                out[k, c] = enc[int(np.sqrt(v) * top + 0.5)]
except Exception:  # pragma: no cover - where numba is absent
    _convert_nb = None


def _convert_u16(pos: np.ndarray, dst: str, rows: int) -> np.ndarray:
    dec, M, enc = _tables(dst)
    out = np.empty(pos.shape, np.uint16)
    if _convert_nb is not None:
        _convert_nb(np.ascontiguousarray(pos).reshape(-1, 3), dec, M, enc, out.reshape(-1, 3))
        return out
    top = np.float32(enc.shape[0] - 1)
    for r0 in range(0, pos.shape[0], rows):
        lin = np.clip(dec[pos[r0:r0 + rows]] @ M.T, 0.0, 1.0)
        out[r0:r0 + rows] = enc[(np.sqrt(lin) * top + 0.5).astype(np.int32)]
    return out


def convert(pos: np.ndarray, dst: str, rows: int = 512) -> np.ndarray:
    """An sRGB-encoded positive (HxWx3, float in [0,1] or uint16) -> `dst`-encoded, same dtype.
    uint16 (the masters) through tables in one compiled pass (numpy row bands without numba);
    float exactly, in row bands."""
    if dst == "srgb":
        return pos
    if pos.dtype == np.uint16:
        return _convert_u16(pos, dst, rows)
    M = matrix("srgb", dst).astype(np.float32)
    out = np.empty(pos.shape, np.float32)
    for r0 in range(0, pos.shape[0], rows):
        lin = decode_curve(pos[r0:r0 + rows].astype(np.float32), "srgb").astype(np.float32)
        out[r0:r0 + rows] = encode_curve(lin @ M.T, dst)
    return out


# --------------------------------------------------------------------------- ICC v4 writer
@lru_cache(maxsize=1)
def srgb_icc() -> bytes:
    """LittleCMS's own sRGB profile (through Pillow's ImageCms)."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _s15(v: float) -> bytes:
    return struct.pack(">i", int(round(v * 65536)))


def _mluc(text: str) -> bytes:
    s = text.encode("utf-16-be")
    return b"mluc" + b"\0" * 4 + struct.pack(">II", 1, 12) + b"enUS" + struct.pack(">II", len(s), 28) + s


def _xyz_tag(v) -> bytes:
    return b"XYZ " + b"\0" * 4 + b"".join(_s15(c) for c in v)


def _para(key: str) -> bytes:
    kind = SPACES[key].curve
    if kind[0] == "srgb":  # type 3: Y = (aX+b)^g for X >= d, else cX
        fn, params = 3, (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)
    elif kind[0] == "romm":
        fn, params = 3, (1.8, 1.0, 0.0, 1 / 16, 1 / 32)
    else:
        fn, params = 0, (kind[1],)
    return b"para" + b"\0" * 4 + struct.pack(">HH", fn, 0) + b"".join(_s15(p) for p in params)


@lru_cache(maxsize=None)
def icc_profile(key: str) -> bytes:
    """The ICC v4.3 RGB display profile of `key` (bytes); sRGB is Pillow's (LittleCMS's) own."""
    if key == "srgb":
        return srgb_icc()
    sp = SPACES[key]
    M = to_pcs(key)
    src_white = _BRADFORD @ _xyz(sp.white)
    chad = np.linalg.inv(_BRADFORD) @ np.diag((_BRADFORD @ D50) / src_white) @ _BRADFORD
    trc = _para(key)
    tags = [
        (b"desc", _mluc(sp.description)),
        (b"cprt", _mluc("No copyright, use freely")),
        (b"wtpt", _xyz_tag(D50)),
        (b"chad", b"sf32" + b"\0" * 4 + b"".join(_s15(c) for c in chad.reshape(-1))),
        (b"rXYZ", _xyz_tag(M[:, 0])), (b"gXYZ", _xyz_tag(M[:, 1])), (b"bXYZ", _xyz_tag(M[:, 2])),
        (b"rTRC", trc), (b"gTRC", trc), (b"bTRC", trc),
    ]
    table_len = 4 + 12 * len(tags)
    offset = 128 + table_len
    entries, blobs, placed = [], [], {}
    for sig, data in tags:
        if data in placed:  # the three curves share one copy
            entries.append(struct.pack(">4sII", sig, placed[data], len(data)))
            continue
        placed[data] = offset
        entries.append(struct.pack(">4sII", sig, offset, len(data)))
        pad = (-len(data)) % 4
        blobs.append(data + b"\0" * pad)
        offset += len(data) + pad
    body = struct.pack(">I", len(tags)) + b"".join(entries) + b"".join(blobs)
    size = 128 + len(body)
    header = (struct.pack(">I", size) + b"\0" * 4 + struct.pack(">I", 0x04300000) + b"mntrRGB XYZ "
              + struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + b"\0" * 4 + struct.pack(">I", 0)
              + b"\0" * 16 + struct.pack(">I", 0) + b"".join(_s15(c) for c in D50) + b"\0" * 4)
    header += b"\0" * (128 - len(header))
    profile = bytearray(header + body)
    profile[84:100] = hashlib.md5(bytes(profile)).digest()  # flags, intent and ID are zero here
    return bytes(profile)
