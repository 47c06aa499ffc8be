"""`station invert`'s output choices and the film's story, in one block of flags.

    --stock, --roll-name, --shot-date, --frame-numbers   what the outputs say (docs/METADATA.md)
    --name, --colour-space, --jpeg-colour-space, --jpeg-quality, --xmp-sidecar   what is written

`add_output_arguments(parser)` adds them; `OutputChoices.from_args(args)` checks them (a bad
value: StationUsage, one line) and gives, per input, its output stem (`stem_for`) and what
its outputs carry (`extra_meta_for`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class StationUsage(ValueError):
    """A flag's value cannot be used: one line, exit status 2."""


def add_output_arguments(p) -> None:
    from station.pipeline.colourspace import CHOICES

    g = p.add_argument_group("film and output choices (docs/METADATA.md)")
    g.add_argument("--stock", metavar="TEXT", help='film stock, written into the outputs, e.g. "Kodak Portra 400"')
    g.add_argument("--roll-name", metavar="NAME", help="the roll's name, written into the outputs (and {roll} in --name; "
                                                      "default for {roll}: the input's folder name)")
    g.add_argument("--shot-date", metavar="DATE", help="when the film was shot: YYYY, YYYY-MM or YYYY-MM-DD")
    g.add_argument("--frame-numbers", choices=("name", "order", "none"), default="name",
                   help="frame numbers from the input's name when it is one (07.NEF, roll12-07.NEF -> 7; not "
                        "DSC_0042: a camera counter; default), its place among the inputs (1, 2, ...), or none")
    g.add_argument("--name", metavar="PATTERN", default=None,
                   help="output names: tokens {name} {roll} {frame} {stock} {date} {shot_date}, e.g. "
                        '"{roll}/{frame:02d}" (default {name}: the input\'s name)')
    g.add_argument("--colour-space", choices=CHOICES, default="srgb",
                   help="the 16-bit TIFF's colour space: pixels converted, matching ICC profile (default srgb)")
    g.add_argument("--jpeg-colour-space", choices=CHOICES, default="srgb",
                   help="the JPEG's colour space (default srgb, whatever --colour-space says)")
    g.add_argument("--jpeg-quality", type=int, metavar="1-100", default=90, help="JPEG quality (default 90)")
    g.add_argument("--xmp-sidecar", action="store_true",
                   help="write only an XMP sidecar per input (<name>.xmp in --out: film stock, type, roll, frame, "
                        "dates), no positives: for RAWs kept as the masters")


@dataclass
class OutputChoices:
    stock: str | None = None
    roll: str | None = None
    shot_date: str | None = None
    frame_numbers: str = "name"
    pattern: str | None = None
    colour_space: str = "srgb"
    jpeg_colour_space: str = "srgb"
    jpeg_quality: int = 90
    sidecar: bool = False
    film: str | None = None  # `--film` (film types), when the command has it
    _order: dict = field(default_factory=dict)

    @classmethod
    def from_args(cls, args) -> "OutputChoices":
        from station.pipeline.metadata import MetadataError, check_shot_date, check_text
        from station.pipeline.naming import NamingError, check_pattern

        try:
            stock = check_text("--stock", getattr(args, "stock", None))
            roll = check_text("--roll-name", getattr(args, "roll_name", None), 100)
            shot = check_shot_date(getattr(args, "shot_date", None))
        except MetadataError as exc:
            raise StationUsage(str(exc)) from None
        q = getattr(args, "jpeg_quality", 90)
        if not 1 <= q <= 100:
            raise StationUsage(f"--jpeg-quality {q}: must be between 1 and 100")
        pattern = getattr(args, "name", None)
        if pattern is not None:
            try:
                used = check_pattern(pattern)
            except NamingError as exc:
                raise StationUsage(str(exc)) from None
            for token, flag, value in (("stock", "--stock", stock), ("shot_date", "--shot-date", shot)):
                if token in used and not value:  # the same for every input: one usage error
                    raise StationUsage(f"--name {pattern!r}: {{{token}}} needs {flag}")
        film = getattr(args, "film", None)
        return cls(stock=stock, roll=roll, shot_date=shot, frame_numbers=getattr(args, "frame_numbers", "name"),
                   pattern=pattern, colour_space=getattr(args, "colour_space", "srgb"),
                   jpeg_colour_space=getattr(args, "jpeg_colour_space", "srgb"), jpeg_quality=q,
                   sidecar=bool(getattr(args, "xmp_sidecar", False)), film=film if isinstance(film, str) else None)

    def check_formats(self, formats) -> None:
        """StationUsage when an option is for an output `formats` does not write (it would
        be ignored silently: `--colour-space prophoto --format jpeg` is still an sRGB JPEG)."""
        if self.sidecar:
            return
        if self.colour_space != "srgb" and "tiff" not in formats:
            raise StationUsage(f"--colour-space {self.colour_space} is the 16-bit TIFF's, and --format writes no TIFF "
                               "(the JPEG's is --jpeg-colour-space; the linear TIFF stays camera RGB)")
        for flag, value, default in (("--jpeg-colour-space", self.jpeg_colour_space, "srgb"),
                                     ("--jpeg-quality", self.jpeg_quality, 90)):
            if value != default and "jpeg" not in formats:
                raise StationUsage(f"{flag} {value} is the JPEG's, and --format writes no JPEG")

    def number(self, files: list[Path]) -> None:
        """Fix the inputs' order (for --frame-numbers order)."""
        self._order = {f: i + 1 for i, f in enumerate(files)}

    def frame_of(self, src: Path) -> int | None:
        from station.pipeline.naming import frame_from_name

        if self.frame_numbers == "order":
            return self._order.get(src)
        return frame_from_name(src.stem) if self.frame_numbers == "name" else None

    def stem_for(self, src: Path) -> Path:
        """The output stem (relative to the output folder, no extension); NamingError."""
        if self.pattern is None:
            return Path(src.stem)
        from station.pipeline.naming import render, scan_date

        values = {"name": src.stem, "roll": self.roll or src.resolve().parent.name, "frame": self.frame_of(src),
                  "stock": self.stock, "shot_date": self.shot_date, "date": None}
        if "{date" in self.pattern:
            values["date"] = scan_date(source_meta(src), src)
        return render(self.pattern, values, src)

    def extra_meta_for(self, src: Path) -> dict:
        """What this input's outputs carry besides the RAW's and the rendering's fields."""
        from station.pipeline.metadata import FILM_TYPES

        meta: dict = {}
        for key, value in (("film_stock", self.stock), ("roll", self.roll), ("frame", self.frame_of(src)),
                           ("shot_date", self.shot_date)):
            if value not in (None, ""):
                meta[key] = value
        if self.film in FILM_TYPES:
            meta["film_type"] = self.film
        if self.colour_space != "srgb":
            meta["station_colour_space"] = self.colour_space
        if self.jpeg_colour_space != "srgb":
            meta["station_jpeg_colour_space"] = self.jpeg_colour_space
        return meta


