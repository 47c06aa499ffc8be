"""What a positive tells about itself: the film's story (stock, type, roll, frame, the date
it was shot), the scan (camera, lens, date) and the station's rendering, as XMP and EXIF.

The field list is docs/METADATA.md.  `output_meta` (outputs.py) collects the flat `meta`
dict; the writers (write.py) put it into the files through `tiff_exif_ifd`, `jpeg_exif`
and `xmp_packet`; `station invert --xmp-sidecar` writes the XMP alone (commands/output_options.py).
The ImageDescription JSON the station has always written (write.description) carries the
same keys; `station invert` reads it back to resume.
"""
from __future__ import annotations

import datetime as _dt
import json
import re
import struct
from pathlib import Path
from xml.sax.saxutils import escape

NS_STATION = "http://station.invalid/ns/xmp/1.0/"  # .invalid: reserved, owned by no one
EXIF_PLACEHOLDER = 34666  # written by tifffile in ExifIFD's (34665) place, renamed by tiff_exif_ifd
STORY_KEYS = ("film_stock", "film_type", "roll", "frame", "shot_date")
FILM_TYPES = ("colour", "bw", "slide")
FILM_TYPE_TEXT = {"colour": "colour negative (C-41)", "bw": "black-and-white negative", "slide": "colour slide (E-6)"}

FIRST_PHOTO_YEAR = 1839  # a film shot before photography was announced is a typing error
_SHOT_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


class MetadataError(ValueError):
    """A user-given metadata value that cannot be used (one line)."""


def description(meta: dict) -> str:
    """The JSON the outputs carry as ImageDescription (TIFF) and EXIF ImageDescription (JPEG):
    the RAW's metadata and how the station made the positive (station_source: the input's
    file name; station_print when the print was adjusted)."""
    return json.dumps({k: v for k, v in meta.items() if isinstance(v, (str, int, float, list))
                       or (k == "station_print" and isinstance(v, dict))}, sort_keys=True)


def check_shot_date(text: str | None) -> str | None:
    """A film's shot date as given (YYYY, YYYY-MM or YYYY-MM-DD, a real date), or None;
    MetadataError for anything else."""
    if text is None or str(text).strip() == "":
        return None
    text = str(text).strip()
    m = _SHOT_DATE.fullmatch(text)
    try:
        if not m:
            raise ValueError
        y, mo, d = (int(g) if g else 1 for g in m.groups())
        _dt.date(y, mo, d)
    except ValueError:
        raise MetadataError(f"shot date {text!r} is not a date: give YYYY, YYYY-MM or YYYY-MM-DD") from None
    if y < FIRST_PHOTO_YEAR:
        raise MetadataError(f"shot date {text!r} is before photography ({FIRST_PHOTO_YEAR}): a typing error?")
    if text > _dt.date.today().isoformat()[:len(text)]:  # same precision: this month is fine on its 1st day
        raise MetadataError(f"shot date {text!r} is in the future (today is {_dt.date.today().isoformat()})")
    return text


def check_text(name: str, text: str | None, limit: int = 200) -> str | None:
    """A free-text field (film stock, roll name): one printable line, or MetadataError."""
    if text is None:
        return None
    text = str(text).strip()
    if not text:
        return None
    if len(text) > limit or any(not ch.isprintable() for ch in text):
        raise MetadataError(f"{name} {text[:40]!r}: one printable line of at most {limit} characters")
    return text


def model_id(inverter) -> str | None:
    """The inverter's model: its file name and the first 12 hex digits of a SHA-1 of its
    weights (the LUT cache's key), e.g. "default.npz@3f2a9c...".  None for classic."""
    if inverter is None:
        return None
    try:
        from station.pipeline.lutinvert import model_key

        inner = getattr(inverter, "direct", inverter)
        kind, key = model_key(inner)
        if not isinstance(key, str):
            return None
        path = getattr(inner, "path", None)
        return f"{Path(path).name if path else kind}@{key[:12]}"
    except Exception:
        return None


def _iso(exif_date: str | None) -> str | None:
    """EXIF "YYYY:MM:DD HH:MM:SS" -> XMP "YYYY-MM-DDTHH:MM:SS"."""
    if not exif_date:
        return None
    d, _, t = exif_date.partition(" ")
    return d.replace(":", "-") + ("T" + t if t else "")


def film_type_of(meta: dict) -> str | None:
    """The film type: the one given (--film, the roll's `film:`), else the one the frame was
    rendered as when that is not colour (station_film: bw or slide, given or detected)."""
    return meta.get("film_type") or meta.get("station_film")


