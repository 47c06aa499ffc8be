"""`--jobs N`: the frames of a batch converted by N worker processes on this machine.

Each worker is a fresh `spawn` process (no inherited threads or state; it imports the
pipeline itself) that receives the `BatchSpec` once, bakes or loads the LUT once
(plan.prepare_worker) and then takes one frame at a time over its pipe.  The parent
hands a frame to whichever worker is free and waits on the pipes and the processes
together, so a worker that dies (a segfault in LibRaw, the OOM killer, kill -9) is seen
at once: its frame goes back in the queue (up to `ATTEMPTS` tries, then it fails with
"worker crashed") and a new worker takes its place.  A frame's outputs are published
together by the engine, so a worker killed mid-frame leaves no output of it (only a
dot-temporary, removed by the next run's planning or at the end of this one).

On Linux the workers die with the parent (PR_SET_PDEATHSIG): a parent killed with
SIGKILL leaves no worker writing behind it, so the next run sees a settled folder.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sys
from collections import deque
from multiprocessing.connection import wait

from station.batch.plan import FAILED, BatchSpec, FrameJob, FrameResult, prepare_worker, run_frame

ATTEMPTS = 3
START_TIMEOUT = 300.0


class WorkerStartError(RuntimeError):
    """A worker could not load what the batch needs."""


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker_main(conn, spec_bytes: bytes, parent: int) -> None:  # pragma: no cover - runs in the worker
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before prctl took hold
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        spec = pickle.loads(spec_bytes)
        prepare_worker(spec)
    except Exception as exc:
        conn.send({"error": f"{exc.__class__.__name__}: {exc}"})
        return
    conn.send({"ready": os.getpid()})
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        conn.send(run_frame(job, spec))


class _Worker:
    def __init__(self, ctx, spec_bytes: bytes):
        parent, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_worker_main, args=(child, spec_bytes, os.getpid()),
                                name="station-batch-worker", daemon=True)
        self.proc.start()
        child.close()
        self.conn = parent
        self.job: FrameJob | None = None
        self.ready = False

    def stop(self, kill: bool = False) -> None:
        try:
            if kill:
                self.proc.kill()
            else:
                self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.proc.join(timeout=None if kill else 10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()


def run_local(jobs: list[FrameJob], spec: BatchSpec, workers: int):
    """Yield a FrameResult per job (in the order they finish), converting with `workers`
    processes.  Raises WorkerStartError when workers cannot start (the reason a worker gave)."""
    ctx = multiprocessing.get_context("spawn")
    spec_bytes = pickle.dumps(spec)
    queue = deque(jobs)
    tries: dict[int, int] = {}
    workers = max(1, min(workers, len(jobs)))
    pool = [_Worker(ctx, spec_bytes) for _ in range(workers)]
    remaining = len(jobs)
    start_deaths = 0
    try:
        while remaining:
            for w in pool:
                if w.ready and w.job is None and queue:
                    w.job = queue.popleft()
                    w.conn.send(w.job)
            members = {w.conn: w for w in pool}
            members.update({w.proc.sentinel: w for w in pool})
            for ready in wait(list(members)):
                w = members[ready]
                if w not in pool:
                    continue
                while True:  # every answer the worker sent, also when it died right after
                    try:
                        if not w.conn.poll():
                            break
                        msg = w.conn.recv()
                    except (EOFError, OSError):
                        break
                    if isinstance(msg, FrameResult):
                        w.job = None
                        remaining -= 1
                        yield msg
                    elif isinstance(msg, dict) and "error" in msg:
                        raise WorkerStartError(msg["error"])
                    elif isinstance(msg, dict):
                        w.ready = True
                if w.proc.is_alive():
                    continue  # (a broken pipe: its sentinel follows at once)
                # the worker died: its frame is tried again (or fails), a new worker takes its place
                job = w.job
                w.stop(kill=True)
                pool.remove(w)
                if not w.ready:
                    start_deaths += 1
                    if start_deaths >= ATTEMPTS:
                        raise WorkerStartError(f"workers exit while starting (exit code {w.proc.exitcode})")
                if job is not None:
                    tries[job.index] = tries.get(job.index, 0) + 1
                    if tries[job.index] >= ATTEMPTS:
                        remaining -= 1
                        yield FrameResult(index=job.index, src=str(job.src), status=FAILED,
                                          reason=f"worker crashed on this frame {ATTEMPTS} times "
                                                 f"(last exit code {w.proc.exitcode})")
                    else:
                        queue.appendleft(job)
                if remaining and len(pool) < workers:
                    pool.append(_Worker(ctx, spec_bytes))
    finally:
        for w in pool:
            w.stop(kill=remaining > 0)
