"""Write positives atomically: a half-written file is never visible.

Every writer encodes to a dot-temporary in the destination folder, fsyncs
it, then either links it to the final name (fails if that name exists: no
overwrite unless asked) or renames it over the final name (overwrite=True).
Outputs carry an sRGB ICC profile, the RAW's orientation and its capture
metadata (camera, lens, date).
"""
from __future__ import annotations

import errno
import io
import json
import os
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from station.errors import OutputError


@lru_cache(maxsize=1)
def srgb_icc() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _reason(exc: OSError, path: Path | None = None) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the output disk"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "output folder is not writable"
    text = f"{exc.strerror or exc}"
    # numpy/tifffile report a short write as "N requested and M written", with no errno:
    # on a local disk that is a full disk.
    if exc.errno is None and re.search(r"requested and \d+ written", text):
        return f"no space left on the output disk (short write: {text})"
    if path is not None:
        try:
            st = os.statvfs(path.parent)
            if st.f_bavail * st.f_frsize < (16 << 20):
                return f"{text} (output disk nearly full: {st.f_bavail * st.f_frsize >> 10} KiB free)"
        except OSError:
            pass
    return text


def atomic_write(path: Path, data_writer, overwrite: bool = False) -> Path:
    """Call data_writer(fileobj) into a temporary, fsync, then publish as `path`."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputError(path, "already exists (not overwriting; use --overwrite)")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            data_writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # atomic and never clobbers
            except FileExistsError:
                raise OutputError(path, "already exists (not overwriting; use --overwrite)") from None
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                    raise
                if path.exists():  # a filesystem without hard links
                    raise OutputError(path, "already exists (not overwriting; use --overwrite)") from None
                os.rename(tmp, path)
        try:
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
    except OSError as exc:
        raise OutputError(path, _reason(exc, path)) from None
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
    return path


def _to_uint(img: np.ndarray, bits: int) -> np.ndarray:
    scale = 65535.0 if bits == 16 else 255.0
    out = np.clip(img, 0.0, 1.0) * scale + 0.5
    return out.astype(np.uint16 if bits == 16 else np.uint8)


def _ascii(value) -> str:
    """TIFF ASCII tags take 7-bit text only: a camera or lens name with other characters
    (or a corrupt one) is carried over with those characters replaced, never failing the master."""
    text = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in str(value))
    return text.strip() or "?"


def describe(meta: dict) -> str:
    """The outputs' description (TIFF ImageDescription, JPEG EXIF ImageDescription): the
    metadata as JSON, with how the station made the positive (station_*; station_print
    when the print was adjusted)."""
    return json.dumps({k: v for k, v in meta.items() if isinstance(v, (str, int, float, list))
                       or (k == "station_print" and isinstance(v, dict))}, sort_keys=True)


def write_tiff16(path: Path, img: np.ndarray, meta: dict | None = None, overwrite: bool = False) -> Path:
    """HxWx3 sRGB (float in [0,1], or uint16 already) → 16-bit sRGB TIFF with ICC profile and metadata."""
    import tifffile

    meta = meta or {}
    data = img if img.dtype == np.uint16 else _to_uint(img, 16)
    extratags = [(274, "H", 1, int(meta.get("orientation", 1) or 1), True)]
    for tag, key in ((271, "make"), (272, "model"), (306, "datetime")):
        if meta.get(key):
            extratags.append((tag, "s", 0, _ascii(meta[key]), True))
    description = describe(meta)

    def writer(fh):
        tifffile.imwrite(
            fh, data, photometric="rgb", iccprofile=srgb_icc(), description=description,
            extratags=extratags, software="station", metadata=None,
        )

    return atomic_write(path, writer, overwrite)


def _exif(meta: dict):
    from PIL import Image

    exif = Image.Exif()
    exif[274] = int(meta.get("orientation", 1) or 1)
    exif[305] = "station"
    if any(k.startswith("station_") for k in meta):
        exif[270] = describe({k: v for k, v in meta.items() if k.startswith("station_")})
    for tag, key in ((271, "make"), (272, "model"), (306, "datetime")):
        if meta.get(key):
            exif[tag] = str(meta[key])
    if meta.get("lens"):
        exif.get_ifd(0x8769)[0xA434] = str(meta["lens"])
    return exif


def encode_jpeg(img: np.ndarray, meta: dict | None = None, quality: int = 90) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(_to_uint(img, 8), "RGB").save(
        buf, "JPEG", quality=quality, icc_profile=srgb_icc(), exif=_exif(meta or {}), optimize=False,
    )
    return buf.getvalue()


def write_jpeg(path: Path, img: np.ndarray, meta: dict | None = None, overwrite: bool = False, quality: int = 90) -> Path:
    """HxWx3 sRGB float in [0,1] → 8-bit JPEG with ICC profile and EXIF."""
    data = encode_jpeg(img, meta, quality)
    return atomic_write(path, lambda fh: fh.write(data), overwrite)
