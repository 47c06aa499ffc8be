"""Camera metadata of RAWs that are not plain TIFF containers, and what LibRaw adds.

rawpy exposes almost none of a RAW's EXIF (its maintainer's advice: read EXIF with an EXIF
library), so the readers parse the file's own IFDs: plain TIFF containers (DNG, NEF, CR2,
ARW, PEF, KDC, ...) with tifffile in `readers._tiff_meta`; the others here, with Pillow's
TIFF/EXIF directory parser on the TIFF structure each format embeds:

* ORF, RW2/RWL: a TIFF whose magic number is not 42 ("IIRO", "IIRS", "IIU\\0"): read with
  the magic put right, in memory;
* CR3 (ISO media): the CMT1 box holds IFD0 (make, model, date), CMT2 the EXIF IFD;
* MRW: the TTW block is a TIFF;
* RAF, X3F, and anything else: the EXIF (APP1 "Exif\\0\\0") of the preview JPEG the file embeds.

What is still missing then comes from LibRaw (`libraw_fill`): its capture timestamp and lens
name.  No external program runs.  Every date is checked (`readers.exif_date`): a malformed
one is dropped with a warning, never copied.
"""
from __future__ import annotations

import datetime
import logging
import re
import struct
from pathlib import Path

log = logging.getLogger("station.decode")


def _clean(v) -> str:
    return str(v).strip(" \x00")


_EXIF_DATE = re.compile(r"(\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})")


def exif_date(value, path: Path, tag: str) -> str | None:
    """A valid EXIF date "YYYY:MM:DD HH:MM:SS" as is; anything else (a scanner's
    "Mon Jan 02 ...", an all-zero or impossible date) is dropped with a warning."""
    text = _clean(value)
    m = _EXIF_DATE.fullmatch(text)
    if m:
        try:
            datetime.datetime(*map(int, m.groups()))
            return text
        except ValueError:
            pass
    log.warning("%s: %s %r is not a valid date (YYYY:MM:DD HH:MM:SS); not copied to the outputs", path, tag, text)
    return None


SCAN_BYTES = 16 << 20  # metadata lives near the start of every format handled here
_TIFF_MAGICS = {42, 0x55, 0x4F52, 0x5352}  # TIFF, Panasonic RW2, Olympus ORF ("RO", "RS")


def _exif_from_tiff(blob: bytes):
    """A Pillow Exif of the TIFF structure `blob` (any of the magics above), or None."""
    from PIL import Image

    if len(blob) < 8 or blob[:2] not in (b"II", b"MM"):
        return None
    order = "<" if blob[:2] == b"II" else ">"
    magic = struct.unpack_from(order + "H", blob, 2)[0]
    if magic not in _TIFF_MAGICS:
        return None
    blob = blob[:2] + struct.pack(order + "H", 42) + blob[4:]
    exif = Image.Exif()
    try:
        exif.load(b"Exif\x00\x00" + blob)
    except Exception:
        return None
    return exif


def _fields(exif, sub=None) -> dict:
    """Raw (unvalidated) text fields of a Pillow Exif: IFD0 + its EXIF IFD (or `sub`)."""
    out: dict = {}
    if exif is None:
        return out
    for key, tag in (("make", 271), ("model", 272), ("datetime", 306), ("orientation", 274)):
        v = exif.get(tag)
        if v not in (None, ""):
            out[key] = v
    try:
        ifd = sub if sub is not None else exif.get_ifd(0x8769)
    except Exception:
        ifd = {}
    for key, tag in (("datetime_original", 0x9003), ("lens", 0xA434)):
        v = ifd.get(tag)
        if v not in (None, ""):
            out[key] = v
    return out


def _box(data: bytes, name: bytes) -> bytes | None:
    """The payload of the first ISO-media box `name` (e.g. b"CMT1") found in `data`."""
    at = data.find(name)
    while at >= 4:
        size = struct.unpack_from(">I", data, at - 4)[0]
        if 8 < size <= len(data) - at + 4:
            return data[at + 4:at - 4 + size]
        at = data.find(name, at + 4)
    return None


