"""From a complete file to journal rows and jobs, and from results back.

`Processor.submit(path, t_complete)` is called for every complete file (from
events, the start-up rescan and the periodic rescan; calling it twice for the
same file is harmless).  It consults the journal:
- no row, or the file changed since its row: record `seen`, queue the preview;
- `seen`: queue the preview (outputs that already exist are kept: they are
  atomic, so they are complete);
- `preview_written`: queue the master;
- `master_written`: nothing (done);
- `failed`: nothing, unless the file changed since (then it is new content)
  or `retry` asked for it (then its own old outputs are re-made from the bytes
  now on disk).
Frames are queued at most once per stage (JobQueue's key set); a file that
completes again while its frame is in progress is taken again afterwards.

RAW+JPEG (`station.ingest.pairs`): a camera JPEG is never inverted when its RAW
lies beside it.  A JPEG with no RAW yet waits `watcher.stable_seconds` for one;
a RAW that arrives after its JPEG was converted takes the frame over (the
JPEG's positives are removed, the RAW's written).

A decode failure of a file that is still being written (it changed since it
was taken, or changes within `watcher.stable_seconds` of the failure) is not
a failure: the frame waits for the file's next completion.  `tick()` (called
from the daemon's main loop) runs these timers.

`Processor.rerender(key, reason)` sends a frame that was already processed
through the pipeline again and replaces its outputs (see its docstring).
"""
from __future__ import annotations

import functools
import json
import logging
import threading
import time
from pathlib import Path

from station.boundary import FrameView
from station.daemon.rollfiles import RollFiles, roll_of
from station.daemon.rolls import RollRenderings
from station.ingest import pairs
from station.ingest.jobs import MASTER, PREVIEW, Job, JobQueue
from station.journal import Journal

log = logging.getLogger("station.frames")

SUFFIX = {"preview": ".preview.jpg", "tiff": ".tif", "jpeg": ".jpg"}
PREVIEW_KINDS = ("preview",)
MASTER_KINDS = ("tiff", "jpeg")


def _locked(fn):
    """Intake (main loop, control socket) and results (worker slots) run on different threads."""
    @functools.wraps(fn)
    def wrapper(self, *a, **kw):
        with self._lock:
            return fn(self, *a, **kw)
    return wrapper


