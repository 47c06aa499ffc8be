"""Station configuration: YAML, validated key by key at start-up.

Search order: an explicit `--config FILE`, then `$STATION_CONFIG`, then
`/etc/station/station.yaml`, then `~/.config/station/station.yaml`
(`$XDG_CONFIG_HOME` respected); with none of them the built-in defaults
(the same values as `config/station.yaml`) apply.  Command-line flags
override the file.

Every problem is reported as ONE line naming the key, e.g.
`config: paths.incoming: folder does not exist (/srv/incoming)`; the daemon
then exits with status 2.  YAML is read with `yaml.safe_load` only.

The schema is pydantic v2 (`StationConfig` below: one model per section, one
`Field` per key with its default, its constraints and its one-line meaning).
Why pydantic rather than jsonschema: the schema is Python next to the code that
reads it (types, ranges, choices and cross-key rules such as web.token in one
class), its errors carry the key's location and the constraint, which we turn
into our one-line messages (`_message`), and it converts as it checks (numbers to
float) -- jsonschema would need the schema as data plus a second pass to convert.
Strict mode: `true` is not a number, "2" is not an integer.

A new key: one `Field(default, description=...)` in its section's model; the
reference in docs/DAEMON.md is generated from the schema (`reference()`; a test
checks the two agree, and that config/station.yaml lists every key).  A new
section owned by a plug-in: a `dict` field here and its validator in
`PLUGIN_SECTIONS` (the module that owns it checks its keys).  Checks that need
the file system (folders writable, model files present) come after the schema,
in `validate`.
"""
from __future__ import annotations

import copy
import importlib
import os
import re
import string
import tempfile
import typing
from pathlib import Path
from typing import Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

_PORT_RE = re.compile(r"^(auto|off|virtual|usb:(\d{1,3},\d{1,3})?|ptpip:[^:\s]+(:\d+){0,2})$")
_ADDR_RE = re.compile(r"^(off|\[?[0-9A-Za-z.:\-]*\]?:\d{1,5})$")
_NAMING_FIELDS = {"dir", "stem", "name", "ext", "roll"}
FORMATS = ("preview", "tiff", "jpeg")


class ConfigError(Exception):
    """One line: the key and the problem."""

    def __init__(self, key: str, problem: str):
        self.key = key
        self.problem = problem
        super().__init__(f"config: {key}: {problem}")


# -- the schema ---------------------------------------------------------------------------

class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=False)


class Paths(_Section):
    incoming: str = Field("~/station/incoming", description="RAWs land here (never modified, moved or deleted)")
    output: str = Field("~/station/positives", description="the positives; must not be inside incoming")
    state: Optional[str] = Field(None, description="journal.sqlite, rolls; null: $STATE_DIRECTORY (systemd), "
                                                   "else ~/.local/state/station (created)")
    socket: Optional[str] = Field(None, description="the control socket; null: $RUNTIME_DIRECTORY/station.sock, "
                                                    "else <state>/station.sock")


class Inversion(_Section):
    method: Literal["auto", "mlp", "classic"] = Field("auto", description="auto: mlp when a default model ships")
    model: Optional[str] = Field(None, description="model file (.npz) for mlp; null: the shipped default")
    base: Optional[str] = Field(None, description="a blank film-base frame (RAW/TIFF) for every frame; null: per frame")
    flatfield: Optional[str] = Field(None, description="a frame of the bare light (RAW) or a saved flat field (.npz) "
                                                       "for every roll without its own")
    roll: bool = Field(True, description="each folder under incoming is a roll with one rendering")


