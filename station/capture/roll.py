"""Rolls: one film, its own folders, a frame counter, a naming pattern, a manifest.

Layout (state = the station's state folder, incoming = the watched folder):

    state/rolls/<roll>/manifest.json   stock, film type (colour|bw|slide|auto), shot date, date, camera,
                                       pattern, base, print, per-frame records
    state/rolls/<roll>/base.<ext>      the blank film-base frame (`station roll calibrate`)
    state/rolls/<roll>/flat.<ext>      the frame of the bare light (`station roll flatfield`)
    state/rolls/<roll>/flatfield-<id>.npz  its measured flat field (pipeline/flatfield.py)
    state/rolls/current                name of the roll new captures go to
    incoming/<pattern>.<ext>           the RAWs, e.g. incoming/<roll>/01.dng

Overwrite protection: a roll name that exists is refused; a frame number whose
file exists is skipped; and the file itself is placed with link() so an
existing file is never replaced (a clash gets `-1`, `-2`, ...).
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from station.capture.names import safe_name, safe_relpath, write_atomic_no_clobber

DEFAULT_PATTERN = "{roll}/{frame:02d}"
MANIFEST_VERSION = 1


class RollError(Exception):
    pass


def _now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def _write_json_atomic(path: Path, data: dict) -> None:
    """Our own manifest: replaced atomically (temp + fsync + rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@dataclass
class FrameRecord:
    frame: int
    files: list[str] = field(default_factory=list)  # paths relative to incoming/
    kinds: list[str] = field(default_factory=list)
    camera_files: list[str] = field(default_factory=list)
    source: str = "trigger"
    captured_at: str = ""


class Roll:
    def __init__(self, store: "RollStore", data: dict):
        self.store = store
        self.data = data
        self._lock = threading.RLock()
        self._shot_frame: dict[int, int] = {}
        self._print_set = False
        self._set_keys: set[str] = set()  # shared keys this object set since its last save

    # --------------------------------------------------------------- fields
    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def folder(self) -> Path:
        return self.store.rolls_dir / self.name

    @property
    def manifest_path(self) -> Path:
        return self.folder / "manifest.json"

    @property
    def pattern(self) -> str:
        return self.data["pattern"]

    @property
    def frames(self) -> list[dict]:
        return self.data["frames"]

    @property
    def frame_count(self) -> int:
        return len(self.data["frames"])

    # set by others (`station roll print|flatfield|calibrate`, the live page through the daemon)
    # while a capture service holds this roll: a save keeps what is on disk unless this object set it
    _SHARED_KEYS = ("print", "flatfield", "flatfield_error", "base", "base_error")

    def save(self) -> None:
        with self._lock:
            try:
                on_disk = json.loads(self.manifest_path.read_text())
                on_disk = on_disk if isinstance(on_disk, dict) else {}
            except (OSError, ValueError):
                on_disk = {k: self.data[k] for k in self._SHARED_KEYS if k in self.data}
            for key in self._SHARED_KEYS:
                if key in self._set_keys or key == "print" and self._print_set:
                    continue
                if on_disk.get(key) is None:
                    self.data.pop(key, None)
                else:
                    self.data[key] = on_disk[key]
            self._print_set = False
            self._set_keys.clear()
            _write_json_atomic(self.manifest_path, self.data)

    # ------------------------------------------------------------- the print
    def print_settings(self):
        """The roll's print (printing.PrintSettings) or None; a bad one raises PrintError."""
        from station.pipeline.printing import PrintSettings

        data = self.data.get("print")
        return None if not data else PrintSettings.from_dict(data, f"roll {self.name}: print")

    def set_print(self, settings) -> None:
        """Store the roll's print (None: as inverted) in its manifest."""
        with self._lock:
            if settings is None or settings.identity:
                self.data.pop("print", None)
            else:
                self.data["print"] = settings.to_dict()
            self._print_set = True
            self.save()

    # ------------------------------------------------------------- naming
    def rel_stem(self, frame: int) -> Path:
        try:
            rel = self.pattern.format(roll=self.name, frame=frame, stock=safe_name(self.data.get("stock") or "film"))
        except (KeyError, IndexError, ValueError) as exc:
            raise RollError(f"bad naming pattern {self.pattern!r}: {exc}") from None
        return safe_relpath(rel)

    def _frame_taken(self, frame: int) -> bool:
        if any(r["frame"] == frame for r in self.data["frames"]):
            return True
        stem = self.store.incoming / self.rel_stem(frame)
        return stem.parent.is_dir() and any(p.stem == stem.name for p in stem.parent.iterdir())

    def next_frame(self) -> int:
        with self._lock:
            n = self.data.get("next_frame", 1)
            while self._frame_taken(n):
                n += 1
            return n

    def allocate(self, shot: int | None = None) -> int:
        """The frame number for a shot (files of one shot share it)."""
        with self._lock:
            if shot is not None and shot in self._shot_frame:
                return self._shot_frame[shot]
            n = self.next_frame()
            self.data["next_frame"] = n + 1
            if shot is not None:
                self._shot_frame[shot] = n
            return n

    def namer(self, info) -> str:
        """CameraService namer: <pattern> with the frame of this shot + the content's extension."""
        frame = self.allocate(info.shot)
        return str(self.rel_stem(frame)) + info.kind.ext

    # ---------------------------------------------------------- recording
    def record(self, captured) -> dict:
        """CameraService on_captured: add the file to its frame's record."""
        with self._lock:
            frame = self._shot_frame.get(captured.shot)
            if frame is None:
                frame = self.allocate(captured.shot)
            try:
                rel = str(Path(captured.path).relative_to(self.store.incoming))
            except ValueError:
                rel = str(captured.path)
            rec = next((r for r in self.data["frames"] if r["frame"] == frame), None)
            if rec is None:
                rec = asdict(FrameRecord(frame=frame, source=captured.source, captured_at=_now()))
                self.data["frames"].append(rec)
                self.data["frames"].sort(key=lambda r: r["frame"])
            rec["files"].append(rel)
            rec["kinds"].append(captured.kind)
            rec["camera_files"].append(captured.camera_path)
            if self.data.get("camera") is None and getattr(captured, "camera", None):
                self.data["camera"] = captured.camera
            self.save()
            return rec

    def set_camera(self, model: str | None) -> None:
        with self._lock:
            if model and not self.data.get("camera"):
                self.data["camera"] = model
                self.save()

    # -------------------------------------------------------- calibration
    def _flat_path(self) -> Path | None:
        """The roll's saved flat field (.npz), or None: this object's, else the manifest's on disk
        (set by another process)."""
        flat = self.data.get("flatfield")
        if "flatfield" not in self._set_keys:
            try:
                flat = json.loads(self.manifest_path.read_text()).get("flatfield", flat)
            except (OSError, ValueError, AttributeError):
                pass
        name = (flat or {}).get("npz") if isinstance(flat, dict) else None
        return self.folder / Path(name).name if name else None

    def set_base(self, data: bytes, ext: str, source: str = "file") -> Path:
        """Store the blank film-base frame for this roll and its base colour (measured through
        the roll's flat field when it has one, as its frames are converted)."""
        path = write_atomic_no_clobber(data, self.folder / f"base{ext}")
        self._measure_base_file(path, source)
        return path

    def _measure_base_file(self, path: Path, source: str) -> None:
        flat = self._flat_path()
        colour = (self.data.get("film") or "colour") == "colour"  # bw, slide, auto: no orange mask required
        rgb, error = measure_base(path, flat=flat, colour=colour)  # refused (not a blank) or unreadable: the reason
        with self._lock:
            self._set_keys.update(("base", "base_error"))
            if rgb is None and (self.data.get("base") or {}).get("rgb"):
                self.data["base_error"] = error  # refused: the roll keeps its earlier blank
            else:
                self.data["base"] = {"file": path.name, "rgb": rgb, "source": source, "at": _now()}
                if flat is not None and rgb is not None:
                    self.data["base"]["flatfield"] = flat.stem.removeprefix("flatfield-")  # its id
                if rgb is None:
                    self.data["base_error"] = error
                else:
                    self.data.pop("base_error", None)
            self.save()

    def base_estimate(self):
        """BaseEstimate for ConvertOptions(base=...), or None if not calibrated."""
        base = self.data.get("base") or {}
        if not base.get("rgb"):
            return None
        import numpy as np

        from station.pipeline.base import BaseEstimate

        return BaseEstimate(rgb=np.asarray(base["rgb"], dtype=np.float32), source="blank frame")


    def set_flat(self, data: bytes, ext: str, source: str = "file") -> Path:
        """Store a frame of the bare light for this roll and its measured flat field (refused:
        the reason in "flatfield_error", the roll keeps its earlier flat field)."""
        path = write_atomic_no_clobber(data, self.folder / f"flat{ext}")
        flat, error = measure_flat_file(path, self.folder)
        with self._lock:
            if flat is None:
                self.data["flatfield_error"] = error  # the flat field on disk (if any) is kept
                self._set_keys.add("flatfield_error")
            else:
                self.data["flatfield"] = {"file": path.name, "source": source, "at": _now(), **flat}
                self.data.pop("flatfield_error", None)
                self._set_keys.update(("flatfield", "flatfield_error"))
            self.save()
        base = self.data.get("base") or {}
        if flat is not None and base.get("rgb") and base.get("file") and (self.folder / base["file"]).is_file():
            # the roll's blank was measured under the uneven light: measured again through the flat
            self._measure_base_file(self.folder / base["file"], base.get("source", "file"))
        return path

    def flatfield(self):
        """The roll's FlatField for ConvertOptions(flatfield=...), or None."""
        name = (self.data.get("flatfield") or {}).get("npz")
        if not name:
            return None
        from station.pipeline.flatfield import FlatField

        return FlatField.load(self.folder / Path(name).name)


def _measure_flat(path: str, folder: str) -> tuple[dict | None, str | None]:
    """(In a child process.) Measure a bare-light frame and save its flat field next to it:
    ({"npz", "id", "falloff"}, None) or (None, why)."""
    try:
        from station.pipeline.flatfield import load_flat

        flat = load_flat(path)
        npz = flat.save(Path(folder) / f"flatfield-{flat.id}.npz")
        return {"npz": npz.name, "id": flat.id, "falloff": round(flat.corner_falloff, 4)}, None
    except ValueError as exc:  # not a bare light (film, clipped, too dark): refused with the reason
        return None, str(exc)
    except Exception as exc:
        return None, f"{exc.__class__.__name__}: {exc}"


def _in_child(fn, args: tuple, what: str, timeout: float) -> tuple:
    """Run a measurement `fn(*args)` (returning (result, None) or (None, why)) in a child
    process: the RAW is untrusted, so LibRaw parses it outside the caller (the daemon never
    maps LibRaw itself, and a crash in it takes only the child).  `what`: "the blank frame"."""
    import concurrent.futures
    import multiprocessing

    try:
        ctx = multiprocessing.get_context("forkserver")
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as ex:
            return ex.submit(fn, *args).result(timeout)
    except concurrent.futures.process.BrokenProcessPool:
        return None, f"the decoder crashed on {what}"
    except concurrent.futures.TimeoutError:
        return None, f"measuring {what} took longer than {timeout:g} s"
    except Exception as exc:
        return None, f"{exc.__class__.__name__}: {exc}"


def measure_flat_file(path, folder, timeout: float = 120.0) -> tuple[dict | None, str | None]:
    """Measure a bare-light frame in a child process (untrusted RAW, as measure_base)."""
    return _in_child(_measure_flat, (str(path), str(folder)), "the flat-field frame", timeout)


def _measure_base(path: str, flat: str | None = None, colour: bool = False) -> tuple[list[float] | None, str | None]:
    """(In a child process.) The film-base colour of a blank frame, through the flat field
    (.npz) `flat` when given, of a colour negative (an orange mask) with `colour`:
    (rgb, None) or (None, why)."""
    try:
        from station.pipeline.base import base_from_blank
        from station.pipeline.decode import decode
        from station.pipeline.flatfield import FlatField, apply_flat

        rgb = decode(path, half_size=True).rgb
        if flat:
            rgb = apply_flat(rgb, FlatField.load(flat))
        est = base_from_blank(rgb, colour=colour)
        return [round(float(v), 6) for v in est.rgb], None
    except ValueError as exc:  # not a blank (picture content), no film area: refused, with the reason
        return None, str(exc)
    except Exception as exc:
        return None, f"{exc.__class__.__name__}: {exc}"


def measure_base(path, timeout: float = 120.0, flat=None, colour: bool = False) -> tuple[list[float] | None, str | None]:
    """Measure a blank frame's film base in a child process (see _in_child), through the flat
    field saved at `flat` (.npz) when given; `colour`: the roll is a colour negative, so a blank
    with no orange mask (the bare light) is refused.  Returns (rgb, None) or (None, one-line reason)."""
    return _in_child(_measure_base, (str(path), str(flat) if flat else None, colour), "the blank frame", timeout)


class RollStore:
    def __init__(self, state_dir: str | os.PathLike, incoming: str | os.PathLike):
        self.state_dir = Path(state_dir)
        self.incoming = Path(incoming)
        self.rolls_dir = self.state_dir / "rolls"

    def _default_name(self) -> str:
        day = time.strftime("%Y%m%d")
        n = 1
        while (self.rolls_dir / f"roll-{day}-{n:02d}").exists():
            n += 1
        return f"roll-{day}-{n:02d}"

    def new(self, name: str | None = None, stock: str | None = None, frames: int | None = 36,
            camera: str | None = None, pattern: str = DEFAULT_PATTERN, make_current: bool = True,
            shot_date: str | None = None, film: str | None = None) -> Roll:
        if name is not None and ("/" in name or "\\" in name or ".." in name or name.startswith(".")):
            # refused, not quietly changed: "../evil" must not become a roll "evil"
            raise RollError(f"bad roll name {name!r}: a roll name is one plain name (no folders, no leading dot)")
        if frames is not None and (isinstance(frames, bool) or not isinstance(frames, int) or frames < 1):
            raise RollError(f"frames must be a whole number of 1 or more, got {frames!r}")
        from station.pipeline.metadata import MetadataError, check_shot_date

        try:  # the date the film was shot (the positives' metadata): YYYY, YYYY-MM or YYYY-MM-DD
            shot_date = check_shot_date(shot_date)
        except MetadataError as exc:
            raise RollError(str(exc)) from None
        from station.pipeline.films import CHOICES as FILM_TYPES

        if film is not None and film not in FILM_TYPES:
            raise RollError(f"unknown film type {film!r} (choose from {', '.join(FILM_TYPES)})")
        self.rolls_dir.mkdir(parents=True, exist_ok=True)
        name = safe_name(name) if name else self._default_name()
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", name):
            raise RollError(f"bad roll name {name!r}")
        folder = self.rolls_dir / name
        try:
            folder.mkdir()
        except FileExistsError:
            raise RollError(f"roll {name!r} exists already ({folder}); choose another name") from None
        data = {
            "version": MANIFEST_VERSION,
            "name": name,
            "stock": stock,
            "shot_date": shot_date,
            "film": film or "colour",
            "frames_expected": frames,
            "created": _now(),
            "camera": camera,
            "pattern": pattern,
            "next_frame": 1,
            "base": None,
            "frames": [],
        }
        roll = Roll(self, data)
        roll.rel_stem(1)  # validate the pattern now
        roll.save()
        (self.incoming / roll.rel_stem(1)).parent.mkdir(parents=True, exist_ok=True)
        if make_current:
            self.set_current(name)
        return roll

    def get(self, name: str) -> Roll:
        path = self.rolls_dir / safe_name(name) / "manifest.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise RollError(f"no roll named {name!r} in {self.rolls_dir}") from None
        except json.JSONDecodeError as exc:
            raise RollError(f"{path}: damaged manifest ({exc})") from None
        return Roll(self, data)

    def names(self) -> list[str]:
        if not self.rolls_dir.is_dir():
            return []
        return sorted(p.name for p in self.rolls_dir.iterdir() if (p / "manifest.json").is_file())

    def set_current(self, name: str) -> None:
        cur = self.rolls_dir / "current"
        tmp = self.rolls_dir / ".current.tmp"
        tmp.write_text(name + "\n")
        os.replace(tmp, cur)

    def current(self) -> Roll | None:
        try:
            name = (self.rolls_dir / "current").read_text().strip()
        except FileNotFoundError:
            return None
        return self.get(name) if name else None
