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
  or `retry` asked for it.
Frames are queued at most once per stage (JobQueue's key set).

`Processor.rerender(key, reason)` sends a frame that was already processed
through the pipeline again and replaces its outputs (see its docstring).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

from station.ingest.jobs import MASTER, PREVIEW, Job, JobQueue
from station.journal import Journal

log = logging.getLogger("station.frames")

SUFFIX = {"preview": ".preview.jpg", "tiff": ".tif", "jpeg": ".jpg"}
PREVIEW_KINDS = ("preview",)
MASTER_KINDS = ("tiff", "jpeg")


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
        self._roll_bases: dict[str, tuple] = {}  # roll -> (manifest mtime, base rgb or None)
        self.state = Path(cfg["paths"]["state"])
        self.last_positive: str | None = None
        self.last_frame: dict | None = None
        self._rerender_after: dict[str, str] = {}  # frame in progress -> reason of a re-render asked meanwhile
        self._master_hold: dict[str, float] = {}  # frame -> seconds its next master waits after its preview
        self._hold_gen: dict[str, int] = {}

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

    @staticmethod
    def roll_of(rel: str) -> str | None:
        parts = Path(rel).parts
        return parts[0] if len(parts) > 1 else None

    # -- intake ------------------------------------------------------------------
    def submit(self, path: Path, t_complete: float, force: bool = False) -> str:
        """Take a complete file.  Returns what was done (for logs and tests)."""
        path = Path(path)
        rel = self.rel(path)
        try:
            st = path.stat()
        except FileNotFoundError:
            row = self.journal.get(rel)
            if row is not None and row["state"] in ("seen", "preview_written"):
                self._fail(rel, "file disappeared before it was processed (deleted while queued)", PREVIEW)
                return "failed"
            return "gone"
        if self.queue.busy(rel):
            return "busy"
        row = self.journal.get(rel)
        changed = row is not None and (row["size"] != st.st_size or abs((row["mtime"] or 0) - st.st_mtime) > 1e-6)
        outputs = self.outputs_for(rel)
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
            row = self.journal.seen(rel, size=st.st_size, mtime=st.st_mtime, t_complete=t_complete,
                                    roll=self.roll_of(rel), outputs=outputs)
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

    def _clash(self, rel: str, outputs: dict) -> str | None:
        for kind, out in outputs.items():
            owner = self.journal.output_owner(kind if kind != "preview" else "preview", out)
            if owner and owner != rel:
                return f"output name {Path(out).name} already belongs to {owner} (not overwriting)"
        return None

    def retry(self, paths: list[str] | None = None) -> list[str]:
        done = self.journal.reset_failed(paths)
        for rel in done:
            log.info("retry %s", rel)
            self.submit(self.incoming / rel, time.time())
        return done

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
        """[r, g, b] from state/rolls/<roll>/manifest.json, cached by the manifest's mtime."""
        roll = self.roll_of(rel)
        if not roll:
            return None
        path = self.state / "rolls" / roll / "manifest.json"
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return None
        cached = self._roll_bases.get(roll)
        if cached and cached[0] == mtime:
            return cached[1]
        try:
            rgb = ((json.loads(path.read_text()).get("base") or {}).get("rgb"))
            rgb = [float(v) for v in rgb] if rgb and len(rgb) == 3 and all(v > 0 for v in rgb) else None
        except (OSError, ValueError, TypeError, AttributeError):
            log.warning("roll %s: unreadable manifest %s; estimating the base per frame", roll, path)
            rgb = None
        self._roll_bases[roll] = (mtime, rgb)
        return rgb

    def on_start(self, job: Job, slot) -> None:
        self.publish({"type": "job", "path": job.key, "stage": job.stage, "state": "started"})

    def on_result(self, job: Job, res: dict) -> None:
        now = time.time()
        rel = job.key
        if not res.get("ok"):
            self._bases.pop(rel, None)
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
            self._emit(rel)
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
                self.journal.master_written(rel, res.get("sha256"), now)
                self._rerender_pending(job)
        else:
            self._bases.pop(rel, None)
            row = self.journal.master_written(rel, res.get("sha256"), now)
            if not self.preview_kinds:
                self.last_positive = job.outputs.get("jpeg") or job.outputs.get("tiff")
            log.info("master %s -> %s (%.2f s)%s", rel, ", ".join(Path(p).name for p in job.outputs.values()),
                     row["lat_master"] or 0, _timings(res))
            self._emit(rel)
            self._rerender_pending(job)

    def _fail(self, rel: str, reason: str, stage: str | None) -> None:
        self.journal.failed(rel, reason, stage)
        log.error("FAILED %s (%s): %s", rel, stage or "-", reason)
        self._emit(rel)

    def _emit(self, rel: str) -> None:
        row = self.journal.get(rel)
        if row is None:
            return
        self.last_frame = frame_view(row)
        self.publish({"type": "frame", "frame": self.last_frame})


def _timings(res: dict) -> str:
    t = res.get("timings") or {}
    return (" [" + " ".join(f"{k} {v:.2f}" for k, v in t.items()) + "]") if t else ""


def frame_view(row: dict) -> dict:
    """The JSON-able view of a journal row (snapshot, events, status)."""
    return {
        "path": row["path"], "roll": row["roll"], "state": row["state"], "reason": row["reason"],
        "stage": row["stage"], "sha256": row["sha256"],
        "preview": row["preview"], "tiff": row["tiff"], "jpeg": row["jpeg"],
        "complete": row["t_complete"], "lat_preview": row["lat_preview"], "lat_master": row["lat_master"],
        "updated": row["updated"],
    }