class Outputs(_Section):
    formats: list[Literal["preview", "tiff", "jpeg"]] = Field(
        default_factory=lambda: list(FORMATS), min_length=1,
        description="preview = <stem>.preview.jpg, tiff = <stem>.tif, jpeg = <stem>.jpg")
    naming: str = Field("{dir}/{stem}", description="under paths.output; fields: dir, stem, name, ext, roll")
    preview_size: int = Field(1600, ge=64, le=20000, description="long side of the preview, pixels")
    jpeg_quality: int = Field(90, ge=1, le=100, description="quality of the JPEGs (preview and master)")
    colour_space: str = Field("srgb", description="the TIFF master's: srgb, display-p3, adobe-rgb or prophoto "
                                                  "(pixels converted, ICC profile to match)")
    jpeg_colour_space: str = Field("srgb", description="the full-size JPEG's (the preview is always sRGB)")

    @field_validator("colour_space", "jpeg_colour_space")
    @classmethod
    def _space(cls, v: str) -> str:
        from station.pipeline.colourspace import CHOICES

        if v not in CHOICES:
            raise ValueError(f"must be one of {', '.join(CHOICES)}, got {v!r}")
        return v

    @field_validator("naming")
    @classmethod
    def _naming(cls, v: str) -> str:
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(v) if f}
        except ValueError as exc:
            raise ValueError(f"not a valid pattern ({exc})") from None
        if not fields <= _NAMING_FIELDS:
            raise ValueError(f"unknown field(s) {sorted(fields - _NAMING_FIELDS)} (known: {sorted(_NAMING_FIELDS)})")
        if "stem" not in fields and "name" not in fields:
            raise ValueError("must contain {stem} (or {name}) so that outputs do not collide")
        if v.startswith("/") or ".." in v.split("/"):
            raise ValueError("must be relative to paths.output, without '..'")
        return v


class Workers(_Section):
    count: int = Field(2, ge=1, le=64, description="decoder processes; with >= 2, worker 0 only makes previews")
    start_method: Literal["forkserver", "spawn"] = Field("forkserver", description="never fork: LibRaw's OpenMP")
    preview_deadline: float = Field(60.0, gt=0, description="seconds; a hung preview is killed (\"timed out\")")
    master_deadline: float = Field(300.0, gt=0, description="seconds; a hung master is killed (\"timed out\")")


class Watcher(_Section):
    polling: bool = Field(False, description="true: stat polling instead of inotify (network shares)")
    poll_interval: float = Field(1.0, gt=0, description="seconds between polls (polling: true)")
    stable_seconds: float = Field(2.0, gt=0, description="size+mtime unchanged this long = complete (no close event)")
    rescan_interval: float = Field(30.0, ge=0, description="seconds; a full rescan under the observer; 0 = off")


class Camera(_Section):
    port: Optional[str] = Field(None, description="null/off | auto | usb: | usb:BUS,DEV | ptpip:HOST[:PORT[:PORT]] "
                                                  "| virtual")
    keep_on_card: bool = Field(True, description="false: a file is deleted from the card once it is safe")
    capture_target: Literal["card", "memory"] = Field("card", description="where the camera stores a shot")
    jpeg: Literal["keep", "drop"] = Field("drop", description="RAW+JPEG: keep or drop the camera JPEG")
    virtual_frames: Optional[str] = Field(None, description="port virtual: a folder of RAWs served in turn "
                                                            "(null: generated negatives)")

    @field_validator("port")
    @classmethod
    def _port(cls, v):
        if v is not None and not _PORT_RE.match(v):
            raise ValueError(f"must be auto, off, virtual, usb:, usb:BUS,DEV (e.g. usb:001,004) or "
                             f"ptpip:HOST[:PORT[:PORT]], got {v!r}")
        return None if v == "off" else v


class Web(_Section):
    address: Optional[str] = Field("127.0.0.1:8077", description="HOST:PORT or off; beyond this machine a token "
                                                                 "is required")
    token: Optional[str] = Field(None, description="the page's access token (?token=, a cookie or the X-Station-Token header)")

    @field_validator("address")
    @classmethod
    def _address(cls, v):
        v = "off" if v is None else v
        if not _ADDR_RE.match(v):
            raise ValueError(f"must be HOST:PORT or off, got {v!r}")
        return v

    @model_validator(mode="after")
    def _token(self):
        host = self.address.rsplit(":", 1)[0].strip("[]") if self.address != "off" else ""
        if self.address != "off" and host not in ("127.0.0.1", "localhost", "::1") and not self.token:
            raise ValueError(f"web.token: required when web.address binds beyond this machine ({self.address})")
        return self


class Pedal(_Section):
    device: str = Field(None, description="a name, VVVV:PPPP or /dev/input/...; one press = one capture")
    key: str = Field(None, description="the key the pedal sends (e.g. KEY_B)")
    grab: bool = Field(None, description="take the device for the station alone")
    debounce_ms: int = Field(None, description="presses closer than this are one")


_PLUGIN = "a mapping, checked by "


