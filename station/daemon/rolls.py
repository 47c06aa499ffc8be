"""The daemon's roll analysis: each folder under incoming is a roll with one rendering.

Early frames are made with what is known: the roll's calibrated blank (`station roll
calibrate`) if any, else each frame's own base and normaliser.  Every preview's worker also
returns the frame's small density sample (pipeline/roll.py `FrameSample`: block means of the
picture's centre and its rebate estimate; the daemon never parses a RAW itself).  The roll's
`RollAccumulator` gathers them; when the analysis settles (it moved by less than
`roll.SETTLE` over two frames, with at least three frames) or the roll is complete (its
manifest's `frames_expected`), the rendering is locked, kept in `<state>/renderings/<roll>.json`
(so a restart keeps it), used for every later job of the roll, and the frames made before
are re-rendered (`Processor.rerender`: outputs replaced atomically, the RAW only read).
A roll with `film: auto` is one film too: each preview returns the type it detected with its
sample, the votes settle the roll's type with the lock (logged `roll R: film type bw (auto:
...)`, kept in the rendering's "film"), and from then on every frame is rendered with it; the
frames made before (each with its own detection) are re-rendered with the rest.
The journal's `rendering` column says which rendering each frame's master has ("frame" for
a per-frame one).

The samples of a roll whose analysis has not locked yet are kept in
`<state>/renderings/<roll>.samples.npz` (removed when it locks), so a restart goes on with them,
and the analysis' estimate so far in `<state>/renderings/<roll>.provisional.json` ("locked":
false; removed when it locks): what the live positive (station.capture.live) renders the live
view with until then, the nearest guess of how the roll's frames will look.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import numpy as np

from station.ingest.jobs import PREVIEW

log = logging.getLogger("station.frames")


class RollRenderings:
    def __init__(self, state: Path, settings: dict, manifest, enabled: bool = True):
        """`manifest(roll) -> dict` (the roll's manifest, {} when none); `settings`: the workers'
        (method, model) so the analysis uses the same inverter's frame_affine."""
        self.dir = Path(state) / "renderings"
        self.settings = settings
        self.manifest = manifest
        self.enabled = enabled
        self._acc: dict = {}
        self._locked: dict = {}
        self._inverter = None
        self._lock = threading.Lock()

    # -- what a job is made with -------------------------------------------------------------
    def locked(self, roll: str | None):
        """The roll's locked Rendering, or None."""
        if not roll or not self.enabled:
            return None
        with self._lock:
            if roll in self._locked:
                return self._locked[roll]
            r = self._load(roll)
            self._locked[roll] = r
            return r

    def job_settings(self, roll: str | None, stage: str) -> dict:
        """{"rendering": dict | None, "sample": bool} for a job's message to its worker."""
        r = self.locked(roll)
        if r is not None:
            return {"rendering": r.to_dict(), "sample": False}
        return {"rendering": None, "sample": bool(roll) and self.enabled and stage == PREVIEW}

    # -- results ----------------------------------------------------------------------------
    def add(self, roll: str | None, rel: str, res: dict, blank_rgb=None):
        """A preview's result: feed its sample to the roll's analysis.  Returns the Rendering
        when this frame locked it (the caller re-renders the roll's earlier frames), else None."""
        from station.pipeline.base import BaseEstimate
        from station.pipeline.roll import FrameSample, RollAccumulator

        if not roll or not self.enabled or not res.get("sample") or self.locked(roll) is not None:
            return None
        try:
            sample = FrameSample.from_dict(res["sample"])
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("roll %s: %s: unusable analysis sample (%s)", roll, rel, exc)
            return None
        man = self.manifest(roll) or {}
        blank = blank_rgb or ((man.get("base") or {}).get("rgb"))
        blank = BaseEstimate(np.asarray(blank, np.float32), "blank frame") if blank else None
        n = man.get("frames_expected")
        expected = n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else None
        with self._lock:
            acc = self._acc.get(roll)
            if acc is None:
                try:
                    from station.pipeline.films import INVERTERS

                    film = man.get("film")  # a bw or slide roll: its film's normaliser; auto: the votes'
                    film = film if film in ("colour", "bw", "slide", "auto") else None
                    inv = INVERTERS[film]() if film in INVERTERS else self._get_inverter()
                except Exception as exc:  # the workers report an unusable model; the analysis just stops
                    log.warning("roll %s: no roll analysis (%s)", roll, exc)
                    self.enabled = False
                    return None
                acc = self._acc[roll] = RollAccumulator(inv, blank=blank, expected=expected, film=film)
                for key, old in self._load_samples(roll).items():  # frames seen before a restart
                    acc.samples[key] = old
            acc.blank, acc.expected = blank, expected
            try:
                acc.add(rel, sample)
            except Exception as exc:  # an analysis bug must never stop the frames
                log.warning("roll %s: roll analysis failed on %s (%s: %s)", roll, rel, exc.__class__.__name__, exc)
                return None
            if not acc.locked or acc.rendering is None:
                self._save_samples(roll, acc.samples)
                if acc.rendering is not None:  # the estimate so far, for the live positive
                    self._save(roll, acc.rendering, self._provisional_path(roll))
                return None
            r = acc.rendering
            self._locked[roll] = r
            del self._acc[roll]
        self._save(roll, r)
        self._samples_path(roll).unlink(missing_ok=True)
        self._provisional_path(roll).unlink(missing_ok=True)
        log.info("roll %s: rendering %s locked (%d frames analysed, base from %s)", roll, r.id, r.frames,
                 r.base_source)
        if acc.auto:
            log.info("roll %s: film type %s (auto: %s)", roll, r.film, acc.film_why)
        return r

    def snapshot(self) -> dict:
        """{roll: {"rendering": id, "locked": bool, "frames": n, "film": type}} for `station status
        --json`; "film": the type the rendering renders every frame with (settled by a `film:
        auto` roll's lock; while it has not locked, the votes' lead), None for colour by default."""
        with self._lock:
            out = {roll: {"rendering": r.id, "locked": True, "frames": r.frames, "film": r.film}
                   for roll, r in self._locked.items() if r is not None}
            for roll, acc in self._acc.items():
                out[roll] = {"rendering": acc.rendering.id if acc.rendering else None, "locked": False,
                             "frames": len(acc.samples), "film": acc.film}
        return out

    # -- persistence -------------------------------------------------------------------------
    def _path(self, roll: str) -> Path:
        return self.dir / f"{roll}.json"

    def _load(self, roll: str):
        from station.pipeline.roll import Rendering

        p = self._path(roll)
        try:
            return Rendering.from_dict(json.loads(p.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("roll %s: unreadable rendering %s (%s); analysing the roll again", roll, p, exc)
            return None

    def _save(self, roll: str, r, p: Path | None = None) -> None:
        p = self._path(roll) if p is None else p
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(r.to_dict(), indent=1))
            os.replace(tmp, p)
        except OSError as exc:
            log.warning("roll %s: could not keep the rendering in %s (%s)", roll, p, exc)

    def _provisional_path(self, roll: str) -> Path:
        return self.dir / f"{roll}.provisional.json"

    def _samples_path(self, roll: str) -> Path:
        return self.dir / f"{roll}.samples.npz"

    def _save_samples(self, roll: str, samples: dict) -> None:
        """The samples of a roll whose analysis has not locked yet, so a restart goes on with them."""
        p = self._samples_path(roll)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            keys = list(samples)
            index = [{"key": k, "n": int(len(samples[k].rgb)), "film": samples[k].film,
                      "rebate": None if samples[k].rebate is None else
                      {"rgb": samples[k].rebate.as_list(), "source": samples[k].rebate.source}} for k in keys]
            rgb = np.concatenate([samples[k].rgb for k in keys]).astype(np.float32) if keys else np.zeros((0, 3))
            tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as fh:
                np.savez(fh, rgb=rgb, index=np.asarray(json.dumps(index)))
            os.replace(tmp, p)
        except OSError as exc:
            log.warning("roll %s: could not keep the analysis samples in %s (%s)", roll, p, exc)

    def _load_samples(self, roll: str) -> dict:
        from station.pipeline.roll import FrameSample

        p = self._samples_path(roll)
        out = {}
        try:
            with np.load(p, allow_pickle=False) as z:
                rgb, index = z["rgb"], json.loads(str(z["index"]))
            at = 0
            for e in index:
                n = int(e["n"])
                out[str(e["key"])] = FrameSample.from_dict({"rgb": rgb[at:at + n], "rebate": e["rebate"],
                                                            "film": e.get("film")})
                at += n
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("roll %s: unreadable analysis samples %s (%s); starting the analysis again", roll, p, exc)
            return {}
        return out

    def _get_inverter(self):
        if self._inverter is None:
            from station.pipeline.invert import get_inverter

            method = self.settings.get("method")
            self._inverter = get_inverter(None if method in (None, "auto") else method, self.settings.get("model"))
        return self._inverter
