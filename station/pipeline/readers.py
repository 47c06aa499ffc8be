"""The file readers under `decode()`: what a file is, and LibRaw / tifffile / Pillow to `Decoded`.

`decode.decode()` (the one entry) and `fastdecode` (the Bayer-binning preview
path) both read through here; neither imports the other's internals.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from station.errors import DecodeError

# tifffile logs every malformed tag it meets; a bad file is reported once, by us.
logging.getLogger("tifffile").setLevel(logging.CRITICAL)
log = logging.getLogger("station.decode")

TIFF_EXT = {".tif", ".tiff"}
SRGB_EXT = {".png", ".jpg", ".jpeg"}
RAW_EXT = {
    ".dng", ".nef", ".nrw", ".cr2", ".cr3", ".crw", ".arw", ".srf", ".sr2", ".raf", ".orf",
    ".rw2", ".pef", ".srw", ".kdc", ".dcr", ".mos", ".mef", ".mrw", ".3fr", ".fff", ".iiq",
    ".erf", ".raw", ".rwl", ".x3f", ".gpr",
}
IMAGE_EXT = RAW_EXT | TIFF_EXT | SRGB_EXT


@dataclass
class Decoded:
    rgb: np.ndarray  # float32 HxWx3, linear, 1.0 = sensor white
    meta: dict = field(default_factory=dict)  # make, model, lens, datetime, orientation, source
    clipped: float = 0.0  # fraction of pixels with a channel at the sensor's white

    @property
    def shape(self) -> tuple[int, int]:
        return self.rgb.shape[:2]


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    v = np.clip(np.asarray(v, dtype=np.float32), 0.0, 1.0)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * np.power(v, 1 / 2.4) - 0.055).astype(np.float32)


def sniff(path: Path) -> str:
    """Classify a file by its content: 'tiff', 'raw', 'png', 'jpeg', 'text' or 'unknown'."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head.startswith(b"\x89PNG"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        # DNG, NEF, CR2, ARW, ... are TIFF containers: the extension tells a plain TIFF
        # scan apart, and so does the structure: a film scanner's "RAW" (a Nikon Coolscan
        # NEF) is a plain RGB TIFF, which LibRaw opens but misreads (white level).
        if path.suffix.lower() in TIFF_EXT or is_rgb_scan(path):
            return "tiff"
        return "raw"
    if not head:
        return "unknown"
    return "text" if _looks_like_text(path) else "raw"