class StationConfig(BaseModel):
    """The whole file.  Sections in the order they are checked."""
    model_config = ConfigDict(extra="forbid", strict=True)

    paths: Paths = Field(default_factory=Paths)
    inversion: Inversion = Field(default_factory=Inversion)
    outputs: Outputs = Field(default_factory=Outputs)
    workers: Workers = Field(default_factory=Workers)
    watcher: Watcher = Field(default_factory=Watcher)
    camera: Camera = Field(default_factory=Camera)
    web: Web = Field(default_factory=Web)
    hooks: dict = Field(default_factory=dict, description=_PLUGIN + "station/hooks.py: {event: command}")
    pedal: Pedal = Field(default_factory=Pedal, description="a USB foot pedal (an HID keyboard)")
    autoroll: dict = Field(default_factory=dict, description=_PLUGIN + "station/autoroll.py: {frames, settle, "
                                                                      "advance_timeout, capture_timeout}")
    liveview: dict = Field(default_factory=dict, description=_PLUGIN + "station/settle.py: {enabled, interval, "
                                                                      "still_s, ...}")
    checks: dict = Field(default_factory=dict, description=_PLUGIN + "station/checks.py: {enabled, focus_ratio, "
                                                                    "clip_fraction, ...}")
    print: dict = Field(default_factory=dict, description=_PLUGIN + "station/pipeline/printing.py: {exposure, wb, "
                                                                   "contrast, black, white}")

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, raw):
        if not isinstance(raw, dict):
            return raw
        raw = {k: v for k, v in raw.items() if v is not None}  # `section:` with nothing = its defaults
        w = raw.get("workers")
        if isinstance(w, int) and not isinstance(w, bool):
            raw["workers"] = {"count": w}  # `workers: 2` is short for `workers: {count: 2}`
        return raw


# Sections validated by the module that owns them: section -> (module, validator).
PLUGIN_SECTIONS = {
    "hooks": ("station.hooks", "validate_hooks_config"),
    "autoroll": ("station.autoroll", "validate_autoroll_config"),
    "liveview": ("station.settle", "validate_liveview_config"),
    "checks": ("station.checks", "validate_checks_config"),
    "print": ("station.pipeline.printing", "validate_print_config"),
}


def _dump(model: StationConfig) -> dict:
    cfg = model.model_dump()
    cfg["pedal"] = model.pedal.model_dump(exclude_unset=True)  # only the keys given
    return cfg


# The default configuration (config/station.yaml says the same, with comments).
DEFAULTS: dict = _dump(StationConfig())


# -- errors: pydantic's, as one line naming the key ------------------------------------------

_TYPE_NAMES = {"string_type": "a string", "bool_type": "true/false", "int_type": "an integer",
               "float_type": "a number", "list_type": "a list", "dict_type": "a mapping",
               "model_type": "a mapping", "model_attributes_type": "a mapping"}


def _field(loc: tuple):
    """The pydantic FieldInfo at `loc` (None for the top level or a list item)."""
    model, info = StationConfig, None
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        info = model.model_fields.get(part)
        if info is None:
            return None
        ann = info.annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return info


def _model_at(loc: tuple):
    model = StationConfig
    for part in loc:
        info = model.model_fields.get(part) if isinstance(part, str) else None
        ann = info.annotation if info else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        model = ann
    return model


def _choices(info) -> list[str]:
    """The values a Literal field (or a list of Literals) allows."""
    def lits(t):
        if typing.get_origin(t) is Literal:
            return [str(a) for a in typing.get_args(t)]
        return [x for a in typing.get_args(t) for x in lits(a)]
    return lits(info.annotation) if info is not None else []