def _embedded_exif(data: bytes) -> dict:
    """The fields of the first APP1 EXIF block (a preview JPEG's) in `data`."""
    at = data.find(b"Exif\x00\x00")
    while at >= 0:
        exif = _exif_from_tiff(data[at + 6:])
        if exif is not None and len(exif):
            return _fields(exif)
        at = data.find(b"Exif\x00\x00", at + 6)
    return {}


def container_fields(path: Path, data: bytes | None = None) -> dict:
    """Unvalidated make/model/datetime/datetime_original/lens/orientation of a RAW that is
    not a plain TIFF (see the module's list); {} when none are found."""
    if data is None:
        with open(path, "rb") as fh:
            data = fh.read(SCAN_BYTES)
    found: dict = {}
    if data[4:8] == b"ftyp" and b"CMT1" in data[:1 << 20]:  # Canon CR3
        cmt1, cmt2 = _box(data, b"CMT1"), _box(data, b"CMT2")
        found.update(_fields(_exif_from_tiff(cmt1 or b"")))
        exif2 = _exif_from_tiff(cmt2 or b"")
        if exif2 is not None:
            found.update({k: v for k, v in _fields(exif2, sub=exif2).items()
                          if k in ("datetime_original", "lens")})
    elif data[:4] == b"\x00MRM":  # Minolta MRW: the TTW block is a TIFF
        at = data.find(b"\x00TTW", 8, 4096)
        if at > 0:
            found.update(_fields(_exif_from_tiff(data[at + 8:])))
    elif data[:2] in (b"II", b"MM"):  # TIFF with another magic: ORF, RW2, RWL
        found.update(_fields(_exif_from_tiff(data)))
    for key, value in _embedded_exif(data).items():  # RAF, X3F, ...: the preview's EXIF
        found.setdefault(key, value)
    return found


def clean_fields(raw: dict, path: Path) -> dict:
    """Validated station metadata from raw fields: text stripped, dates checked (a malformed
    one dropped with a warning), orientation 1..8."""
    meta: dict = {}
    for key in ("make", "model", "lens"):
        v = raw.get(key)
        if isinstance(v, bytes):
            v = v.decode("latin-1")
        if v is not None and str(v).strip(" \x00"):
            meta[key] = str(v).strip(" \x00")
    for key, tag in (("datetime", "DateTime"), ("datetime_original", "DateTimeOriginal")):
        v = raw.get(key)
        if v is not None:
            d = exif_date(v.decode("latin-1") if isinstance(v, bytes) else v, path, tag)
            if d:
                meta[key] = d
    if meta.get("datetime_original"):
        meta["datetime"] = meta["datetime_original"]
    try:
        o = int(raw.get("orientation") or 0)
        if 1 <= o <= 8:
            meta["orientation"] = o
    except (TypeError, ValueError):
        pass
    return meta


def libraw_fill(meta: dict, raw, date: bool = True) -> dict:
    """Fill what the file's own tags did not give from LibRaw (an open rawpy.RawPy): the
    capture time (LibRaw's timestamp, for every format it reads; 0 = none) when `date` (not
    when the file has a date tag: a malformed one stays dropped, LibRaw would read it as some
    other date) and the lens."""
    if raw is None:
        return meta
    try:
        stamp = raw.other.timestamp
        if date and stamp is not None and stamp.year > 1970 and not meta.get("datetime_original"):
            meta["datetime_original"] = stamp.strftime("%Y:%m:%d %H:%M:%S")
            meta.setdefault("datetime", meta["datetime_original"])
    except Exception:
        pass
    try:
        lens = (raw.lens.model or "").strip(" \x00")
        if lens and not meta.get("lens"):
            meta["lens"] = lens
    except Exception:
        pass
    return meta
