"""File names and file types for downloaded camera files.

Camera-supplied names are data from a device, not paths: `safe_name` strips
directories, `..`, control characters and anything outside a conservative
character set.  The file type is decided from the first bytes of the file
(`sniff`), never from the camera's extension.  `link_no_clobber` puts a
finished temporary file in place under a name that does not exist yet.
"""
from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from station.fsutil import rename_noreplace


@dataclass(frozen=True)
class FileKind:
    kind: str  # "raw", "jpeg", "tiff", "heif", "unknown"
    ext: str  # extension with the dot, lower case, e.g. ".dng"

    @property
    def is_raw(self) -> bool:
        return self.kind == "raw"


def _ifd0_tags(data: bytes) -> set[int]:
    """Tag numbers of a TIFF's first IFD (empty set if it cannot be read)."""
    import struct

    try:
        bo = "<" if data[:2] == b"II" else ">"
        (off,) = struct.unpack_from(bo + "I", data, 4)
        (n,) = struct.unpack_from(bo + "H", data, off)
        if n > 4096:
            return set()
        return {struct.unpack_from(bo + "H", data, off + 2 + 12 * i)[0] for i in range(n)}
    except struct.error:
        return set()


_TIFF_RAW_EXTS = {".nef", ".nrw", ".arw", ".sr2", ".srf", ".pef", ".dng", ".erf", ".3fr", ".iiq", ".mos", ".raw", ".orf", ".rw2"}


def _tiff_kind(data: bytes, camera_ext: str) -> FileKind:
    # TIFF-based RAWs (DNG, NEF, ARW, PEF, ...) all start "II*\0" / "MM\0*".
    tags = _ifd0_tags(data)
    if 50706 in tags:  # DNGVersion: every DNG has it in IFD0
        return FileKind("raw", ".dng")
    if camera_ext in _TIFF_RAW_EXTS or 33422 in tags:  # CFAPattern in IFD0: a raw mosaic
        return FileKind("raw", camera_ext if camera_ext in _TIFF_RAW_EXTS else ".tif")
    return FileKind("tiff", ".tif")


def sniff(head: bytes, camera_name: str = "") -> FileKind:
    """The file's type from its content (pass the whole file for TIFF-based
    formats: the first IFD may lie anywhere).

    The camera's name is used only to pick among TIFF-based RAW extensions,
    whose magic bytes are identical."""
    camera_ext = os.path.splitext(camera_name)[1].lower()
    if head.startswith(b"\xff\xd8\xff"):
        return FileKind("jpeg", ".jpg")
    if head[:8] == b"II*\x00\x10\x00\x00\x00" and head[8:10] == b"CR":
        return FileKind("raw", ".cr2")
    if head[4:12] == b"ftypcrx ":
        return FileKind("raw", ".cr3")
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"hevc"):
        return FileKind("heif", ".heif")
    if head.startswith(b"FUJIFILMCCD-RAW"):
        return FileKind("raw", ".raf")
    if head[:4] in (b"IIRO", b"IIRS", b"MMOR"):
        return FileKind("raw", ".orf")
    if head[:4] == b"IIU\x00":
        return FileKind("raw", ".rw2")
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff_kind(head, camera_ext)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return FileKind("png", ".png")
    return FileKind("unknown", ".bin")


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def safe_name(name: str, default: str = "frame") -> str:
    """A camera-supplied file name made safe to use as one path component.

    Drops any directory part (both separators), control characters, `..`,
    leading dots (no hidden files), and characters outside [A-Za-z0-9._+-];
    caps the length.  Never returns an empty string, '.', or '..'."""
    name = str(name).replace("\\", "/").split("/")[-1]
    name = unicodedata.normalize("NFKD", name)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] not in "CM")  # controls, accents
    name = _UNSAFE.sub("_", name)
    while ".." in name:
        name = name.replace("..", ".")
    name = name.lstrip(".-_")
    stem, ext = os.path.splitext(name)
    stem, ext = stem[:100], ext[:10]
    name = stem + ext if stem else ""
    return name or default


def safe_relpath(rel: str) -> Path:
    """A relative path built from a naming pattern: each part made safe."""
    parts = [p for p in str(rel).replace("\\", "/").split("/") if p not in ("", ".", "..")]
    if not parts:
        raise ValueError(f"empty path from {rel!r}")
    return Path(*[safe_name(p) for p in parts])


def link_no_clobber(tmp: Path, final: Path, max_tries: int = 10000) -> Path:
    """Move `tmp` to `final` (or `stem-1.ext`, `stem-2.ext`, ... if taken).

    Uses renameat2(RENAME_NOREPLACE), or link()+unlink() where that is
    missing, so an existing file is never replaced, even by a racing writer; falls back to an exclusive-create check where hard links
    are not supported.  Returns the path used; fsyncs the directory."""
    final = Path(final)
    stem, ext = final.stem, final.suffix
    for i in range(max_tries):
        cand = final if i == 0 else final.with_name(f"{stem}-{i}{ext}")
        try:
            # renameat2(RENAME_NOREPLACE): atomic, never clobbers, and a folder
            # watcher sees one "moved in" event of a complete file.
            if rename_noreplace(tmp, cand):
                _fsync_dir(cand.parent)
                return cand
        except FileExistsError:
            continue
        try:
            os.link(tmp, cand)
        except FileExistsError:
            continue
        except OSError:
            # No hard links here (some network/FAT filesystems): reserve the
            # name exclusively, then rename over our own reservation.
            try:
                fd = os.open(cand, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                continue
            os.close(fd)
            os.replace(tmp, cand)
            _fsync_dir(cand.parent)
            return cand
        os.unlink(tmp)
        _fsync_dir(cand.parent)
        return cand
    raise FileExistsError(f"no free name for {final}")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic_no_clobber(data: bytes, final: Path) -> Path:
    """Write bytes to a dot-temporary beside `final`, fsync, then link it in
    under a free name.  Returns the final path."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.part")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    try:
        return link_no_clobber(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
