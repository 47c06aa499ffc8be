"""Station configuration: YAML, validated key by key at start-up.

Search order: an explicit `--config FILE`, then `$STATION_CONFIG`, then
`/etc/station/station.yaml`, then `~/.config/station/station.yaml`
(`$XDG_CONFIG_HOME` respected); with none of them the built-in defaults
(the same values as `config/station.yaml`) apply.  Command-line flags
override the file.

Every problem is reported as ONE line naming the key, e.g.
`config: paths.incoming: folder does not exist (/srv/incoming)`; the daemon
then exits with status 2.  YAML is read with `yaml.safe_load` only.
"""
from __future__ import annotations

import copy
import importlib
import os
import re
import tempfile
from pathlib import Path

import yaml

SEARCH_PATHS = ("/etc/station/station.yaml", "~/.config/station/station.yaml")

# The default configuration: keep in step with config/station.yaml.
DEFAULTS: dict = {
    "paths": {
        "incoming": "~/station/incoming",
        "output": "~/station/positives",
        "state": None,  # None: $STATE_DIRECTORY (systemd), else ~/.local/state/station (created)
        "socket": None,  # None: $RUNTIME_DIRECTORY/station.sock, else <state>/station.sock
    },
    "inversion": {
        "method": "auto",  # auto | mlp | classic  (auto: mlp when a default model ships)
        "model": None,  # model file for mlp; None = the shipped default
        "base": None,  # a blank film-base frame (RAW/TIFF) used for every frame; None = per frame
        "flatfield": None,  # a frame of the bare light (RAW) or a saved flat field (.npz) for every roll without its own
        "roll": True,  # each folder under incoming is a roll with one rendering (daemon/rolls.py)
    },
    "outputs": {
        "formats": ["preview", "tiff", "jpeg"],
        "naming": "{dir}/{stem}",  # relative to paths.output; {dir} = sub-folder of the RAW in incoming
        "preview_size": 1600,
        "jpeg_quality": 90,
        "colour_space": "srgb",  # the TIFF master's: srgb | display-p3 | adobe-rgb | prophoto (ICC profile to match)
        "jpeg_colour_space": "srgb",  # the full-size JPEG's (the preview is always sRGB)
    },
    "workers": {
        "count": 2,  # decoder processes; worker 0 only ever takes previews when count >= 2
        "start_method": "forkserver",  # forkserver | spawn (never fork: rawpy's OpenMP)
        "preview_deadline": 60.0,  # seconds before a hung preview is killed ("timed out")
        "master_deadline": 300.0,
    },
    "watcher": {
        "polling": False,  # True: stat-polling observer (network shares)
        "poll_interval": 1.0,
        "stable_seconds": 2.0,  # size+mtime unchanged this long = complete (writers with no close event)
        "rescan_interval": 30.0,  # periodic full rescan, a safety net under the observer
    },
    "camera": {
        "port": None,  # None/off: no camera | auto | usb:BUS,DEV | ptpip:HOST[:PORT[:PORT]]
        "keep_on_card": True,
        "capture_target": "card",  # card | memory
        "jpeg": "drop",  # keep | drop (RAW+JPEG)
        "virtual_frames": None,  # port "virtual": a folder of RAWs served in turn; None = generated negatives
    },
    "web": {
        "address": "127.0.0.1:8077",  # or "off"
        "token": None,
    },
    "hooks": {},  # {event: shell command or [args]}, see docs/RIGS.md
    "pedal": {},  # {device: NAME or VVVV:PPPP or /dev/input/..., key: KEY_B, grab: true, debounce_ms: 300}
    "autoroll": {},  # {frames, settle, advance_timeout, capture_timeout}, see docs/RIGS.md
    "liveview": {},  # {enabled: false, interval, still_s, ...}: auto-capture when a frame settles
    "checks": {},  # {enabled: true, focus_ratio, clip_fraction, ...}: frame checks
    "print": {},  # {exposure, wb: "TEMP[,TINT]" | temperature + tint, contrast, black, white}: every frame's print
}

# Sections validated by the module that owns them: section -> (module, validator).
PLUGIN_SECTIONS = {
    "hooks": ("station.hooks", "validate_hooks_config"),
    "autoroll": ("station.autoroll", "validate_autoroll_config"),
    "liveview": ("station.settle", "validate_liveview_config"),
    "checks": ("station.checks", "validate_checks_config"),
    "print": ("station.pipeline.printing", "validate_print_config"),
}
PEDAL_KEYS = {"device": str, "key": str, "grab": bool, "debounce_ms": int}

TEMP_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".download", ".swp", "~")


