"""The print of each frame in the daemon: where it is stored, which one applies, changing it.

Three levels, the most specific wins:
1. the frame's own print, in the journal (`frames.print`, JSON; kept across restarts,
   retries and re-renders; set from the page or `set_print {path}`);
2. the roll's print, in state/rolls/<roll>/manifest.json (`print`; set by
   `station roll print` or `set_print {roll}`);
3. the station's `print:` section in the YAML.

`PrintBook.for_job(job)` is what a worker gets with each job (a dict, or None for
as-inverted).  `PrintBook.set_print(...)` is the daemon's `set_print` command: it
stores the settings, then asks `Processor.rerender` for the frame (preview first,
then master, each replacing the old output atomically) or for every frame of the
roll that has no print of its own.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from station.pipeline.printing import IDENTITY, PrintError, PrintSettings, describe

log = logging.getLogger("station.print")

MASTER_HOLD = 1.5  # s: a frame's master starts this long after its last print change's preview


class PrintBook:
    def __init__(self, cfg: dict, journal, processor):
        self.journal = journal
        self.processor = processor
        self.state = Path(cfg["paths"]["state"])
        self.incoming = Path(cfg["paths"]["incoming"])
        try:
            self.default = PrintSettings.from_dict(cfg.get("print") or {}, "print")
        except PrintError:  # validated at start-up (config.py); never here
            self.default = IDENTITY
        self._rolls: dict[str, tuple] = {}  # roll -> (manifest mtime, PrintSettings | None)

    # -- reading -------------------------------------------------------------------------------
    def frame_print(self, rel: str) -> PrintSettings | None:
        row = self.journal.get(rel)
        text = row.get("print") if row else None
        if not text:
            return None
        try:
            return PrintSettings.from_dict(json.loads(text), f"{rel}: print")
        except (ValueError, PrintError) as exc:
            log.error("%s: stored print unreadable (%s); using the roll's", rel, exc)
            return None

    def roll_print(self, roll: str | None) -> PrintSettings | None:
        """The roll's print from its manifest, cached by the manifest's mtime."""
        if not roll:
            return None
        path = self.state / "rolls" / roll / "manifest.json"
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return None
        hit = self._rolls.get(roll)
        if hit and hit[0] == mtime:
            return hit[1]
        try:
            data = json.loads(path.read_text()).get("print")
            s = PrintSettings.from_dict(data, f"roll {roll}: print") if data else None
        except (OSError, ValueError, AttributeError, PrintError) as exc:
            log.warning("roll %s: unusable print in %s (%s); using the station's", roll, path, exc)
            s = None
        self._rolls[roll] = (mtime, s)
        return s

    def effective(self, rel: str) -> tuple[PrintSettings, str]:
        """(the settings a frame is printed with, where they come from: frame | roll | station)."""
        s = self.frame_print(rel)
        if s is not None:
            return s, "frame"
        s = self.roll_print(self.processor.roll_of(rel))
        if s is not None:
            return s, "roll"
        return self.default, "station"

    def for_job(self, job) -> dict | None:
        s, _ = self.effective(job.key)
        return None if s.identity else s.to_dict()

    def get_print(self, path: str | None = None, roll: str | None = None, frame: str | None = None, **_) -> dict:
        """The `get_print` command: what the page's sliders show (`frame` = `path`)."""
        path = path or frame
        if path:
            rel = self._rel(path)
            s, source = self.effective(rel)
            return {"frame": rel, "print": s.to_dict(), "source": source, "describe": describe(s),
                    "roll": self.processor.roll_of(rel)}
        if roll:
            s = self.roll_print(roll)
            return {"roll": roll, "print": (s or self.default).to_dict(), "source": "roll" if s else "station"}
        return {"print": self.default.to_dict(), "source": "station"}

    # -- changing --------------------------------------------------------------------------------
    def _rel(self, path: str) -> str:
        if not isinstance(path, str) or not path:
            raise ValueError("set_print: which frame? (path: the frame's path in the incoming folder)")
        rel = self.processor.rel(Path(path)) if Path(path).is_absolute() else path
        if self.journal.get(rel) is None:
            raise ValueError(f"set_print: no frame {rel!r} in the journal")
        return rel

    def set_print(self, path: str | None = None, roll: str | None = None, settings: dict | None = None,
                  neutral: dict | None = None, reset: bool = False, frame: str | None = None, **extra) -> dict:
        """Store a print and re-render what it applies to.

        path (or frame): one frame (its own print); roll: the roll's print (its manifest; every frame of
        the roll without a print of its own is re-rendered).  settings: the keys to change
        over what applies now (a full or partial mapping; see printing.RANGES); reset: drop
        the frame's own print (it follows its roll again) or the roll's.  neutral: {"x", "y"}
        in 0..1 of the frame's preview: white balance from that point (`with_neutral`).
        Raises ValueError (one line) for a bad frame, roll or setting."""
        if extra:
            raise ValueError(f"set_print: unknown argument(s) {', '.join(sorted(extra))}")
        path = path or frame
        if (path is None) == (roll is None):
            raise ValueError("set_print: give either path (one frame) or roll (a whole roll)")
        if settings is not None and not isinstance(settings, dict):
            raise ValueError("set_print: settings must be a mapping of exposure, temperature, tint, contrast, black, white")
        if path is not None:
            return self._set_frame(self._rel(path), settings or {}, neutral, bool(reset))
        return self._set_roll(str(roll), settings or {}, bool(reset))

    def _merge(self, current: PrintSettings, settings: dict, where: str) -> PrintSettings:
        try:
            return PrintSettings.from_dict({**current.to_dict(), **_wb_first(settings)}, where)
        except PrintError as exc:
            raise ValueError(f"set_print: {exc}") from None

    def _set_frame(self, rel: str, settings: dict, neutral, reset: bool) -> dict:
        if reset:
            self.journal.update(rel, print=None)
            new, _ = self.effective(rel)
        else:
            new = self._merge(self.effective(rel)[0], settings, "print")
            if neutral is not None:
                new = self._neutral(rel, new, neutral)
            self.journal.update(rel, print=json.dumps(new.to_dict(), sort_keys=True))
        log.info("print %s: %s", rel, describe(new))
        from station.ingest.jobs import MASTER

        self.processor.queue.cancel(rel, MASTER)  # a master not started yet would print the old settings
        self.processor.hold_master(rel, MASTER_HOLD)
        res = self.processor.rerender(rel, "print changed")
        return {"frame": rel, "print": new.to_dict(), "describe": describe(new), "queued": res.get("queued")}

    def _set_roll(self, roll: str, settings: dict, reset: bool) -> dict:
        from station.capture.roll import RollError, RollStore

        store = RollStore(self.state, self.incoming)
        frames = [row for row in self.journal.frames() if row.get("roll") == roll]
        try:
            if roll not in store.names() and frames:
                # a folder dropped into incoming is a roll too: it gets a manifest for its print
                r = store.new(name=roll, frames=None, make_current=False)
            else:
                r = store.get(roll)
        except RollError as exc:
            raise ValueError(f"set_print: {exc}") from None
        new = None if reset else self._merge(r.print_settings() or self.default, settings, "print")
        r.set_print(new)
        self._rolls.pop(roll, None)
        frames = [row["path"] for row in frames if not row.get("print")]
        done = []
        for rel in frames:
            try:
                self.processor.rerender(rel, "roll print changed")
                done.append(rel)
            except ValueError as exc:
                log.warning("%s", exc)
        shown = new or self.default
        log.info("print of roll %s: %s (%d frames re-rendered)", roll, describe(shown), len(done))
        return {"roll": roll, "print": shown.to_dict(), "describe": describe(shown), "rerender": done}

    def _neutral(self, rel: str, current: PrintSettings, neutral) -> PrintSettings:
        """White balance that makes the preview's point (x, y) neutral."""
        try:
            x, y = float(neutral["x"]), float(neutral["y"])
        except (TypeError, KeyError, ValueError):
            raise ValueError("set_print: neutral must be {\"x\": 0..1, \"y\": 0..1} (a point of the preview)") from None
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(f"set_print: neutral point ({x:g}, {y:g}) is outside the picture (0..1)")
        row = self.journal.get(rel)
        preview = row.get("preview") if row else None
        if not preview or not Path(preview).is_file():
            raise ValueError(f"set_print: {rel} has no preview yet to pick a neutral from")
        pixel, shown_with = read_point(Path(preview), x, y)
        try:
            # the picked colour is as displayed with the print the preview was made with; keep the
            # exposure/contrast/points asked now
            picked = shown_with.with_neutral(pixel)
        except PrintError as exc:
            raise ValueError(f"set_print: {exc.problem}") from None
        return current.merged(temperature=picked.temperature, tint=picked.tint)


