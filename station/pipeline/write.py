"""Write positives atomically: a half-written file is never visible.

Every writer encodes to a dot-temporary in the destination folder, fsyncs
it, then either links it to the final name (fails if that name exists: no
overwrite unless asked) or renames it over the final name (overwrite=True).
Outputs carry an ICC profile (sRGB, or the TIFF's --colour-space: colourspace.py), the RAW's
orientation and capture metadata (camera, lens, date) as EXIF, and the film's story and the
station's rendering as XMP (metadata.py; field list in docs/METADATA.md).
"""
from __future__ import annotations

import errno
import io
import json
import os
import re
from pathlib import Path

import numpy as np

from station.errors import OutputError


from station.pipeline.colourspace import srgb_icc  # noqa: E402,F401  (re-exported)
from station.pipeline.metadata import description  # noqa: E402,F401  (re-exported)


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


def _link_or_rename(tmp: Path, path: Path, overwrite: bool) -> None:
    """Publish the complete file `tmp` as `path`: rename over it (overwrite) or link, which
    fails when `path` exists (never clobbers)."""
    if overwrite:
        os.replace(tmp, path)
        return
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


def _fsync_dir(folder: Path) -> None:
    try:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


# The writers' one test seam (None in production): `fault(path, data_writer) -> data_writer`
# may wrap what is written (fail with an OSError, die half way).  Set only by the daemon's
# worker when a STATION_FAULT_* test variable names the frame (station/daemon/worker.py).
_fault = None


def set_fault(fault) -> None:
    """Install (or with None remove) the test seam `fault(path, data_writer) -> data_writer`."""
    global _fault
    _fault = fault