class ConfigError(Exception):
    """One line: the key and the problem."""

    def __init__(self, key: str, problem: str):
        self.key = key
        self.problem = problem
        super().__init__(f"config: {key}: {problem}")


def _type_name(t) -> str:
    if isinstance(t, tuple):
        return " or ".join(_type_name(x) for x in t)
    return {str: "a string", bool: "true/false", int: "an integer", float: "a number",
            list: "a list", dict: "a mapping", type(None): "null"}.get(t, t.__name__)


def _check_type(key, value, types):
    if not isinstance(types, tuple):
        types = (types,)
    ok = False
    for t in types:
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            ok = True
        elif t is int and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        elif t not in (int, float) and isinstance(value, t):
            ok = True
    if not ok:
        raise ConfigError(key, f"must be {_type_name(types)}, got {type(value).__name__} {value!r}")


def _check_keys(key_prefix: str, data: dict, allowed: dict) -> None:
    for k in data:
        if k not in allowed:
            name = f"{key_prefix}.{k}" if key_prefix else str(k)
            raise ConfigError(name, f"unknown key (known: {', '.join(allowed)})")


def _positive(key, v, zero_ok=False):
    if v < 0 or (v == 0 and not zero_ok):
        raise ConfigError(key, f"must be {'>= 0' if zero_ok else '> 0'}, got {v!r}")


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


_PORT_RE = re.compile(r"^(auto|off|virtual|usb:(\d{1,3},\d{1,3})?|ptpip:[^:\s]+(:\d+){0,2})$")
_ADDR_RE = re.compile(r"^(off|\[?[0-9A-Za-z.:\-]*\]?:\d{1,5})$")
_NAMING_FIELDS = {"dir", "stem", "name", "ext", "roll"}


