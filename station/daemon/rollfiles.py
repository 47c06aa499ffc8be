"""What the daemon reads from a roll's state folder (state/rolls/<roll>/), for its jobs.

    files = RollFiles(state)
    files.manifest(roll) -> dict     manifest.json ({} when none or unreadable), cached by mtime
    files.base(roll) -> [r, g, b] | None    its calibrated blank frame (`station roll calibrate`)
    files.flatfield(roll) -> str | None     its saved flat field (`station roll flatfield`)
    roll_of(rel) -> str | None       a frame's roll: the first folder of its path under incoming

Only reads; the camera service and `station roll` write these files (capture/roll.py).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger("station.frames")


def roll_of(rel: str) -> str | None:
    parts = Path(rel).parts
    return parts[0] if len(parts) > 1 else None


class RollFiles:
    def __init__(self, state: Path):
        self.state = Path(state)
        self._manifests: dict[str, tuple] = {}  # roll -> (manifest mtime, manifest dict)

    def manifest(self, roll: str) -> dict:
        """state/rolls/<roll>/manifest.json ({} when none), cached by its mtime."""
        path = self.state / "rolls" / roll / "manifest.json"
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return {}
        cached = self._manifests.get(roll)
        if cached and cached[0] == mtime:
            return cached[1]
        try:
            data = json.loads(path.read_text())
            data = data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            log.warning("roll %s: unreadable manifest %s; estimating the base per frame", roll, path)
            data = {}
        self._manifests[roll] = (mtime, data)
        return data

    def base(self, roll: str | None):
        """[r, g, b] from the roll's manifest (its calibrated blank), or None."""
        if not roll:
            return None
        try:
            rgb = (self.manifest(roll).get("base") or {}).get("rgb")
            return [float(v) for v in rgb] if rgb and len(rgb) == 3 and all(v > 0 for v in rgb) else None
        except (ValueError, TypeError, AttributeError):
            log.warning("roll %s: unreadable base in its manifest; estimating the base per frame", roll)
            return None

    def flatfield(self, roll: str | None) -> str | None:
        """The roll's saved flat field (state/rolls/<roll>/flatfield-*.npz) as a path for the
        worker, or None (the station's, if configured, is used)."""
        if not roll:
            return None
        name = (self.manifest(roll).get("flatfield") or {}).get("npz")
        if not isinstance(name, str) or "/" in name or "\\" in name:
            return None
        path = self.state / "rolls" / roll / name
        return str(path) if path.is_file() else None