# what only a picture uses: (attribute, flag, its value when not given)
PICTURE_FLAGS = (("format", "--format", None), ("colour_space", "--colour-space", "srgb"),
                 ("jpeg_colour_space", "--jpeg-colour-space", "srgb"), ("jpeg_quality", "--jpeg-quality", 90),
                 ("roll", "--roll", False), ("base", "--base", None), ("flatfield", "--flatfield", None),
                 ("method", "--method", None), ("model", "--model", None), ("crop", "--crop", "none"),
                 ("exposure", "--exposure", None), ("wb", "--wb", None), ("contrast", "--contrast", None),
                 ("black", "--black", None), ("white", "--white", None))


def check_sidecar_only(args) -> None:
    """--xmp-sidecar writes no pictures: StationUsage naming a picture flag given beside it
    (it would be ignored silently)."""
    if not getattr(args, "xmp_sidecar", False):
        return
    given = [flag for attr, flag, unset in PICTURE_FLAGS if getattr(args, attr, unset) != unset]
    if given:
        raise StationUsage(f"--xmp-sidecar writes no pictures, only the story: {', '.join(given)} would do nothing "
                           "(run the sidecars and the positives as two commands)")


def source_meta(src: Path) -> dict:
    """The input's camera metadata without decoding it (tags only); {} when unreadable."""
    from station.pipeline.readers import raw_meta, sniff

    try:
        if sniff(src) in ("raw", "tiff"):
            return raw_meta(None, src)
    except Exception:
        pass
    return {}


def write_sidecar_for(src: Path, path: Path, choices: OutputChoices, overwrite: bool) -> str:
    """--xmp-sidecar for one input: "written", "complete" (ours, same input and story: kept),
    or raises OutputError (a file of another origin in the way)."""
    from station.errors import OutputError
    from station.pipeline.metadata import read_xmp, sidecar_source, xmp_packet
    from station.pipeline.write import atomic_write

    meta = {**source_meta(src), **choices.extra_meta_for(src), "station_source": src.name}
    if path.exists() and not overwrite:
        if sidecar_source(path) != src.name:
            raise OutputError(path, "already exists and was not written for this input (not overwriting; use --overwrite)")
        if read_xmp(path.read_bytes()) == read_xmp(xmp_packet(meta, sidecar=True)):
            return "complete"
        overwrite = True  # ours, for this input, with another story: replaced
    data = xmp_packet(meta, sidecar=True)  # atomic; never over a file unless `overwrite`
    atomic_write(path, lambda fh: fh.write(data), overwrite)
    return "written"