def story_line(meta: dict) -> str | None:
    """One readable line (EXIF UserComment): "Kodak Portra 400, colour negative (C-41), roll
    R, frame 7, shot 1998-07"."""
    parts = []
    if meta.get("film_stock"):
        parts.append(str(meta["film_stock"]))
    film = film_type_of(meta)
    if film:
        parts.append(FILM_TYPE_TEXT.get(film, str(film)))
    if meta.get("roll"):
        parts.append(f"roll {meta['roll']}")
    if meta.get("frame") is not None:
        parts.append(f"frame {meta['frame']}")
    if meta.get("shot_date"):
        parts.append(f"shot {meta['shot_date']}")
    return ", ".join(parts) or None


def xmp_fields(meta: dict, sidecar: bool = False, space: str = "srgb") -> list[tuple[str, str]]:
    """(qualified name, text) pairs of the XMP packet, in a fixed order (docs/METADATA.md)."""
    out: list[tuple[str, str]] = [("xmp:CreatorTool", "station")]
    scan = _iso(meta.get("datetime_original") or meta.get("datetime"))
    if scan:
        out.append(("xmp:CreateDate", scan))
    if meta.get("shot_date"):
        out.append(("photoshop:DateCreated", str(meta["shot_date"])))
    story = {**meta, "film_type": film_type_of(meta)}
    for key, name in (("film_stock", "FilmStock"), ("film_type", "FilmType"), ("roll", "Roll"),
                      ("frame", "Frame"), ("shot_date", "ShotDate")):
        if story.get(key) not in (None, ""):
            out.append((f"station:{name}", str(story[key])))
    if scan:
        out.append(("station:ScanDate", scan))
    if meta.get("station_source"):
        out.append(("station:Source", str(meta["station_source"])))
    if sidecar:
        return out
    linear = meta.get("station_content") == "linear scan"
    for key, name in (("station_method", "Method"), ("station_model", "ModelId"),
                      ("station_rendering", "Rendering"), ("station_base_source", "BaseSource"),
                      ("station_flatfield", "FlatField"), ("station_content", "Content")):
        if meta.get(key) not in (None, "") and not (linear and name in ("Method", "ModelId")):
            out.append((f"station:{name}", str(meta[key])))
    if space not in ("srgb", "linear"):  # this file's own (the TIFF's and the JPEG's may differ)
        out.append(("station:ColourSpace", space))
    if isinstance(meta.get("station_print"), dict) and not linear:
        out.append(("station:Print", json.dumps(meta["station_print"], sort_keys=True)))
    return out


def xmp_packet(meta: dict, sidecar: bool = False, space: str = "srgb") -> bytes:
    """The XMP packet (UTF-8) for a TIFF's XMLPacket tag, a JPEG's APP1, or a sidecar."""
    def text_of(value: str) -> str:  # XML 1.0 holds no control characters (a file name may)
        return escape("".join(ch if ch >= " " else "?" for ch in value), {'"': "&quot;"})

    attrs = "".join(f'\n    {name}="{text_of(value)}"' for name, value in xmp_fields(meta, sidecar, space))
    text = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="station">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
        '    xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"\n'
        f'    xmlns:station="{NS_STATION}"{attrs}/>\n'
        ' </rdf:RDF>\n'
        '</x:xmpmeta>\n'
    )
    if not sidecar:  # in a file: the packet wrapper, with room for an editor to add in place (a sidecar is bare XML)
        text = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n' + text + " " * 512 + "\n" + '<?xpacket end="w"?>'
    return text.encode("utf-8")


def read_xmp(data: bytes) -> dict:
    """{local name: text} of the station/xmp/photoshop properties of a packet (for tests, resume)."""
    import xml.etree.ElementTree as ET

    text = data.decode("utf-8", "replace")
    start, end = text.find("<x:xmpmeta"), text.find("</x:xmpmeta>")
    if start < 0 or end < 0:
        return {}
    root = ET.fromstring(text[start:end + len("</x:xmpmeta>")])
    out = {}
    for el in root.iter("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}Description"):
        for k, v in el.attrib.items():
            out[k.rsplit("}", 1)[-1]] = v
    return out


def _user_comment(text: str, prefix: bytes = b"II") -> bytes:
    """EXIF UserComment: ASCII when it is, else UNICODE (UCS-2 in the file's byte order), so a
    stock or roll name with accents or dashes is kept, not turned into "?"."""
    if text.isascii():
        return b"ASCII\x00\x00\x00" + text.encode("ascii")
    return b"UNICODE\x00" + text.encode("utf-16-le" if prefix == b"II" else "utf-16-be", "replace")