def _or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _message(err: dict) -> ConfigError:
    loc = tuple(err["loc"])
    key = ".".join(str(p) for p in loc if isinstance(p, str)) or "(top level)"
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    info = _field(loc)
    if kind == "extra_forbidden":
        known = _model_at(loc[:-1])
        return ConfigError(key, f"unknown key (known: {', '.join(known.model_fields) if known else '?'})")
    if kind in _TYPE_NAMES:
        nullable = info is not None and type(None) in typing.get_args(info.annotation)
        want = _TYPE_NAMES[kind] + (" or null" if nullable else "")
        return ConfigError(key, f"must be {want}, got {type(value).__name__} {value!r}")
    if kind == "literal_error":
        return ConfigError(key, f"must be {_or(_choices(info))}, got {value!r}")
    if kind == "too_short":
        return ConfigError(key, f"must name at least one of {', '.join(_choices(info))}")
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bounds = {type(m).__name__: m for m in (info.metadata if info else [])}
        lo, hi = bounds.get("Ge"), bounds.get("Le")
        if lo is not None and hi is not None:
            return ConfigError(key, f"must be between {lo.ge} and {hi.le}, got {value!r}")
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[kind]
        bound = next(iter(ctx.values()), "?")
        return ConfigError(key, f"must be {op} {bound:g}, got {value!r}" if isinstance(bound, (int, float))
                           else f"must be {op} {bound}, got {value!r}")
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if kind == "value_error" and re.match(r"^[a-z_]+\.[a-z_]+: ", msg):  # a cross-key rule names its key
        key, _, msg = msg.partition(": ")
    return ConfigError(key, msg)


# -- the file system, after the schema ----------------------------------------------------------

def _expand(p: str | None) -> Path | None:
    if p is None:
        return None
    return Path(os.path.expandvars(os.path.expanduser(str(p))))


def _writable_dir(key: str, path: Path, create: bool = False) -> Path:
    if create and not path.exists():
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(key, f"cannot create folder {path} ({exc.strerror})") from None
    if not path.exists():
        raise ConfigError(key, f"folder does not exist ({path})")
    if not path.is_dir():
        raise ConfigError(key, f"not a folder ({path})")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(key, f"folder is not writable ({path})")
    try:  # access() lies on read-only mounts and to root
        fd, name = tempfile.mkstemp(prefix=".station-probe-", dir=path)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise ConfigError(key, f"folder is not writable ({path}: {exc.strerror})") from None
    return path.resolve()