def _looks_like_text(path: Path) -> bool:
    """The first 4 KiB are printable UTF-8 text (a note or a log renamed .NEF): LibRaw would
    answer with a misleading reason (for some sizes "truncated or I/O error")."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        if len(head) < 4096:
            return False
        try:  # a multi-byte character cut at the 4 KiB boundary
            text = head[:-3].decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            return False
    return all(ch.isprintable() or ch in "\t\r\n\f" for ch in text)


_PLAIN_COMPRESSION = {1, 5, 8, 32773, 32946}  # none, LZW, deflate, PackBits: never a camera's


def is_rgb_scan(path: Path) -> bool:
    """True for a TIFF-structured file that holds an RGB picture and no sensor data:
    first IFD a full-resolution (NewSubfileType 0) 8- or 16-bit RGB image, no DNG
    version, no sub-IFDs (where camera RAWs keep the mosaic), no CFA, no JPEG.
    A camera's NEF/CR2/DNG has a thumbnail or a JPEG first and its sensor data in a
    sub-IFD or later IFD; a film scanner's NEF (Nikon Scan, Coolscan) is one RGB page."""
    try:
        import tifffile

        with tifffile.TiffFile(path) as tf:
            page = tf.pages[0]
            tags = page.tags
            sub_type = tags[254].value if 254 in tags else 0
            return (
                int(page.photometric) == 2 and page.samplesperpixel >= 3
                and int(sub_type) == 0 and 330 not in tags and 50706 not in tags
                and int(page.compression) in _PLAIN_COMPRESSION
                and page.bitspersample in (8, 16)
                and min(page.imagelength, page.imagewidth) >= 8
            )
    except Exception:
        return False


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DecodeError(path, "no such file")
    if not path.is_file():
        raise DecodeError(path, "not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise DecodeError(path, "file is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise DecodeError(path, "permission denied")


def _as_rgb(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] < 3:
        raise DecodeError(path, f"unsupported image layout {arr.shape}")
    return arr[..., :3]


def _decode_tiff(path: Path) -> Decoded:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            series = tf.series[0]
            arr = np.asarray(series.asarray())
            axes = series.axes
            meta = _tiff_meta(tf.pages[0].tags, path)
    except Exception as exc:  # tifffile raises many kinds
        raise DecodeError(path, f"not a readable TIFF ({exc})") from None
    if arr.ndim == 3 and axes.endswith("SYX") and arr.shape[0] in (3, 4):
        arr = np.moveaxis(arr, 0, -1)  # planar (PlanarConfiguration 2): one plane per channel
    arr = _as_rgb(arr, path)
    if arr.dtype == np.uint16:
        rgb = arr.astype(np.float32) / 65535.0
    elif arr.dtype == np.uint8:
        rgb = arr.astype(np.float32) / 255.0
    elif np.issubdtype(arr.dtype, np.floating):
        rgb = arr.astype(np.float32)
    else:
        raise DecodeError(path, f"unsupported TIFF sample type {arr.dtype}")
    meta["source"] = "tiff"
    return Decoded(rgb=rgb, meta=meta, clipped=float(np.mean(np.any(rgb >= 0.999, axis=2))))


def _decode_pillow(path: Path) -> Decoded:
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            mode16 = im.mode in ("I;16", "I;16B", "I")
            arr = np.asarray(im.convert("RGB") if not mode16 else im)
    except Exception as exc:
        raise DecodeError(path, f"not a readable image ({exc})") from None
    scale = 65535.0 if arr.dtype == np.uint16 or arr.max() > 255 else 255.0
    rgb = srgb_to_linear(_as_rgb(arr, path).astype(np.float32) / scale)
    return Decoded(rgb=rgb, meta={"source": "sRGB image"}, clipped=float(np.mean(np.any(rgb >= 0.999, axis=2))))


from station.pipeline.rawmeta import _clean, exif_date  # noqa: E402  (dates checked in one place)


def _tiff_meta(tags, path: Path) -> dict:
    """Camera, lens, dates and orientation from a TIFF's IFD0 and EXIF IFD (no pixels read)."""
    meta: dict = {}
    for key, code in (("make", 271), ("model", 272), ("orientation", 274)):
        if code in tags and tags[code].value not in ("", None):
            v = tags[code].value
            try:
                meta[key] = int(v) if key == "orientation" else _clean(v)
            except (TypeError, ValueError):
                continue
        if key != "orientation" and not meta.get(key):
            meta.pop(key, None)
    if not meta.get("model") and 50708 in tags and _clean(tags[50708].value):
        # a DNG with no Make/Model (Blackmagic cameras): the DNG's UniqueCameraModel names it
        meta["model"] = _clean(tags[50708].value)
        meta.setdefault("make", meta["model"].split()[0])
    exif = tags["ExifTag"].value if "ExifTag" in tags else {}
    if not isinstance(exif, dict):
        exif = {}
    if exif.get("LensModel"):
        meta["lens"] = _clean(exif["LensModel"])
    if 306 in tags and tags[306].value:
        d = exif_date(tags[306].value, path, "DateTime")
        if d:
            meta["datetime"] = d
    if exif.get("DateTimeOriginal"):
        d = exif_date(exif["DateTimeOriginal"], path, "DateTimeOriginal")
        if d:
            meta["datetime_original"] = d
            meta["datetime"] = d
    return meta


def ciff_meta(path: Path) -> dict:
    """Make, model and capture date of a Canon CRW (CIFF: not a TIFF container, so
    tifffile cannot read it and rawpy does not expose LibRaw's names).  Reads the heap
    records only: 0x080a = "Make\\0Model\\0", 0x180e = capture time (Unix seconds)."""
    import datetime as _dt
    import struct

    meta: dict = {}
    with open(path, "rb") as fh:
        data = fh.read(64 << 20)
    if len(data) < 26 or data[:2] not in (b"II", b"MM") or data[6:14] != b"HEAPCCDR":
        return meta
    e = "<" if data[:2] == b"II" else ">"

    def heap(start: int, end: int, depth: int) -> None:
        if depth > 8 or end - start < 6 or end > len(data):
            return
        table = start + struct.unpack_from(e + "I", data, end - 4)[0]
        if not start <= table <= end - 2:
            return
        count = struct.unpack_from(e + "H", data, table)[0]
        for i in range(min(count, 4096)):
            at = table + 2 + 10 * i
            if at + 10 > end:
                return
            tag, size, off = struct.unpack_from(e + "HII", data, at)
            kind = tag & 0x3800
            if (tag >> 14) & 3 == 1:  # the value is in the record itself (8 bytes)
                value = data[at + 2:at + 10]
            else:
                if start + off + size > end:
                    continue
                if kind in (0x2800, 0x3000):  # a sub-heap
                    heap(start + off, start + off + size, depth + 1)
                    continue
                value = data[start + off:start + off + size]
            tid = tag & 0x3FFF
            if tid == 0x080A:  # CanonRawMakeModel
                parts = [p.decode("ascii", "replace").strip() for p in value.split(b"\0") if p.strip(b"\0 ")]
                if parts:
                    meta["make"] = parts[0]
                if len(parts) > 1:
                    meta["model"] = parts[1]
            elif tid == 0x180E and len(value) >= 4:  # TimeStamp: seconds, local time of the camera
                secs = struct.unpack_from(e + "I", value)[0]
                if secs:
                    stamp = _dt.datetime(1970, 1, 1) + _dt.timedelta(seconds=secs)
                    meta["datetime"] = meta["datetime_original"] = stamp.strftime("%Y:%m:%d %H:%M:%S")

    try:
        heap(struct.unpack_from(e + "I", data, 2)[0], len(data), 0)
    except struct.error:
        pass
    return meta


def _raw_meta(raw, path: Path) -> dict:
    """Camera, lens, date and orientation of a RAW, for every format LibRaw reads.

    rawpy exposes few of these: a plain TIFF container (DNG, NEF, CR2, ...) is read with
    tifffile (IFD0 and the EXIF IFD, no pixels); a Canon CRW by its CIFF records; the others
    (CR3, ORF, RW2, RAF, MRW, ...) by the TIFF structure they embed (rawmeta.py); what is
    still missing comes from LibRaw (`raw`, an open rawpy.RawPy, or None): capture time, lens.
    """
    from station.pipeline.rawmeta import clean_fields, container_fields, libraw_fill

    meta: dict = {"source": "raw"}
    dated = False  # the file has a date tag of its own
    try:
        import tifffile

        with tifffile.TiffFile(path) as tf:
            tags = tf.pages[0].tags
            meta.update(_tiff_meta(tags, path))
            exif = tags["ExifTag"].value if "ExifTag" in tags else {}
            dated = 306 in tags or (isinstance(exif, dict) and "DateTimeOriginal" in exif)
    except Exception:
        try:  # not a TIFF container: a Canon CRW (CIFF) has its own records
            meta.update(ciff_meta(path))
        except Exception:
            pass
        if len(meta) == 1:
            try:
                fields = container_fields(path)
                dated = "datetime" in fields or "datetime_original" in fields
                meta.update(clean_fields(fields, path))
            except Exception:
                pass
        dated = dated or "datetime" in meta
    # a date tag that gave no valid date was malformed: LibRaw's reading of it is not used either
    return libraw_fill(meta, raw, date=not (dated and not meta.get("datetime")))


def _decode_raw(path: Path, half_size: bool) -> Decoded:
    rgb16, meta = decode_raw_u16(path, half_size)
    rgb = rgb16.astype(np.float32) * (1.0 / 65535.0)
    clipped = float(np.mean(np.any(rgb16 >= 65000, axis=2)))
    return Decoded(rgb=rgb, meta=meta, clipped=clipped)


def open_raw(path: Path):
    """rawpy.imread with every failure turned into a DecodeError naming the file and the reason."""
    import rawpy

    try:
        return rawpy.imread(str(path))
    except rawpy.LibRawFileUnsupportedError:
        raise DecodeError(path, "not a RAW format LibRaw supports") from None
    except rawpy.LibRawIOError:
        raise DecodeError(path, "could not read the file (truncated or I/O error)") from None
    except Exception as exc:
        raise DecodeError(path, f"LibRaw could not open it ({exc.__class__.__name__}: {exc})") from None


def decode_raw_u16(path: Path, half_size: bool = False) -> tuple[np.ndarray, dict]:
    """LibRaw's HxWx3 uint16 output (65535 = sensor white, LINEAR demosaic) and the metadata."""
    import rawpy

    raw = open_raw(path)
    with raw:
        try:
            rgb16 = raw.postprocess(
                gamma=(1, 1),
                no_auto_bright=True,
                output_bps=16,
                use_camera_wb=False,
                use_auto_wb=False,
                user_wb=[1.0, 1.0, 1.0, 1.0],
                output_color=rawpy.ColorSpace.raw,
                half_size=half_size,
                user_flip=0,  # orientation is applied by the writer, consistently for all sources
                adjust_maximum_thr=0.0,
                demosaic_algorithm=rawpy.DemosaicAlgorithm.LINEAR if not half_size else None,
            )
        except Exception as exc:
            raise DecodeError(path, f"LibRaw could not decode it ({exc.__class__.__name__}: {exc})") from None
        meta = _raw_meta(raw, path)
        meta.setdefault("orientation", {0: 1, 3: 3, 5: 8, 6: 6}.get(raw.sizes.flip, 1))
    return rgb16, meta


def _half(rgb: np.ndarray) -> np.ndarray:
    h, w = (rgb.shape[0] // 2) * 2, (rgb.shape[1] // 2) * 2
    r = rgb[:h, :w]
    return (0.25 * (r[0::2, 0::2] + r[1::2, 0::2] + r[0::2, 1::2] + r[1::2, 1::2])).astype(np.float32)


# the names the other modules use
check_file, decode_raw, raw_meta, read_tiff, read_pillow, half = (
    _check_file, _decode_raw, _raw_meta, _decode_tiff, _decode_pillow, _half)


def read_image(path: Path, kind: str, half_size: bool = False) -> Decoded:
    """A TIFF scan (taken as linear) or a PNG/JPEG (sRGB, linearised); `half_size`: 2x2 means."""
    if kind == "tiff":
        dec = _decode_tiff(path)
    elif kind in ("png", "jpeg"):
        dec = _decode_pillow(path)
    elif kind == "text":
        raise DecodeError(path, "not an image: the file holds text")
    else:
        raise DecodeError(path, "not an image")
    if half_size:
        dec.rgb = _half(dec.rgb)
    return dec


def validated(dec: Decoded, path: Path) -> Decoded:
    """Refuse a decoded image too small to be a frame; make non-finite values finite."""
    if dec.rgb.shape[0] < 8 or dec.rgb.shape[1] < 8:
        raise DecodeError(path, f"image too small ({dec.rgb.shape[1]}x{dec.rgb.shape[0]})")
    if not np.isfinite(dec.rgb).all():
        dec.rgb = np.nan_to_num(dec.rgb, nan=0.0, posinf=1.0, neginf=0.0)
    return dec