class Processor:
    def __init__(self, cfg: dict, journal: Journal, queue: JobQueue, publish=lambda ev: None):
        self.cfg = cfg
        self.incoming: Path = cfg["paths"]["incoming"]
        self.output: Path = cfg["paths"]["output"]
        self.naming: str = cfg["outputs"]["naming"]
        self.formats = list(cfg["outputs"]["formats"])
        self.journal = journal
        self.queue = queue
        self.publish = publish
        self.preview_kinds = [k for k in PREVIEW_KINDS if k in self.formats]
        self.master_kinds = [k for k in MASTER_KINDS if k in self.formats]
        self.stages = ([PREVIEW] if self.preview_kinds else []) + ([MASTER] if self.master_kinds else [])
        self._bases: dict[str, list] = {}  # frame -> base of its preview, for its master
        self.state = Path(cfg["paths"]["state"])
        self.last_positive: str | None = None
        self.last_frame: FrameView | None = None
        self._rerender_after: dict[str, str] = {}  # frame in progress -> reason of a re-render asked meanwhile
        self.window = float(cfg["watcher"]["stable_seconds"])  # JPEG's wait for its RAW; decode-failure grace
        self._again: dict[str, tuple] = {}  # rel -> (path, t_complete, force, wait_for_rel): completed while busy
        self._held: dict[str, tuple] = {}  # camera JPEG rel -> (path, t_complete, until): waiting for its RAW
        self._suspect: dict[str, dict] = {}  # rel -> decode failure held while the file may still be written
        self._paired: set[str] = set()  # camera JPEGs already said to be set aside for their RAW
        self._lock = threading.RLock()
        self._master_hold: dict[str, float] = {}  # frame -> seconds its next master waits after its preview
        self._hold_gen: dict[str, int] = {}
        inv = cfg.get("inversion") or {}
        self.roll_files = RollFiles(self.state)
        self.manifest = self.roll_files.manifest  # state/rolls/<roll>/manifest.json, cached
        self.rolls = RollRenderings(self.state, {"method": inv.get("method"), "model": inv.get("model")},
                                    manifest=self.manifest, enabled=bool(inv.get("roll", True)))

    # -- naming ----------------------------------------------------------------
    def rel(self, path: Path) -> str:
        return Path(path).resolve().relative_to(self.incoming).as_posix() if Path(path).is_absolute() else str(path)

    def outputs_for(self, rel: str) -> dict[str, str]:
        p = Path(rel)
        d = p.parent.as_posix()
        d = "" if d == "." else d
        base = self.naming.format(dir=d, stem=p.stem, name=p.name, ext=p.suffix.lstrip("."),
                                  roll=(p.parts[0] if len(p.parts) > 1 else ""))
        base = "/".join(x for x in base.split("/") if x not in ("", "."))
        return {k: str(self.output / (base + SUFFIX[k])) for k in self.formats}

    roll_of = staticmethod(roll_of)

    # -- intake ------------------------------------------------------------------
    @_locked
    def submit(self, path: Path, t_complete: float, force: bool = False, hold: bool = True,
               retry: bool = False) -> str:
        """Take a complete file.  Returns what was done (for logs and tests)."""
        path = Path(path)
        rel = self.rel(path)
        try:
            st = path.stat()
        except FileNotFoundError:
            self._held.pop(rel, None)
            row = self.journal.get(rel)
            if row is not None and row["state"] in ("seen", "preview_written"):
                self._fail(rel, "file disappeared before it was processed (deleted while queued)", PREVIEW)
                return "failed"
            return "gone"
        if self.queue.busy(rel):
            self._again[rel] = (path, t_complete, force, None)
            return "busy"
        row = self.journal.get(rel)
        if pairs.is_camera_jpeg(path) and not retry:
            raw = pairs.raw_sibling(path)
            if raw is not None:
                self._set_aside(rel, raw)
                return "ignored"
            if row is None and hold and self.window > 0:  # its RAW may be on its way
                self._held.setdefault(rel, (path, t_complete, time.monotonic() + self.window))
                return "held"
        elif pairs.is_raw(path):
            for jpeg in pairs.jpeg_siblings(path):
                r = self._take_over(rel, self.rel(jpeg), path, t_complete, force)
                if r:
                    return r
        changed = row is not None and (row["size"] != st.st_size or abs((row["mtime"] or 0) - st.st_mtime) > 1e-6)
        s = self._suspect.get(rel)
        if s is not None:
            if not changed and not force:
                return "waiting"  # a decode failure held: the same bytes again change nothing
            del self._suspect[rel]
        outputs = self.outputs_for(rel)
        if row is not None and not changed and row["state"] in ("seen", "preview_written") and \
                any(row[k] != outputs[k] for k in self.formats):
            force = True  # a frame without its own outputs recorded is never resumed as if it had them
        if row is None or changed or force:
            if row is not None and changed and row["state"] == "master_written":
                # the same name with new content: never overwrite the old positives
                self.journal.update(rel, state="failed", size=st.st_size, mtime=st.st_mtime,
                                    reason="file changed after it was processed (outputs not overwritten)",
                                    stage=PREVIEW, updated=time.time())
                log.error("FAILED %s: file changed after it was processed (outputs not overwritten)", rel)
                self._emit(rel)
                return "failed"
            clash = self._clash(rel, outputs)
            if clash:
                self.journal.seen(rel, size=st.st_size, mtime=st.st_mtime, t_complete=t_complete, roll=self.roll_of(rel))
                self._fail(rel, clash, PREVIEW)
                return "failed"
            own = tuple(k for k in self.formats if row is not None and row[k] == outputs[k]) if retry else ()
            row = self.journal.seen(rel, size=st.st_size, mtime=st.st_mtime, t_complete=t_complete,
                                    roll=self.roll_of(rel), outputs=outputs)
            if own and set(own) == set(self.formats):
                # retry: this frame's own outputs are re-made from the bytes now on disk (the
                # journal's `rerender` mark: a daemon restarted meanwhile still replaces them)
                row = self.journal.update(rel, rerender="retry")
            log.info("seen %s", rel)
            self._emit(rel)
        state = row["state"]
        over = bool(row.get("rerender"))  # a re-render in progress (also after a restart): replace outputs
        if state == "seen":
            return self._queue_first(rel, path, outputs, row["t_complete"] or t_complete, over)
        if state == "preview_written":
            if not self.master_kinds:
                return "done"
            self.queue.put(MASTER, rel, str(path), {k: outputs[k] for k in self.master_kinds},
                           row["t_complete"] or t_complete, order=row["id"], overwrite=over)
            return "master"
        return state  # master_written / failed: nothing to do

    def _queue_first(self, rel, path, outputs, t_complete, overwrite: bool = False) -> str:
        row = self.journal.get(rel)
        if self.preview_kinds:
            self.queue.put(PREVIEW, rel, str(path), {k: outputs[k] for k in self.preview_kinds}, t_complete,
                           order=row["id"], overwrite=overwrite)
            return "preview"
        self.queue.put(MASTER, rel, str(path), {k: outputs[k] for k in self.master_kinds}, t_complete,
                       order=row["id"], overwrite=overwrite)
        return "master"

    # -- RAW+JPEG ------------------------------------------------------------------
    def _set_aside(self, rel: str, raw: Path) -> None:
        self._held.pop(rel, None)
        if rel not in self._paired:
            self._paired.add(rel)
            log.info(pairs.pair_message(rel, raw, "not inverted (the RAW is; the JPEG is left as it is)"))

    def waiting(self, rel: str) -> bool:
        """True for a file the processor already holds: a camera JPEG waiting for its RAW, or
        one set aside whose RAW is still beside it (rescans skip these)."""
        return rel in self._held or (rel in self._paired and pairs.raw_sibling(self.incoming / rel) is not None)

    def _take_over(self, rel: str, jrel: str, path: Path, t_complete: float, force: bool) -> str | None:
        """A RAW whose camera JPEG is held, queued or done: the RAW takes the frame."""
        if jrel in self._held:
            self._set_aside(jrel, path)
        jrow = self.journal.get(jrel)
        if jrow is None:
            return None
        if self.queue.busy(jrel):  # the JPEG is being converted: the RAW follows it
            self._again[rel] = (path, t_complete, force, jrel)
            return "waiting"
        removed = []
        for kind in ("preview", "tiff", "jpeg"):
            out = jrow.get(kind)
            if out and Path(out).exists():
                try:
                    Path(out).unlink()
                    removed.append(Path(out).name)
                except OSError as exc:
                    log.warning("%s: cannot remove %s: %s", jrel, out, exc.strerror)
        self.journal.delete(jrel)
        self._suspect.pop(jrel, None)
        self._bases.pop(jrel, None)
        self._paired.add(jrel)
        log.info(pairs.pair_message(jrel, path, "the RAW takes its place"
                                    + (f" (the JPEG's positives {', '.join(removed)} removed)" if removed else "")))
        return None

    # -- timers (the daemon's main loop) --------------------------------------------
    @_locked
    def tick(self, now: float | None = None) -> None:
        """Re-take files that completed while busy, release camera JPEGs whose RAW did not
        come, and report decode failures whose file held still."""
        now = time.monotonic() if now is None else now
        for rel, (path, t_complete, force, wait) in list(self._again.items()):
            if self.queue.busy(rel) or (wait and self.queue.busy(wait)):
                continue
            del self._again[rel]
            self.submit(path, t_complete, force=force)
        for rel, (path, t_complete, until) in list(self._held.items()):
            if now >= until:
                del self._held[rel]
                self.submit(path, t_complete, hold=False)
        for rel, s in list(self._suspect.items()):
            if now < s["until"] or self.queue.busy(rel):
                continue
            del self._suspect[rel]
            try:
                st = (self.incoming / rel).stat()
                same = (st.st_size, st.st_mtime) == (s["size"], s["mtime"])
            except OSError:
                same = True  # gone after failing: the failure stands
            if same:
                self._fail(rel, s["reason"], s["stage"])

    def _still_being_written(self, job: Job, res: dict) -> bool:
        """A failed job whose file is still being written (it changed since it was taken,
        or a decode failure that may be a partial file): not a failure yet."""
        rel = job.key
        row = self.journal.get(rel)
        try:
            st = Path(job.src).stat()
        except OSError:
            return False
        if row is None:
            return False
        if row["size"] != st.st_size or abs((row["mtime"] or 0) - st.st_mtime) > 1e-6:
            self._suspect.pop(rel, None)
            log.info("%s changed while it was being converted: still being written, waiting for it", rel)
            return True  # its next completion takes it again (see submit/_again)
        if res.get("kind") != "DecodeError" or self.window <= 0:
            return False
        s = self._suspect.get(rel)
        if s is None or (s["size"], s["mtime"]) != (st.st_size, st.st_mtime):
            self._suspect[rel] = {"size": st.st_size, "mtime": st.st_mtime, "reason": res.get("reason") or "unknown error",
                                  "stage": job.stage, "until": time.monotonic() + self.window}
            log.info("%s: %s; waiting %.1f s in case it is still being written", rel, res.get("reason"), self.window)
        return True

    def _clash(self, rel: str, outputs: dict) -> str | None:
        for kind, out in outputs.items():
            owner = self.journal.output_owner(kind if kind != "preview" else "preview", out)
            if owner and owner != rel:
                return f"output name {Path(out).name} already belongs to {owner} (not overwriting)"
        return None

    @_locked
    def retry(self, paths: list[str] | None = None) -> list[str]:
        """Failed frames taken again from the bytes now on disk: every check is made again
        (a name clash fails again) and the frame's own old outputs are re-made."""
        done = self.journal.reset_failed(paths)
        for rel in done:
            log.info("retry %s", rel)
            self._suspect.pop(rel, None)
            self._emit(rel)  # the page and the hooks see it queued again
            self.submit(self.incoming / rel, time.time(), force=True, retry=True)
        return done

    @_locked
    def rerender(self, key: str, reason: str = "re-render") -> dict:
        """Make a frame's positives again from its RAW with the current settings.

        `key`: the frame's journal path (relative to the incoming folder) or the RAW's
        absolute path under it.  `reason`: one line for the log and the journal (e.g.
        "roll analysis settled", "print settings changed").

        The preview, then the master, are re-made by the worker processes (the roll's
        calibrated base, the current inverter), each REPLACING the frame's existing output
        atomically (dot-temporary, then rename over it): the old file stays whole until
        the new one is complete, and stays if the re-render fails.  Only the station's
        own outputs of this frame are replaced (the paths the journal records for it,
        under the output folder); the RAW is only read.  The journal goes back to `seen`
        with `rerender` = reason (cleared when the master is written; a daemon restarted
        meanwhile resumes the re-render), and the frame's events are published as for a
        new frame, so the page shows it going through again.

        A frame being processed right now is re-rendered once its current job is done.
        Returns {"frame", "queued": "preview" | "master" | "after the current job"};
        raises ValueError (one line) for an unknown frame, a RAW that is gone, or an
        output that belongs to another frame.  Thread-safe (called from the control
        socket, the web page, and other services: roll analysis, print settings).
        """
        rel = self.rel(Path(key)) if Path(key).is_absolute() else str(key)
        row = self.journal.get(rel)
        if row is None:
            raise ValueError(f"re-render: no frame {rel!r} in the journal")
        src = self.incoming / rel
        if not src.is_file():
            raise ValueError(f"re-render: {rel}: the RAW is no longer in the incoming folder")
        outputs = self.outputs_for(rel)
        out_root = Path(self.output).resolve()
        for kind, out in outputs.items():
            p = Path(out).resolve()
            if not p.is_relative_to(out_root) or p == src.resolve():
                raise ValueError(f"re-render: {rel}: output {out} is not under the output folder (not overwriting)")
        clash = self._clash(rel, outputs)
        if clash:
            raise ValueError(f"re-render: {rel}: {clash}")
        if self.queue.busy(rel):
            self._rerender_after[rel] = reason
            log.info("re-render %s (%s): after the job in progress", rel, reason)
            return {"frame": rel, "queued": "after the current job"}
        self.journal.rerender(rel, reason)
        self.journal.update(rel, preview=outputs.get("preview"), tiff=outputs.get("tiff"), jpeg=outputs.get("jpeg"))
        self._bases.pop(rel, None)
        log.info("re-render %s (%s)", rel, reason)
        self._emit(rel)
        return {"frame": rel, "queued": self.submit(src, time.time())}

    def hold_master(self, rel: str, seconds: float) -> None:
        """The master of the frame's next preview waits `seconds` (adjustments come in bursts: the
        preview follows each at once, the master only the last).  A restart meanwhile queues it
        at once (the journal says preview_written, re-render pending)."""
        self._master_hold[rel] = float(seconds)

    def _release_master(self, rel: str, gen: int) -> None:
        if self._hold_gen.get(rel) != gen:
            return  # a later preview holds its own master
        row = self.journal.get(rel)
        if row is None or row["state"] != "preview_written" or self.queue.busy(rel) or not self.master_kinds:
            return
        outputs = self.outputs_for(rel)
        self.queue.put(MASTER, rel, str(self.incoming / rel), {k: outputs[k] for k in self.master_kinds},
                       row["t_complete"] or time.time(), order=row["id"], overwrite=bool(row.get("rerender")))

    def _rerender_pending(self, job: Job) -> None:
        """The frame's last job is done: a re-render asked while it ran starts now."""
        reason = self._rerender_after.pop(job.key, None)
        if reason is not None:
            self.queue.done(job)  # (the pool calls it again after on_result: harmless)
            rel = job.key
            try:
                self.rerender(rel, reason)
            except ValueError as exc:
                log.error("%s", exc)

    # -- results -------------------------------------------------------------------
    def base_for(self, job: Job):
        """The film base a job inverts with: the master reuses its preview's; otherwise the
        roll's calibrated blank frame (`station roll calibrate`), else None (per-frame estimate)."""
        if job.stage == MASTER and job.key in self._bases:
            return self._bases[job.key]
        return self.roll_base(job.key)

    def roll_base(self, rel: str):
        """[r, g, b] of the frame's roll's calibrated blank frame (daemon/rollfiles.py), or None."""
        return self.roll_files.base(self.roll_of(rel))

    def roll_for(self, job: Job) -> dict:
        """What the job's worker needs for the roll: its locked rendering, or to return a sample."""
        roll = self.roll_of(job.key)
        return {**self.rolls.job_settings(roll, job.stage), "flatfield": self.roll_flatfield(roll),
                "story": self.frame_story(roll, job.key), "film": self.roll_film(roll),
                "negative": self.roll_base(job.key) is not None}  # a calibrated blank: a negative film

    def frame_story(self, roll: str | None, rel: str) -> dict:
        """What the frame's outputs say about the film (metadata.py): the roll's name, its stock,
        film type and shot date from its manifest (`station roll new --stock --film --shot-date`),
        and the frame number (the manifest's record of the file, else a name that is a number)."""
        from station.pipeline.naming import frame_from_name

        if not roll:
            return {}
        m = self.manifest(roll)
        frame = next((r.get("frame") for r in m.get("frames") or []
                      if isinstance(r, dict) and rel in (r.get("files") or [])), None)
        if not isinstance(frame, int):
            frame = frame_from_name(Path(rel).stem)
        story = {"roll": m.get("name") if isinstance(m.get("name"), str) else roll, "frame": frame}
        for key, field in (("film_stock", "stock"), ("film_type", "film"), ("shot_date", "shot_date")):
            if isinstance(m.get(field), str) and m[field] and not (field == "film" and m[field] == "auto"):
                story[key] = m[field]
        r = self.rolls.locked(roll) if m.get("film") == "auto" else None
        if r is not None and r.film:  # auto: the type the roll settled on
            story["film_type"] = r.film
        return story

    def roll_film(self, roll: str | None) -> str | None:
        """The roll's film type (manifest `film:`, `station roll new --film`): "colour", "bw",
        "slide" or "auto"; None (colour) when unset or not one of those."""
        from station.pipeline.films import CHOICES

        film = self.manifest(roll).get("film") if roll else None
        return film if film in CHOICES else None

    def roll_flatfield(self, roll: str | None) -> str | None:
        return self.roll_files.flatfield(roll)

    def _roll_result(self, job: Job, res: dict) -> None:
        """A preview's sample feeds its roll's analysis; when that locks the rendering, the roll's
        frames made with another rendering are re-rendered (and so is a frame whose job was
        already running with the old one when it locked)."""
        roll = self.roll_of(job.key)
        if not roll:
            return
        new = self.rolls.add(roll, job.key, res, res.get("blank")) if job.stage == PREVIEW else None
        if new is not None:
            self.publish({"type": "roll", "event": "rendering", "roll": roll, "rendering": new.to_dict()})
            for row in self.journal.frames():
                if row["roll"] != roll or row["path"] == job.key or row["state"] not in ("preview_written", "master_written"):
                    continue
                if row["state"] == "master_written" and row.get("rendering") == new.id:
                    continue
                self._rerender_quietly(row["path"], f"roll analysis settled: rendering {new.id}")
        r = self.rolls.locked(roll)
        if r is None or res.get("rendering") == r.id:
            return
        if job.stage == PREVIEW and self.master_kinds:
            # its master is not made yet (it will be with the roll's rendering): only the preview
            # is made again, ahead of it
            self.queue.done(job)  # (the pool calls it again after on_result: harmless)
            row = self.journal.get(job.key)
            self.queue.put(PREVIEW, job.key, job.src, job.outputs, job.t_complete, order=row["id"] if row else None,
                           overwrite=True)
            log.info("preview %s again with the roll's rendering %s", job.key, r.id)
        else:
            self._rerender_quietly(job.key, f"roll analysis settled: rendering {r.id}")

    def _rerender_quietly(self, rel: str, reason: str) -> None:
        try:
            self.rerender(rel, reason)
        except ValueError as exc:
            log.error("%s", exc)

    def on_start(self, job: Job, slot) -> None:
        self.publish({"type": "job", "path": job.key, "stage": job.stage, "state": "started"})

    @_locked
    def on_result(self, job: Job, res: dict) -> None:
        now = time.time()
        rel = job.key
        if not res.get("ok"):
            self._bases.pop(rel, None)
            if self._still_being_written(job, res):
                return
            self._fail(rel, res.get("reason") or "unknown error", job.stage)
            self._rerender_pending(job)
            return
        if job.stage == PREVIEW:
            if res.get("base") is not None:
                self._bases[rel] = res["base"]
            row = self.journal.preview_written(rel, now)
            if res.get("sha256"):
                self.journal.update(rel, sha256=res["sha256"])
            self.last_positive = job.outputs.get("preview")
            log.info("preview %s -> %s (%.2f s)%s%s", rel, Path(job.outputs["preview"]).name, row["lat_preview"] or 0,
                     " [existing kept]" if res.get("skipped") else "", _timings(res))
            for w in res.get("warnings") or ():  # said once, at the preview (the master would repeat it)
                log.warning("%s: %s", rel, w)
            self._emit(rel)
            if not res.get("checks_follow"):  # no metrics will come (the preview existed already)
                self.publish({"type": "metrics", "path": rel, "roll": self.roll_of(rel), "metrics": None,
                              "frame": self.last_frame.to_dict() if self.last_frame else None})
            self._roll_result(job, res)
            hold = self._master_hold.get(rel, 0.0)
            if self.master_kinds and hold > 0 and rel in self._rerender_after:
                self._rerender_pending(job)  # the print changed again while this preview ran: its master is obsolete
            elif self.master_kinds and hold > 0:
                self._master_hold.pop(rel, None)
                self._hold_gen[rel] = gen = self._hold_gen.get(rel, 0) + 1
                t = threading.Timer(hold, self._release_master, (rel, gen))
                t.daemon = True
                t.start()
            elif self.master_kinds:
                outputs = self.outputs_for(rel)
                self.queue.put(MASTER, rel, job.src, {k: outputs[k] for k in self.master_kinds}, job.t_complete,
                               order=row["id"], overwrite=job.overwrite)
            else:
                self.journal.update(rel, rendering=res.get("rendering") or "frame")
                self.journal.master_written(rel, res.get("sha256"), now)
                self._rerender_pending(job)
        else:
            self._bases.pop(rel, None)
            self.journal.update(rel, rendering=res.get("rendering") or "frame")
            row = self.journal.master_written(rel, res.get("sha256"), now)
            if not self.preview_kinds:
                self.last_positive = job.outputs.get("jpeg") or job.outputs.get("tiff")
            log.info("master %s -> %s (%.2f s)%s", rel, ", ".join(Path(p).name for p in job.outputs.values()),
                     row["lat_master"] or 0, _timings(res))
            self._emit(rel)
            self._roll_result(job, res)
            self._rerender_pending(job)

    def fail(self, rel: str, reason: str, stage: str | None) -> None:
        """Record a frame as failed (one line in the log naming it and the reason) and publish it."""
        self._fail(rel, reason, stage)

    def _fail(self, rel: str, reason: str, stage: str | None) -> None:
        self.journal.failed(rel, reason, stage)
        log.error("FAILED %s (%s): %s", rel, stage or "-", reason)
        self._emit(rel)

    def on_metrics(self, job: Job, msg: dict) -> None:
        """The frame checks' metrics a worker computed from a preview it made (sent after the
        preview's result): published for the checks service as {"type": "metrics"}."""
        rel = job.key
        if msg.get("checks_error"):
            log.warning("frame checks: %s: %s", rel, msg["checks_error"])
        row = self.journal.get(rel)
        self.publish({"type": "metrics", "path": rel, "roll": self.roll_of(rel), "metrics": msg.get("checks_metrics"),
                      "frame": FrameView.from_row(row).to_dict() if row else None})

    def record_checks(self, rel: str, findings: list[dict]) -> None:
        """Store a frame's check findings in its journal row and publish the frame."""
        if self.journal.get(rel) is None:
            return
        self.journal.update(rel, checks=json.dumps(findings))
        self._emit(rel)

    def _emit(self, rel: str) -> None:
        row = self.journal.get(rel)
        if row is None:
            return
        self.last_frame = FrameView.from_row(row)
        self.publish({"type": "frame", "frame": self.last_frame.to_dict()})


def _timings(res: dict) -> str:
    t = res.get("timings") or {}
    return (" [" + " ".join(f"{k} {v:.2f}" for k, v in t.items()) + "]") if t else ""

