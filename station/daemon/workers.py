"""Decoder worker processes, supervised from threads of the daemon.

One `Slot` per worker: a thread that takes a job from the queue, hands it to
its process over a pipe and waits for the answer with the job's deadline.
- the process dies (segfault in LibRaw, OOM killer, kill -9): the job fails
  with reason "decoder crashed", the process is replaced, the slot goes on;
- the deadline passes: the process is killed and replaced, the job fails
  with reason "timed out".
With two or more workers, slot 0 takes previews only, so a master in
progress never delays the next frame's preview; the other slots take
previews first, then masters, and run at a lower CPU priority (nice).
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time

from station.ingest.jobs import MASTER, PREVIEW, Job, JobQueue

log = logging.getLogger("station.workers")

_PRELOAD = ["station.daemon.worker", "station.pipeline.convert", "station.pipeline.decode",
            "station.pipeline.write", "station.pipeline.classic", "rawpy", "numpy"]


def make_context(method: str):
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        # imported once in the fork server (which never decodes, so no OpenMP
        # threads exist there); each worker then starts in milliseconds.
        ctx.set_forkserver_preload(_PRELOAD)
    return ctx


class WorkerConfigError(Exception):
    """A worker could not load what the configuration names (model file, base frame)."""

    def __init__(self, key: str, problem: str):
        self.key = key
        self.problem = problem
        super().__init__(f"config: {key}: {problem}")


class Slot:
    def __init__(self, index: int, pool: "WorkerPool", stages: tuple[str, ...], nice: int):
        self.index = index
        self.pool = pool
        self.stages = stages
        self.nice = nice
        self.proc = None
        self.conn = None
        self.job: Job | None = None
        self.job_started = 0.0
        self.restarts = 0
        self._ids = 0
        self.thread = threading.Thread(target=self._run, name=f"slot-{index}", daemon=True)

    # -- process management --------------------------------------------------
    def start_process(self, strict: bool = False) -> None:
        """Start the worker and wait until it has loaded the inverter (and the base frame).
        strict (the daemon's start-up): a model or base frame it cannot use raises
        WorkerConfigError (the daemon exits 2 naming the setting) instead of failing frames."""
        parent, child = self.pool.ctx.Pipe(duplex=True)
        settings = dict(self.pool.settings, nice=self.nice)
        proc = self.pool.ctx.Process(target=_entry, args=(child, settings), name=f"station-worker-{self.index}", daemon=True)
        proc.start()
        child.close()
        self.proc, self.conn = proc, parent
        deadline = time.monotonic() + self.pool.start_timeout
        while time.monotonic() < deadline:
            if parent.poll(0.2):
                try:
                    msg = parent.recv()
                except (EOFError, OSError):
                    break
                if msg.get("ready"):
                    if msg.get("error") and strict:
                        self.kill()
                        raise WorkerConfigError(msg.get("error_key") or "inversion",
                                                msg["error"].removeprefix("inverter unavailable: "))
                    if msg.get("error"):
                        log.error("worker %d: %s (frames will fail until fixed)", self.index, msg["error"])
                    log.debug("worker %d ready (pid %d, inverter %s)", self.index, proc.pid, msg.get("inverter"))
                    return
            if not proc.is_alive():
                break
        self.kill()
        raise RuntimeError(f"worker {self.index} did not start (exit {proc.exitcode})")

    def kill(self) -> None:
        proc = self.proc
        if proc is not None and proc.is_alive():
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc is not None:
            proc.join(timeout=5)
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
        self.proc = self.conn = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    def _ensure(self) -> None:
        while not self.pool.stopping.is_set():
            if self.alive():
                return
            if self.proc is not None:  # died while idle (killed, OOM killer)
                self._crashed()
            try:
                self.start_process()
                return
            except Exception as exc:
                log.error("worker %d: %s; retrying in 2 s", self.index, exc)
                self.pool.stopping.wait(2.0)

    # -- the loop --------------------------------------------------------------
    def _run(self) -> None:
        q = self.pool.queue
        while not self.pool.stopping.is_set():
            self._ensure()
            job = q.get(self.stages, timeout=0.5)
            if job is None:
                continue
            self._ensure()  # died while idle (killed, OOM): replace it before handing it a frame
            self.job, self.job_started = job, time.time()
            try:
                self.pool.on_start(job, self)
                result = self._do(job)
            except Exception as exc:  # never let the slot thread die
                log.exception("worker %d: internal error on %s", self.index, job.src)
                result = {"ok": False, "reason": f"internal error ({exc.__class__.__name__}: {exc})"}
            finally:
                self.job = None
            try:
                self.pool.on_result(job, result)
            except Exception:
                log.exception("result handler failed for %s", job.src)
            finally:
                q.done(job)
            if result.get("checks_follow"):
                self._follow_up(job, result.get("id"))
        self.shutdown()

    def _follow_up(self, job: Job, jid) -> None:
        """The frame checks' metrics the worker sends after a preview's result (the frame is
        free for its master meanwhile); a worker that dies or hangs here is replaced."""
        deadline = time.monotonic() + self.pool.deadlines[PREVIEW]
        msg = None
        try:
            while time.monotonic() < deadline and not self.pool.stopping.is_set():
                if self.conn.poll(0.2):
                    m = self.conn.recv()
                    if m.get("id") == jid and "checks_metrics" in m:
                        msg = m
                        break
                elif not self.alive():
                    break
        except (EOFError, OSError, AttributeError):
            msg = None
        if msg is None:
            if self.alive() and not self.pool.stopping.is_set():
                log.error("worker %d: no frame-check metrics for %s: replacing it", self.index,
                          os.path.basename(job.src))
                self.kill()
                self.restarts += 1
            msg = {"checks_metrics": None, "checks_error": "the worker sent no metrics"}
        try:
            self.pool.on_metrics(job, msg)
        except Exception:
            log.exception("metrics handler failed for %s", job.src)

    def _do(self, job: Job) -> dict:
        """Hand the job to the worker; a worker that dies before it has taken the job
        (it acknowledges each job on receipt) is replaced and the job handed over again;
        one that dies after fails the job: "decoder crashed"."""
        for attempt in range(3):
            res = self._attempt(job)
            if res is not None:
                return res
            log.warning("worker %d died before it took %s: handing it to a fresh worker",
                        self.index, os.path.basename(job.src))
            self._ensure()
        return {"ok": False, "reason": "decoder crashed", "detail": "worker died before taking the frame, 3 times"}

    def _attempt(self, job: Job) -> dict | None:
        self._ids += 1
        jid = self._ids
        msg = {"id": jid, "stage": job.stage, "src": job.src, "outputs": job.outputs,
               "half_size": job.stage == PREVIEW, "hash": job.stage == MASTER or MASTER not in self.pool.stages_in_use,
               "base": self.pool.base_for(job), "overwrite": job.overwrite, "print": self.pool.print_for(job),
               **self.pool.roll_for(job)}
        deadline = time.monotonic() + (self.pool.deadlines[job.stage])
        started = False
        try:
            self.conn.send(msg)
        except (OSError, EOFError, BrokenPipeError, AttributeError):
            self._crashed()
            return None
        while True:
            try:
                if self.conn.poll(0.2):
                    res = self.conn.recv()
                    if res.get("id") != jid:
                        continue
                    if res.get("started"):
                        started = True
                        continue
                    return res
            except (EOFError, OSError):
                return self._crashed() if started else (self._crashed() and None)
            if not self.proc.is_alive():
                # drain: the answer may have been sent just before it exited
                try:
                    while self.conn.poll(0):
                        res = self.conn.recv()
                        if res.get("id") == jid and res.get("started"):
                            started = True
                        elif res.get("id") == jid:
                            return res
                except (EOFError, OSError):
                    pass
                return self._crashed() if started else (self._crashed() and None)
            if time.monotonic() > deadline:
                log.error("worker %d (pid %d) hung on %s for %.0f s: killing it",
                          self.index, self.proc.pid, os.path.basename(job.src), self.pool.deadlines[job.stage])
                self.kill()
                self.restarts += 1
                return {"ok": False, "reason": "timed out"}

    def _crashed(self) -> dict:
        code = self.proc.exitcode if self.proc is not None else None
        if code is None and self.proc is not None:
            self.proc.join(timeout=2)
            code = self.proc.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        log.error("worker %d died (%s): replacing it", self.index, how)
        self.kill()
        self.restarts += 1
        return {"ok": False, "reason": "decoder crashed", "detail": how}

    def shutdown(self) -> None:
        if self.conn is not None and self.alive():
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.proc.join(timeout=5)
        self.kill()


def _entry(conn, settings):
    from station.daemon.worker import main

    main(conn, settings)


class WorkerPool:
    """`count` worker processes fed from `queue`; results go to `on_result(job, result)`."""

    def __init__(self, queue: JobQueue, settings: dict, *, count: int, start_method: str,
                 deadlines: dict, on_result, on_start=lambda job, slot: None, base_for=lambda job: None,
                 on_metrics=lambda job, msg: None,
                 print_for=lambda job: None, roll_for=lambda job: {},
                 stages_in_use=(PREVIEW, MASTER), start_timeout: float = 120.0):
        self.queue = queue
        self.settings = settings
        self.ctx = make_context(start_method)
        self.deadlines = deadlines
        self.on_result = on_result
        self.on_start = on_start
        self.on_metrics = on_metrics  # (job, {"checks_metrics", "checks_error"}) after a preview
        self.base_for = base_for
        self.print_for = print_for
        self.roll_for = roll_for  # job -> {"rendering": dict | None, "sample": bool} (daemon/rolls.py)
        self.stages_in_use = tuple(stages_in_use)
        self.start_timeout = start_timeout
        self.stopping = threading.Event()
        self.slots: list[Slot] = []
        for i in range(count):
            if count >= 2 and i == 0 and PREVIEW in self.stages_in_use:
                stages, nice = (PREVIEW,), 0
            else:
                stages, nice = (PREVIEW, MASTER), (10 if count >= 2 else 0)
            self.slots.append(Slot(i, self, stages, nice))

    def start(self) -> None:
        """Start every process (in parallel) and wait until each has loaded the pipeline."""
        errors = []

        def boot(slot):
            try:
                slot.start_process(strict=True)
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=boot, args=(s,)) for s in self.slots]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            for s in self.slots:
                s.kill()
            raise next((e for e in errors if isinstance(e, WorkerConfigError)), errors[0])
        for s in self.slots:
            s.thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Finish the jobs in hand (up to `timeout`), then stop the processes."""
        self.stopping.set()
        self.queue.close()
        deadline = time.monotonic() + timeout
        for s in self.slots:
            s.thread.join(timeout=max(0.1, deadline - time.monotonic()))
        for s in self.slots:
            s.kill()

    def info(self) -> list[dict]:
        out = []
        for s in self.slots:
            out.append({
                "index": s.index, "pid": s.proc.pid if s.proc is not None else None, "alive": s.alive(),
                "stages": list(s.stages), "restarts": s.restarts,
                "job": ({"path": s.job.key, "stage": s.job.stage, "since": s.job_started} if s.job else None),
            })
        return out