def validate(raw: dict, check_paths: bool = True) -> dict:
    """Merge `raw` over the defaults, check every key, return the config dict.

    Paths come back as absolute `Path`s.  Raises ConfigError on the first problem.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("(top level)", f"must be a mapping, got {type(raw).__name__}")
    try:
        cfg = _dump(StationConfig.model_validate(copy.deepcopy(raw)))
    except ValidationError as exc:
        raise _message(exc.errors()[0]) from None

    for section, (module, func) in PLUGIN_SECTIONS.items():
        errors = getattr(importlib.import_module(module), func)(cfg[section])
        if errors:  # each error line starts with the key it names
            key, _, problem = errors[0].partition(": ")
            raise ConfigError(key, problem or errors[0])

    inv, cam = cfg["inversion"], cfg["camera"]
    for k in ("model", "base", "flatfield"):
        if inv[k] is not None:
            path = _expand(inv[k])
            if check_paths and not path.is_file():
                raise ConfigError(f"inversion.{k}", f"file not found ({path})")
            inv[k] = path.resolve() if check_paths else path
    if cam["virtual_frames"] is not None:
        vf = _expand(cam["virtual_frames"])
        if check_paths and not vf.is_dir():
            raise ConfigError("camera.virtual_frames", f"folder does not exist ({vf})")
        cam["virtual_frames"] = str(vf)

    # Folders last, so type errors come first.
    if check_paths:
        p = cfg["paths"]
        r = resolve_paths(cfg)
        p["incoming"] = _writable_dir("paths.incoming", r["incoming"])
        p["output"] = _writable_dir("paths.output", r["output"])
        p["state"] = _writable_dir("paths.state", r["state"], create=p["state"] is None)
        inc, outp = p["incoming"], p["output"]
        if outp == inc or inc in outp.parents:
            raise ConfigError("paths.output", f"must not be inside paths.incoming ({outp})")
        if outp in inc.parents:
            raise ConfigError("paths.incoming", f"must not be inside paths.output ({inc})")
        if p["socket"] is not None:
            _writable_dir("paths.socket", r["socket"].parent)
        p["socket"] = r["socket"]
        if len(os.fsencode(str(p["socket"]))) > 107:
            raise ConfigError("paths.socket", f"path too long for a Unix socket ({len(str(p['socket']))} > 107 bytes)")
    return cfg


def keys() -> list[str]:
    """Every key of the schema, `section` or `section.key` (plug-in sections as one)."""
    out = []
    for section, info in StationConfig.model_fields.items():
        sub = info.annotation if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel) else None
        out += [f"{section}.{k}" for k in sub.model_fields] if sub else [section]
    return out


def reference() -> str:
    """The configuration reference (a Markdown table) made from the schema: docs/DAEMON.md
    carries it between `<!-- config-reference -->` markers (tests/test_config_schema.py)."""
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for section, info in StationConfig.model_fields.items():
        sub = info.annotation if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel) else None
        fields = [(f"{section}.{k}", f) for k, f in sub.model_fields.items()] if sub else [(section, info)]
        for key, f in fields:
            default = f.get_default(call_default_factory=True)
            if isinstance(default, BaseModel):
                default = {}
            shown = "null" if default is None else str(default).lower() if isinstance(default, bool) else \
                "{}" if default == {} else "[" + ", ".join(default) + "]" if isinstance(default, list) else str(default)
            choices = _choices(f)
            meaning = (f.description or "").replace("|", "\\|")
            if choices:
                meaning += f" (one of: {', '.join(choices)})"
            rows.append(f"| `{key}` | `{shown}` | {meaning} |")
    return "\n".join(rows) + "\n"


def resolve_paths(cfg: dict) -> dict[str, Path]:
    """The one path resolver: where the folders and the control socket of this configuration
    are (nothing created, nothing checked).  The daemon checks them (`validate`); the client
    commands (status, retry, roll, capture) use them as they are.

    incoming/output: `~` and `$VARS` expanded; state: paths.state, else $STATE_DIRECTORY
    (systemd), else ~/.local/state/station; socket: paths.socket, else
    $RUNTIME_DIRECTORY/station.sock, else <state>/station.sock."""
    p = cfg["paths"]
    out = {"incoming": _expand(p["incoming"]), "output": _expand(p["output"])}
    if p["state"] is not None:
        out["state"] = _expand(p["state"])
    else:
        sd = os.environ.get("STATE_DIRECTORY")
        out["state"] = Path(sd.split(":")[0]) if sd else default_state_dir()
    if p["socket"] is not None:
        out["socket"] = _expand(p["socket"]).absolute()
    else:
        rt = os.environ.get("RUNTIME_DIRECTORY")
        out["socket"] = (Path(rt.split(":")[0]) if rt else out["state"]) / "station.sock"
    return out


def default_state_dir() -> Path:
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "station"


def socket_candidates(cfg: dict) -> list[Path]:
    """Where a client looks for the daemon's socket (config not path-checked): the configured
    one only; else the resolved one, <state>/station.sock, /run/station/station.sock."""
    r = resolve_paths(cfg)
    if cfg["paths"].get("socket"):
        return [r["socket"]]
    return list(dict.fromkeys([r["socket"], r["state"] / "station.sock", Path("/run/station/station.sock")]))


def find_config(explicit: str | None = None) -> Path | None:
    """The config file to read (explicit, $STATION_CONFIG, /etc, user dir), or None."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("STATION_CONFIG")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CONFIG_HOME")
    candidates = ["/etc/station/station.yaml",
                  str(Path(xdg) / "station" / "station.yaml") if xdg else "~/.config/station/station.yaml"]
    for c in candidates:
        path = Path(os.path.expanduser(c))
        if path.is_file():
            return path
    return None


def read_yaml(path: Path) -> dict:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("--config", f"file not found ({path})") from None
    except OSError as exc:
        raise ConfigError("--config", f"cannot read {path} ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError("(yaml)", f"{path}{where}: {problem}") from None
    return data or {}


def load(explicit: str | None = None, overrides: dict | None = None, check_paths: bool = True) -> dict:
    """Read the config file (search order above), apply `overrides` ({"section.key": value}), validate."""
    path = find_config(explicit)
    raw = read_yaml(path) if path else {}
    if not isinstance(raw, dict):
        raise ConfigError("(top level)", f"{path}: must be a mapping, got {type(raw).__name__}")
    raw = copy.deepcopy(raw)
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        section, key = dotted.split(".", 1)
        sec = raw.get(section)
        if not isinstance(sec, dict):
            sec = {}
            raw[section] = sec
        sec[key] = value
    cfg = validate(raw, check_paths=check_paths)
    cfg["_source"] = str(path) if path else "(built-in defaults)"
    return cfg