def exif_sub_ifd(meta: dict, space: str = "srgb", prefix: bytes = b"II") -> dict:
    """{tag: (type, value)} of the EXIF IFD: DateTimeOriginal, DateTimeDigitized (the scan:
    the RAW's capture), LensModel, UserComment (the story in one line), ExifVersion,
    FlashpixVersion, ColorSpace (1 = sRGB, 0xFFFF = another: the ICC profile says which)."""
    ifd: dict = {0x9000: (7, b"0232"), 0xA000: (7, b"0100"), 0xA001: (3, 1 if space == "srgb" else 0xFFFF)}
    if meta.get("datetime_original"):
        ifd[0x9003] = (2, str(meta["datetime_original"]))
        ifd[0x9004] = (2, str(meta["datetime_original"]))
    if meta.get("lens"):
        ifd[0xA434] = (2, _ascii(meta["lens"]))
    line = story_line(meta)
    if line:
        ifd[0x9286] = (7, _user_comment(line, prefix))
    return ifd


def _ascii(value) -> str:
    text = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in str(value))
    return text.strip() or "?"


def tiff_exif_ifd(fh, meta: dict, space: str = "srgb") -> None:
    """After tifffile wrote a TIFF to `fh` (opened w+b) with a placeholder tag
    (EXIF_PLACEHOLDER = 0; tifffile refuses to write 34665 itself): append the EXIF IFD (`exif_sub_ifd`, serialised by Pillow's TIFF directory
    writer) at the end of the file and point the tag at it.  Classic TIFF only (a BigTIFF,
    over 4 GB, keeps its IFD0 tags and XMP)."""
    fh.flush()
    fh.seek(0)
    head = fh.read(8)
    if len(head) < 8 or head[:2] not in (b"II", b"MM"):
        return
    order = "<" if head[:2] == b"II" else ">"
    if struct.unpack_from(order + "H", head, 2)[0] != 42:
        return
    ifd0 = struct.unpack_from(order + "I", head, 4)[0]
    fh.seek(ifd0)
    count = struct.unpack(order + "H", fh.read(2))[0]
    entries = fh.read(12 * count)
    slot = None
    for i in range(count):
        if struct.unpack_from(order + "H", entries, 12 * i)[0] == EXIF_PLACEHOLDER:
            slot = ifd0 + 2 + 12 * i
            break
    if slot is None:
        return
    fh.seek(0, 2)
    end = fh.tell()
    if end % 2:
        fh.write(b"\0")
        end += 1
    fh.write(_ifd_bytes(head[:2], exif_sub_ifd(meta, space, head[:2]), end))
    fh.seek(slot)
    fh.write(struct.pack(order + "HHII", 34665, 4, 1, end))
    fh.seek(0, 2)


def _ifd_bytes(prefix: bytes, entries: dict, offset: int) -> bytes:
    """One TIFF directory (Pillow's writer) of {tag: (type, value)}, placed at `offset`."""
    from PIL.TiffImagePlugin import ImageFileDirectory_v2

    ifd = ImageFileDirectory_v2(prefix=prefix)
    for tag, (typ, value) in sorted(entries.items()):
        ifd[tag] = value
        ifd.tagtype[tag] = typ
    return ifd.tobytes(offset)


def jpeg_exif(meta: dict, space: str = "srgb", size: tuple[int, int] | None = None) -> bytes:
    """The APP1 EXIF of a JPEG ("Exif\\0\\0" + a little-endian TIFF): IFD0 (orientation, make,
    model, DateTime, software, resolution, ImageDescription = the station's JSON) and the
    EXIF IFD (`exif_sub_ifd`, with the JPEG's components and size)."""
    ifd0: dict = {274: (3, int(meta.get("orientation", 1) or 1)), 305: (2, "station"),
                  282: (5, 72), 283: (5, 72), 296: (3, 2), 531: (3, 1)}
    for tag, key in ((271, "make"), (272, "model"), (306, "datetime")):
        if meta.get(key):
            ifd0[tag] = (2, _ascii(meta[key]))
    if any(k.startswith("station_") or k in STORY_KEYS for k in meta):
        ifd0[270] = (2, description(meta))
    sub = exif_sub_ifd(meta, space)
    sub[0x9101] = (7, b"\x01\x02\x03\x00")
    if size is not None:
        sub[0xA002] = (4, int(size[0]))
        sub[0xA003] = (4, int(size[1]))
    ifd0[34665] = (4, 0)
    first = _ifd_bytes(b"II", ifd0, 8)
    ifd0[34665] = (4, 8 + len(first))
    head = b"II*\x00" + struct.pack("<I", 8)
    return b"Exif\x00\x00" + head + _ifd_bytes(b"II", ifd0, 8) + _ifd_bytes(b"II", sub, 8 + len(first))


def sidecar_path(out_dir: Path, stem: str) -> Path:
    return Path(out_dir) / f"{stem}.xmp"


def sidecar_source(path: Path) -> str | None:
    """The input name a station sidecar was written for, or None (not ours, unreadable)."""
    try:
        d = read_xmp(Path(path).read_bytes())
    except Exception:
        return None
    return d.get("Source") if d.get("CreatorTool") == "station" else None