def atomic_write(path: Path, data_writer, overwrite: bool = False) -> Path:
    """Call data_writer(fileobj) into a temporary, fsync, then publish as `path`."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputError(path, "already exists (not overwriting; use --overwrite)")
    if _fault is not None:
        data_writer = _fault(path, data_writer)
    tmp = path.with_name(f".{path.name.lstrip('.')}.{os.getpid()}.tmp")  # (a staged .part is hidden already)
    try:
        with open(tmp, "w+b") as fh:  # readable: the TIFF writer links its EXIF IFD in afterwards
            data_writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        _link_or_rename(tmp, path, overwrite)
        _fsync_dir(path.parent)
    except OSError as exc:
        raise OutputError(path, _reason(exc, path)) from None
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
    return path


_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.(?:tmp|part)$")


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the dot-temporaries (`.NAME.PID.tmp` / `.part`) that a killed writer left in
    `folder`: only those whose process is gone.  Returns what was removed."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        m = _TEMP_NAME.match(e.name)
        if not m or not e.is_file(follow_symlinks=False):
            continue
        pid = int(m["pid"])
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue  # alive: its writer is still at work
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        try:
            os.unlink(e.path)
            removed.append(Path(e.path))
        except OSError:
            pass
    return removed


def publish_frame(items: dict, overwrite: bool = False) -> dict:
    """Write a frame's outputs together: {kind: (path, data_writer)} -> {kind: path}.

    Every output is first written complete (fsynced) to a dot-temporary beside it; only
    when all are written are they published (linked, or renamed over with overwrite).
    A full disk, an encoder error or Ctrl-C while writing leaves no output of the frame.
    Without overwrite, an existing output is refused before anything is written.  If a
    publish fails half way, the outputs already published by this call are taken back.
    """
    items = {k: (Path(p), w) for k, (p, w) in items.items()}
    if not overwrite:
        for path, _ in items.values():
            if path.exists():
                raise OutputError(path, "already exists (not overwriting; use --overwrite)")
    staged: dict[str, tuple[Path, Path]] = {}
    published: list[Path] = []
    try:
        for kind, (path, writer) in items.items():
            part = path.with_name(f".{path.name}.{os.getpid()}.part")
            try:
                atomic_write(part, writer, overwrite=True)
            except OutputError as exc:
                raise OutputError(path, exc.reason) from None
            staged[kind] = (part, path)
        try:
            for part, path in staged.values():
                _link_or_rename(part, path, overwrite)
                published.append(path)
        except BaseException as exc:  # an error, or Ctrl-C between two publishes
            if not overwrite:
                for p in published:  # take back this call's half of the frame
                    p.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise OutputError(path, _reason(exc, path)) from None
            raise
        for folder in {p.parent for p in published}:
            _fsync_dir(folder)
    finally:
        for part, _ in staged.values():
            try:
                part.unlink()
            except FileNotFoundError:
                pass
    return {kind: path for kind, (_, path) in staged.items()}


def _to_uint(img: np.ndarray, bits: int) -> np.ndarray:
    scale = 65535.0 if bits == 16 else 255.0
    out = np.clip(img, 0.0, 1.0) * scale + 0.5
    return out.astype(np.uint16 if bits == 16 else np.uint8)


def _ascii(value) -> str:
    """TIFF ASCII tags take 7-bit text only: a camera or lens name with other characters
    (or a corrupt one) is carried over with those characters replaced, never failing the master."""
    text = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in str(value))
    return text.strip() or "?"


def _tiff_writer(data: np.ndarray, meta: dict, space: str = "srgb"):
    """A writer of `data` (uint16, already in colour space `space`) as a TIFF with that space's
    ICC profile, EXIF (IFD0 and the EXIF IFD) and XMP."""
    import tifffile

    from station.pipeline.colourspace import icc_profile

    from station.pipeline.metadata import EXIF_PLACEHOLDER, tiff_exif_ifd, xmp_packet

    extratags = [(274, "H", 1, int(meta.get("orientation", 1) or 1), True)]
    for tag, key in ((271, "make"), (272, "model"), (306, "datetime")):
        if meta.get(key):
            extratags.append((tag, "s", 0, _ascii(meta[key]), True))
    xmp = xmp_packet(meta, space=space)
    extratags.append((700, "B", len(xmp), xmp, True))  # XMLPacket
    # ExifIFD (34665), which tifffile does not write: a placeholder entry that tiff_exif_ifd
    # renames and points at the EXIF IFD it appends (no tag lies between, so the order holds)
    extratags.append((EXIF_PLACEHOLDER, "I", 1, 0, True))

    def writer(fh):
        tifffile.imwrite(
            fh, data, photometric="rgb", iccprofile=icc_profile(space), description=description(meta),
            extratags=extratags, software="station", metadata=None,
        )
        if fh.readable() and fh.seekable():
            tiff_exif_ifd(fh, meta, space)

    return writer


def write_tiff16(path: Path, img: np.ndarray, meta: dict | None = None, overwrite: bool = False) -> Path:
    """HxWx3 sRGB (float in [0,1], or uint16 already) → 16-bit sRGB TIFF with ICC profile and metadata."""
    data = img if img.dtype == np.uint16 else _to_uint(img, 16)
    return atomic_write(path, _tiff_writer(data, meta or {}), overwrite)


def output_source(path: Path) -> str | None:
    """The input file name a station output was made from (its station_source), or None
    for a file the station did not write (or cannot read)."""
    return (output_description(path) or {}).get("station_source")


def output_print(path: Path) -> dict | None:
    """The print a station output was made with (its station_print), or None (as inverted,
    not the station's, or unreadable: e.g. being replaced)."""
    p = (output_description(path) or {}).get("station_print")
    return p if isinstance(p, dict) else None


def output_description(path: Path) -> dict | None:
    """The JSON description a station output carries (see `description`), or None for a
    file the station did not write (or cannot read)."""
    path = Path(path)
    text = None
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tf:
                tags = tf.pages[0].tags
                text = tags[270].value if 270 in tags else None
        else:
            from PIL import Image

            with Image.open(path) as im:
                text = im.getexif().get(270)
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        d = json.loads(text) if text else None
        return d if isinstance(d, dict) else None
    except Exception:
        return None


def encode_jpeg(img: np.ndarray, meta: dict | None = None, quality: int = 90, space: str = "srgb") -> bytes:
    """HxWx3 sRGB float in [0,1] → JPEG bytes in `space` (colourspace.py), with its ICC
    profile, EXIF and XMP."""
    from PIL import Image

    from station.pipeline.colourspace import convert, icc_profile
    from station.pipeline.metadata import jpeg_exif, xmp_packet

    meta = meta or {}
    buf = io.BytesIO()
    h, w = img.shape[:2]
    Image.fromarray(_to_uint(convert(img, space), 8), "RGB").save(
        buf, "JPEG", quality=quality, icc_profile=icc_profile(space), exif=jpeg_exif(meta, space, (w, h)), optimize=False,
        xmp=xmp_packet(meta, space=space),
    )
    return buf.getvalue()


def write_jpeg(path: Path, img: np.ndarray, meta: dict | None = None, overwrite: bool = False, quality: int = 90) -> Path:
    """HxWx3 sRGB float in [0,1] → 8-bit JPEG with ICC profile and EXIF."""
    data = encode_jpeg(img, meta, quality)
    return atomic_write(path, lambda fh: fh.write(data), overwrite)


MIN_TONAL_RANGE = 0.02  # of full scale: below this (about 5 of 255 levels) a positive is one flat tone


def picture_problem(pos: np.ndarray) -> str | None:
    """None when the positive holds a picture; else the one-line reason it does not
    (one flat tone: a blank or unreadable input, or data the decoder misread).  The central
    half is checked on its own too: a blank frame (unexposed film) inverts to one flat black
    whose only tones are the sprocket holes and holder edges around it."""
    h, w = pos.shape[:2]
    step = max(1, int(np.sqrt(h * w / 250_000)))
    scale = 1.0 / 65535.0 if pos.dtype == np.uint16 else 1.0

    def spread_of(a):
        s = a[::step, ::step].reshape(-1, pos.shape[2]).astype(np.float32) * scale
        lo, hi = np.percentile(s, [0.5, 99.5], axis=0)
        return float(np.max(hi - lo)), float(np.mean(s))

    spread, level = spread_of(pos)
    if spread < MIN_TONAL_RANGE:
        return (f"no picture in the positive: one flat tone (tonal range {100 * spread:.1f} % of full scale, "
                f"mean {100 * level:.0f} %); the input holds no usable image (a blank frame, or data the decoder misread)")
    if h >= 8 and w >= 8:
        spread, level = spread_of(pos[h // 4: h - h // 4, w // 4: w - w // 4])
        if spread < MIN_TONAL_RANGE:
            return (f"no picture in the positive: its centre is one flat tone (tonal range {100 * spread:.1f} % of "
                    f"full scale, mean {100 * level:.0f} %), only the film's edges show; a blank frame (give it as "
                    "the roll's blank: --base, station roll calibrate), an unexposed frame, or a far too dark blank")
    return None


def write_positive(outputs: dict, pos: np.ndarray, meta: dict, *, overwrite: bool = False, quality: int = 90,
                   small=None, src=None, linear=None) -> dict:
    """A frame's outputs {"tiff"|"jpeg"|"preview"|"linear": path} from its positive (HxWx3 sRGB,
    float in [0,1] or uint16), together (publish_frame).  `small`: a callable giving the preview
    image (float) when one is asked for; `linear`: one giving the linear scan (uint16,
    linearscan.py) for "linear".  The TIFF is written in meta's station_colour_space, the JPEG
    in its station_jpeg_colour_space (both sRGB by default; the preview always).  A positive
    with no picture in it is refused (DecodeError naming `src`): success is never reported for one."""
    from station.errors import DecodeError
    from station.pipeline.colourspace import convert

    problem = picture_problem(pos)
    if problem:
        raise DecodeError(src, problem)
    items = {}
    for kind, path in outputs.items():
        if kind == "tiff":
            space = meta.get("station_colour_space") or "srgb"
            data = pos if pos.dtype == np.uint16 else _to_uint(pos, 16)
            items[kind] = (path, _tiff_writer(convert(data, space), meta, space))
        elif kind == "jpeg":
            img = pos.astype(np.float32) * (1.0 / 65535.0) if pos.dtype == np.uint16 else pos
            jpeg = encode_jpeg(img, meta, quality, meta.get("station_jpeg_colour_space") or "srgb")
            items[kind] = (path, lambda fh, b=jpeg: fh.write(b))
        elif kind == "preview":
            prev = encode_jpeg(small(), meta, quality)
            items[kind] = (path, lambda fh, b=prev: fh.write(b))
        elif kind == "linear":
            lin_meta = {**meta, "station_content": "linear scan"}  # (keys kept: `station invert` resumes by them)
            items[kind] = (path, _tiff_writer(linear(), lin_meta, "linear"))
        else:
            raise ValueError(f"unknown output kind {kind!r}")
    return publish_frame(items, overwrite)
