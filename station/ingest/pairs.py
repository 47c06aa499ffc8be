"""RAW+JPEG pairs: a camera set to RAW+JPEG writes `IMG_0001.NEF` and `IMG_0001.JPG` side by
side.  The RAW wins: the camera's JPEG (or HEIF) is never inverted when a RAW of the same
stem lies in the same folder (it is left where it is, untouched, and not converted).

Used by the daemon (`station.daemon.processor`) and by `station invert` (`drop_camera_jpegs`).
"""
from __future__ import annotations

import os
from pathlib import Path

from station.pipeline.decode import RAW_EXT

CAMERA_JPEG_EXT = {".jpg", ".jpeg", ".heic", ".heif", ".hif"}


def is_camera_jpeg(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in CAMERA_JPEG_EXT


def is_raw(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in RAW_EXT


def raw_sibling(path: str | os.PathLike) -> Path | None:
    """The RAW beside a camera JPEG/HEIF: a file of the same stem with a RAW extension in the
    same folder (one still being written counts), or None."""
    p = Path(path)
    if not is_camera_jpeg(p):
        return None
    try:
        names = os.listdir(p.parent)
    except OSError:
        return None
    for name in sorted(names):
        q = p.parent / name
        if q.stem == p.stem and is_raw(q) and not name.startswith("."):
            return q
    return None


def jpeg_siblings(path: str | os.PathLike) -> list[Path]:
    """The camera JPEGs/HEIFs beside a RAW (same stem, same folder)."""
    p = Path(path)
    if not is_raw(p):
        return []
    try:
        names = os.listdir(p.parent)
    except OSError:
        return []
    return [p.parent / n for n in sorted(names) if Path(n).stem == p.stem and is_camera_jpeg(n)
            and not n.startswith(".")]


def pair_message(jpeg: str | os.PathLike, raw: str | os.PathLike, what: str = "not inverted (the RAW is)") -> str:
    return f"{jpeg}: camera JPEG beside its RAW {Path(raw).name}: {what}"


def drop_camera_jpegs(files: list, say=None) -> list:
    """The input files less every camera JPEG/HEIF whose RAW (same stem, same folder) is among
    them; `say(line)` is called once per file dropped."""
    raws = {}
    for f in files:
        p = Path(f)
        if is_raw(p):
            raws.setdefault((p.parent.resolve(), p.stem), p)
    out = []
    for f in files:
        p = Path(f)
        raw = raws.get((p.parent.resolve(), p.stem)) if is_camera_jpeg(p) else None
        if raw is None:
            out.append(f)
        elif say is not None:
            say(pair_message(p, raw))
    return out