def _wb_first(settings: dict) -> dict:
    """`wb: "T,TINT"` in a command's settings, as temperature/tint (over the print that applies
    now); wb beside temperature or tint in the same settings is refused."""
    s = dict(settings)
    both = [k for k in ("temperature", "tint") if k in s]
    if "wb" in s and both:
        raise ValueError(f"set_print: print.wb: give wb or {' and '.join(both)}, not both")
    if "wb" in s:
        from station.pipeline.printing import parse_wb

        try:
            t, tint = parse_wb(s.pop("wb"))
        except PrintError as exc:
            raise ValueError(f"set_print: print.wb: {exc.problem}") from None
        s["temperature"] = t
        if tint is not None:
            s["tint"] = tint
    return s


def read_point(preview: Path, x: float, y: float, radius: int = 4):
    """(mean sRGB colour 0..1 of a small patch of the station's own preview JPEG at (x, y),
    the print it was made with, from its EXIF description)."""
    import numpy as np
    from PIL import Image, ImageOps

    with Image.open(preview) as im:
        desc = im.getexif().get(270)
        im = ImageOps.exif_transpose(im).convert("RGB")
        a = np.asarray(im, np.float64) / 255.0
    h, w = a.shape[:2]
    cx, cy = min(w - 1, int(x * w)), min(h - 1, int(y * h))
    patch = a[max(0, cy - radius):cy + radius + 1, max(0, cx - radius):cx + radius + 1].reshape(-1, 3)
    shown = IDENTITY
    if desc:
        try:
            shown = PrintSettings.from_dict(json.loads(desc).get("station_print") or {})
        except (ValueError, PrintError, AttributeError):
            shown = IDENTITY
    return patch.mean(axis=0), shown
