"""What the station has already taken from each camera's card, kept across restarts.

Without it, a restarted station cannot tell a frame it downloaded yesterday
from one the camera made while the station was down (or killed between the
shot and the download): both are just "on the card".  The record answers that
question per camera:

* a camera the record has never seen: what is on its card now is recorded as
  the *baseline* (old photos on the card are not the roll) and not downloaded;
* a camera it knows: every file on the card that is not in the record is new
  and is downloaded; every file in the record is left alone.

A file is recorded by folder and name together with the size and the
modification time the camera reports for it, so a reformatted card whose
new frames reuse old names (DSC_0001 again) is still downloaded: same name,
different size or time, a different file.

Storage: an append-only JSON-lines file (one line per change, flushed and
fsynced), compacted when it is loaded.  A download is first recorded as
*pending* with its target path, then as *taken* once the file is in place;
a pending entry found at load time counts as taken if its file is there with
the recorded content fingerprint (the station was killed between the two lines), otherwise
it is forgotten and the frame is downloaded again.  A torn last line (killed
mid-write) is ignored.  `path=None` keeps the record in memory only (the
previous behaviour: the first connect of each process is the baseline).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from pathlib import Path

log = logging.getLogger("station.capture")

Key = tuple[str, str]  # (folder, name)
Stamp = tuple[int | None, int | None]  # (size, mtime) as the camera reports them; None = unknown


def same_file(recorded: Stamp, now: Stamp) -> bool:
    """True if a card file with stamp `now` is the one recorded with `recorded`.

    Only fields known on both sides are compared; with none to compare, a file
    of the same folder and name counts as the same file (never a duplicate).
    Cameras store local time without a zone and libgphoto2 converts it with the
    station's zone, so after a daylight-saving change (or a new TZ) every file
    reports a time shifted by whole quarter hours: with the same known size,
    such a shift (up to 15 h) is the same file, not a reformatted card."""
    (s0, t0), (s1, t1) = recorded, now
    if s0 is not None and s1 is not None and s0 != s1:
        return False
    if t0 is not None and t1 is not None and t0 != t1:
        dt = abs(t1 - t0)
        if not (s0 is not None and s0 == s1 and dt % 900 == 0 and dt <= 15 * 3600):
            return False
    return True


class CardRecord:
    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._cams: dict[str, dict[Key, Stamp]] = {}
        self._fh = None
        if self.path is not None:
            self._load()

    # ------------------------------------------------------------------ queries
    def knows(self, camera: str) -> bool:
        """True once a baseline (or any file) was recorded for this camera."""
        with self._lock:
            return camera in self._cams

    def is_taken(self, camera: str, folder: str, name: str, stamp: Stamp | None = None) -> bool:
        """Was this card file already downloaded (or recorded as baseline)?

        `stamp=None`: decide by folder and name alone."""
        with self._lock:
            got = self._cams.get(camera, {}).get((folder, name))
        if got is None:
            return False
        return stamp is None or same_file(got, stamp)

    def has_name(self, camera: str, folder: str, name: str) -> bool:
        with self._lock:
            return (folder, name) in self._cams.get(camera, {})

    def count(self, camera: str | None = None) -> int:
        with self._lock:
            if camera is not None:
                return len(self._cams.get(camera, {}))
            return sum(len(v) for v in self._cams.values())

    # ------------------------------------------------------------------ changes
    def baseline(self, camera: str, files: list[tuple[str, str, Stamp]]) -> None:
        """Record what is on a camera's card the first time the station meets it."""
        with self._lock:
            entries = self._cams.setdefault(camera, {})
            lines = [{"op": "camera", "cam": camera}]
            for folder, name, stamp in files:
                entries[(folder, name)] = stamp
                lines.append(self._line("base", camera, folder, name, stamp))
            self._append(lines)

    def pending(self, camera: str, folder: str, name: str, stamp: Stamp, target: Path, data: bytes) -> None:
        """About to put this card file (`data`) in place at `target` (see the module docstring)."""
        with self._lock:
            self._append([dict(self._line("pending", camera, folder, name, stamp), p=str(target),
                               fp=fingerprint(data))])

    def taken(self, camera: str, folder: str, name: str, stamp: Stamp, how: str = "taken") -> None:
        """The card file is downloaded (or deliberately left: `how` says why)."""
        with self._lock:
            self._cams.setdefault(camera, {})[(folder, name)] = stamp
            self._append([dict(self._line("taken", camera, folder, name, stamp), how=how)])

    def forget(self, camera: str, folder: str, name: str) -> None:
        """The file was deleted from the card (a later file of that name is new)."""
        with self._lock:
            if self._cams.get(camera, {}).pop((folder, name), None) is not None:
                self._append([{"op": "del", "cam": camera, "f": folder, "n": name}])

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    # ------------------------------------------------------------------ storage
    @staticmethod
    def _line(op, camera, folder, name, stamp) -> dict:
        return {"op": op, "cam": camera, "f": folder, "n": name, "s": stamp[0], "t": stamp[1]}

    def _append(self, lines: list[dict]) -> None:
        if self.path is None or not lines:
            return
        try:
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                torn = False
                try:
                    with open(self.path, "rb") as fh:
                        fh.seek(-1, os.SEEK_END)
                        torn = fh.read(1) != b"\n"  # a line cut short by a kill: start a fresh one
                except OSError:
                    pass
                self._fh = open(self.path, "a", encoding="utf-8")
                if torn:
                    self._fh.write("\n")
            self._fh.write("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as exc:
            # A full disk must not stop the camera: the record is then only in memory until
            # the next successful write (the worst case after a restart is a duplicate).
            log.warning("camera: cannot write the card record %s: %s", self.path, exc.strerror or exc)
            if self._fh is not None:
                try:
                    self._fh.close()
                except OSError:
                    pass
                self._fh = None

    def _load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("camera: cannot read the card record %s: %s; starting a new one", self.path, exc)
            return
        pend: dict[tuple[str, Key], tuple[Stamp, str, str]] = {}
        lines = text.splitlines()
        for i, raw in enumerate(lines):
            try:
                x = json.loads(raw)
                op, cam = x["op"], x["cam"]
            except (ValueError, KeyError, TypeError):
                if i != len(lines) - 1:  # a torn LAST line is a kill mid-write; anything else is worth a word
                    log.warning("camera: %s line %d unreadable; skipped", self.path, i + 1)
                continue
            if op == "camera":
                self._cams.setdefault(cam, {})
                continue
            key = (x.get("f", ""), x.get("n", ""))
            stamp = (x.get("s"), x.get("t"))
            if op in ("base", "taken"):
                self._cams.setdefault(cam, {})[key] = stamp
                pend.pop((cam, key), None)
            elif op == "pending":
                pend[(cam, key)] = (stamp, x.get("p", ""), x.get("fp", ""))
            elif op == "del":
                self._cams.get(cam, {}).pop(key, None)
        for (cam, key), (stamp, target, fp) in pend.items():
            if _placed(target, fp):
                log.info("camera: %s/%s was put in place as %s before the station stopped; recorded as taken",
                         key[0], key[1], target)
                self._cams.setdefault(cam, {})[key] = stamp
        self._compact(len(lines))

    def _compact(self, n_lines: int) -> None:
        live = 1 + sum(1 + len(v) for v in self._cams.values())
        if n_lines <= 2 * live + 64:
            return
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                for cam, entries in self._cams.items():
                    fh.write(json.dumps({"op": "camera", "cam": cam}, ensure_ascii=False) + "\n")
                    for (folder, name), stamp in entries.items():
                        fh.write(json.dumps(self._line("taken", cam, folder, name, stamp), ensure_ascii=False) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("camera: cannot compact the card record %s: %s", self.path, exc)
            try:
                tmp.unlink()
            except OSError:
                pass


def fingerprint(data: bytes) -> str:
    """A cheap content fingerprint: the size and three 64 KiB samples (start, middle, end)."""
    n = len(data)
    h = hashlib.blake2b(str(n).encode(), digest_size=16)
    for off in (0, max(0, n // 2 - 32768), max(0, n - 65536)):
        h.update(data[off:off + 65536])
    return h.hexdigest()


def _placed(target: str, fp: str) -> bool:
    """Is the file of a pending download in place (at its name, or a no-clobber '-N' variant of it)?"""
    if not target or not fp:
        return False
    p = Path(target)
    cands = [p]
    if p.parent.is_dir():
        pat = re.compile(re.escape(p.stem) + r"-\d+" + re.escape(p.suffix) + "$")
        cands += [q for q in p.parent.iterdir() if pat.match(q.name)]
    for q in cands:
        try:
            if fingerprint(q.read_bytes()) == fp:
                return True
        except OSError:
            continue
    return False
