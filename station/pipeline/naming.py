"""Output file names from a pattern: `station invert --name "{roll}-{frame:02d}"`.

Tokens (str.format syntax, so `{frame:03d}` pads):

    {name}       the input's file name without its extension (the default pattern)
    {roll}       the roll's name (--roll-name; else the input's folder name)
    {frame}      the frame number (an integer; --frame-numbers: from the input's name, "07.NEF",
                 "roll12-07.NEF", or its place among the inputs)
    {stock}      the film stock (--stock), made file-name safe ("Kodak_Portra_400")
    {date}       the scan date, YYYY-MM-DD (the RAW's DateTimeOriginal, else its file date)
    {shot_date}  the date the film was shot (--shot-date), as given

A pattern may hold "/" (sub-folders of --out); every part is made safe (no "..", no hidden
files, no characters outside [A-Za-z0-9._+-]).  A token with no value for an input is a
failure of that input, naming the token; two inputs that would get one name are refused.
"""
from __future__ import annotations

import datetime as _dt
import os
import re
import string
import unicodedata
from pathlib import Path

TOKENS = ("name", "roll", "frame", "stock", "date", "shot_date")
DEFAULT_PATTERN = "{name}"
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_FRAME = re.compile(r"(?:^|.*[-_ ])(\d{1,3})")


class NamingError(ValueError):
    """A pattern that cannot be used (usage), or a token with no value for one input."""


def safe_part(text: str) -> str:
    """One path component made safe: accents and controls dropped, other characters as "_",
    no leading dots, no ".."."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] not in "CM")
    text = _UNSAFE.sub("_", text)
    while ".." in text:
        text = text.replace("..", ".")
    return text.lstrip(".-_")[:120]


def check_pattern(pattern: str) -> list[str]:
    """The tokens `pattern` uses; NamingError (one line) for an unknown token or bad syntax."""
    used = []
    try:
        for _lit, field, spec, conv in string.Formatter().parse(pattern):
            if field is None:
                continue
            if field not in TOKENS:
                raise NamingError(f"--name {pattern!r}: unknown token {{{field}}} (tokens: "
                                  + ", ".join("{" + t + "}" for t in TOKENS) + ")")
            used.append(field)
    except ValueError as exc:
        if isinstance(exc, NamingError):
            raise
        raise NamingError(f"--name {pattern!r}: {exc}") from None
    if not used:
        raise NamingError(f"--name {pattern!r}: has no token, so every input would get the same name")
    probe = {"name": "x", "roll": "r", "frame": 1, "stock": "s", "date": "2000-01-01", "shot_date": "2000"}
    try:
        pattern.format(**probe)
    except (ValueError, IndexError, KeyError) as exc:
        raise NamingError(f"--name {pattern!r}: {exc}") from None
    return used


def frame_from_name(stem: str) -> int | None:
    """The frame number a file name gives: the whole name or its last part after "-", "_" or
    a space, when that is 1 to 3 digits ("07" -> 7, "roll12-07" -> 7, "roll12_E4 12" -> 12).
    A camera's counter ("DSC_0042", "IMG_1234") or a model name ("NIKON_D1") is no frame
    number: None."""
    m = _FRAME.fullmatch(stem)
    return int(m.group(1)) if m else None


def scan_date(meta: dict, src: Path) -> str | None:
    """YYYY-MM-DD of the scan: the RAW's capture date, else the input file's modification date."""
    d = meta.get("datetime_original") or meta.get("datetime")
    if d and len(d) >= 10:
        return d[:10].replace(":", "-")
    try:
        return _dt.datetime.fromtimestamp(os.stat(src).st_mtime).strftime("%Y-%m-%d")
    except OSError:
        return None


def render(pattern: str, values: dict, src: Path) -> Path:
    """The relative output stem (no extension) of one input; NamingError naming the token
    that has no value for it."""
    used = check_pattern(pattern)
    missing = [t for t in used if values.get(t) in (None, "")]
    if missing:
        why = {"frame": "no frame number (none in its name; see --frame-numbers)",
               "roll": "no roll name (--roll-name)", "stock": "no film stock (--stock)",
               "shot_date": "no shot date (--shot-date)", "date": "no scan date"}
        raise NamingError(f"--name: {{{missing[0]}}}: {why.get(missing[0], 'no value')}")
    vals = dict(values)
    for key in ("name", "roll", "stock", "shot_date", "date"):
        if vals.get(key) is not None:
            vals[key] = safe_part(vals[key]) or "_"
    text = pattern.format(**vals)
    parts = [safe_part(p) for p in text.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    parts = [p for p in parts if p]
    if not parts:
        raise NamingError(f"--name {pattern!r}: gives an empty name for {src.name}")
    return Path(*parts)