def validate(raw: dict, check_paths: bool = True) -> dict:
    """Merge `raw` over the defaults, check every key, return the config dict.

    Paths come back as absolute `Path`s.  Raises ConfigError on the first problem.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("(top level)", f"must be a mapping, got {type(raw).__name__}")
    _check_keys("", raw, DEFAULTS)
    cfg = copy.deepcopy(DEFAULTS)
    for section, value in raw.items():
        if value is None:
            continue
        if section == "workers" and isinstance(value, int) and not isinstance(value, bool):
            value = {"count": value}  # `workers: 2` is short for `workers: {count: 2}`
        if section in PLUGIN_SECTIONS or section == "pedal":
            _check_type(section, value, dict)
            cfg[section] = dict(value)
            continue
        _check_type(section, value, dict)
        _check_keys(section, value, DEFAULTS[section])
        cfg[section].update(value)

    p = cfg["paths"]
    for k in ("incoming", "output"):
        _check_type(f"paths.{k}", p[k], str)
    _check_type("paths.state", p["state"], (str, type(None)))
    _check_type("paths.socket", p["socket"], (str, type(None)))

    inv = cfg["inversion"]
    _check_type("inversion.method", inv["method"], str)
    if inv["method"] not in ("auto", "mlp", "classic"):
        raise ConfigError("inversion.method", f"must be auto, mlp or classic, got {inv['method']!r}")
    _check_type("inversion.model", inv["model"], (str, type(None)))
    _check_type("inversion.base", inv["base"], (str, type(None)))
    _check_type("inversion.flatfield", inv.get("flatfield"), (str, type(None)))
    _check_type("inversion.roll", inv["roll"], bool)
    for k in ("model", "base", "flatfield"):
        if inv[k] is not None:
            path = _expand(inv[k])
            if check_paths and not path.is_file():
                raise ConfigError(f"inversion.{k}", f"file not found ({path})")
            inv[k] = path.resolve() if check_paths else path

    out = cfg["outputs"]
    _check_type("outputs.formats", out["formats"], list)
    if not out["formats"]:
        raise ConfigError("outputs.formats", "must name at least one of preview, tiff, jpeg")
    for f in out["formats"]:
        if f not in ("preview", "tiff", "jpeg"):
            raise ConfigError("outputs.formats", f"unknown format {f!r} (choose from preview, tiff, jpeg)")
    _check_type("outputs.naming", out["naming"], str)
    try:
        fields = {fname for _, fname, _, _ in __import__("string").Formatter().parse(out["naming"]) if fname}
    except ValueError as exc:
        raise ConfigError("outputs.naming", f"not a valid pattern ({exc})") from None
    if not fields <= _NAMING_FIELDS:
        raise ConfigError("outputs.naming", f"unknown field(s) {sorted(fields - _NAMING_FIELDS)} (known: {sorted(_NAMING_FIELDS)})")
    if "stem" not in fields and "name" not in fields:
        raise ConfigError("outputs.naming", "must contain {stem} (or {name}) so that outputs do not collide")
    if out["naming"].startswith("/") or ".." in out["naming"].split("/"):
        raise ConfigError("outputs.naming", "must be relative to paths.output, without '..'")
    _check_type("outputs.preview_size", out["preview_size"], int)
    if not 64 <= out["preview_size"] <= 20000:
        raise ConfigError("outputs.preview_size", f"must be between 64 and 20000, got {out['preview_size']}")
    _check_type("outputs.jpeg_quality", out["jpeg_quality"], int)
    if not 1 <= out["jpeg_quality"] <= 100:
        raise ConfigError("outputs.jpeg_quality", f"must be between 1 and 100, got {out['jpeg_quality']}")
    from station.pipeline.colourspace import CHOICES

    for k in ("colour_space", "jpeg_colour_space"):
        if out.get(k) not in CHOICES:
            raise ConfigError(f"outputs.{k}", f"must be one of {', '.join(CHOICES)}, got {out.get(k)!r}")

    w = cfg["workers"]
    _check_type("workers.count", w["count"], int)
    if not 1 <= w["count"] <= 64:
        raise ConfigError("workers.count", f"must be between 1 and 64, got {w['count']}")
    _check_type("workers.start_method", w["start_method"], str)
    if w["start_method"] not in ("forkserver", "spawn"):
        raise ConfigError("workers.start_method", f"must be forkserver or spawn (never fork), got {w['start_method']!r}")
    for k in ("preview_deadline", "master_deadline"):
        _check_type(f"workers.{k}", w[k], float)
        _positive(f"workers.{k}", w[k])
        w[k] = float(w[k])

    wa = cfg["watcher"]
    _check_type("watcher.polling", wa["polling"], bool)
    for k in ("poll_interval", "stable_seconds", "rescan_interval"):
        _check_type(f"watcher.{k}", wa[k], float)
        _positive(f"watcher.{k}", wa[k], zero_ok=(k == "rescan_interval"))
        wa[k] = float(wa[k])

    cam = cfg["camera"]
    _check_type("camera.port", cam["port"], (str, type(None)))
    if cam["port"] is not None and not _PORT_RE.match(cam["port"]):
        raise ConfigError("camera.port", f"must be auto, off, virtual, usb:, usb:BUS,DEV (e.g. usb:001,004) or ptpip:HOST[:PORT[:PORT]], got {cam['port']!r}")
    if cam["port"] == "off":
        cam["port"] = None
    _check_type("camera.keep_on_card", cam["keep_on_card"], bool)
    _check_type("camera.capture_target", cam["capture_target"], str)
    if cam["capture_target"] not in ("card", "memory"):
        raise ConfigError("camera.capture_target", f"must be card or memory, got {cam['capture_target']!r}")
    _check_type("camera.virtual_frames", cam["virtual_frames"], (str, type(None)))
    if cam["virtual_frames"] is not None:
        vf = _expand(cam["virtual_frames"])
        if check_paths and not vf.is_dir():
            raise ConfigError("camera.virtual_frames", f"folder does not exist ({vf})")
        cam["virtual_frames"] = str(vf)
    _check_type("camera.jpeg", cam["jpeg"], str)
    if cam["jpeg"] not in ("keep", "drop"):
        raise ConfigError("camera.jpeg", f"must be keep or drop, got {cam['jpeg']!r}")

    web = cfg["web"]
    _check_type("web.address", web["address"], (str, type(None)))
    if web["address"] is None:
        web["address"] = "off"
    if not _ADDR_RE.match(web["address"]):
        raise ConfigError("web.address", f"must be HOST:PORT or off, got {web['address']!r}")
    _check_type("web.token", web["token"], (str, type(None)))
    host = web["address"].rsplit(":", 1)[0].strip("[]") if web["address"] != "off" else ""
    if web["address"] != "off" and host not in ("127.0.0.1", "localhost", "::1") and not web["token"]:
        raise ConfigError("web.token", f"required when web.address binds beyond this machine ({web['address']})")

    for section, (module, func) in PLUGIN_SECTIONS.items():
        errors = getattr(importlib.import_module(module), func)(cfg[section])
        if errors:  # each error line starts with the key it names
            key, _, problem = errors[0].partition(": ")
            raise ConfigError(key, problem or errors[0])

    for k, v in cfg["pedal"].items():
        if k not in PEDAL_KEYS:
            raise ConfigError(f"pedal.{k}", f"unknown key (known: {', '.join(PEDAL_KEYS)})")
        _check_type(f"pedal.{k}", v, PEDAL_KEYS[k])

    # Folders last, so type errors come first.
    if check_paths:
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
