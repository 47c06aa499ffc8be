"""Run a planned batch: in this process, on N local workers or on a Dask cluster, with one
progress display and the manifest; the same frames, the same engine, the same pixels.

`run_batch` returns a `BatchOutcome` (converted, complete, failed) and prints, on stderr,
one line per failed frame (`error: FILE: reason`) and per warning, a progress bar on a
terminal (frames, frames/s, ETA) or else a plain progress line every `PROGRESS_EVERY`
seconds.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from station.batch.plan import (
    COMPLETE, CONVERTED, FAILED, BatchSpec, FrameResult, frame_state, job_options, publish_back, run_frame,
    sha256_file,
)

PROGRESS_EVERY = 10.0  # s between plain progress lines (not a terminal)


@dataclass
class BatchOutcome:
    converted: int = 0
    complete: int = 0
    failures: list = field(default_factory=list)  # [(path, reason)]
    interrupted: bool = False
    seconds: float = 0.0
    workers: str = ""


class Progress:
    """A tqdm bar on a terminal; plain lines (`progress: 12/40 frames, 1.3 frames/s, ETA 21 s`) otherwise."""

    def __init__(self, total: int, stream=None):
        from tqdm import tqdm

        self.stream = stream or sys.stderr
        self.total = total
        self.done = 0
        self.t0 = self.last = time.monotonic()
        self.tty = self.stream.isatty() and total >= 2
        self.bar = tqdm(total=total, unit="frame", file=self.stream, disable=not self.tty, smoothing=0.1)

    def say(self, line: str) -> None:
        from tqdm import tqdm

        if self.tty:
            tqdm.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def step(self, name: str) -> None:
        self.done += 1
        if self.tty:
            self.bar.set_postfix_str(name, refresh=False)
            self.bar.update(1)
            return
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY and self.done < self.total:
            self.last = now
            rate = self.done / max(now - self.t0, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            self.say(f"progress: {self.done}/{self.total} frames, {rate:.2f} frames/s, ETA {_duration(eta)}")

    def close(self) -> None:
        self.bar.close()


def _duration(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600} h {s % 3600 // 60:02d} min" if s >= 3600 else f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


def run_batch(jobs, spec: BatchSpec, *, workers: int = 1, cluster: str | None = None, manifest=None,
              progress: Progress | None = None) -> BatchOutcome:
    """Convert `jobs` ([FrameJob]) in this process (workers=1), on `workers` local processes, or
    on the Dask cluster at `cluster`; each result goes to the manifest (when given) as it comes."""
    out = BatchOutcome()
    t0 = time.perf_counter()
    progress = progress or Progress(len(jobs))

    by_index = {job.index: job for job in jobs}
    remake: set[int] = set()  # send_back: frames the client found half made (published with overwrite)

    def take(res: FrameResult) -> None:
        if res.data is not None:
            publish_back(by_index[res.index], res, overwrite=res.index in remake)
        if res.status == CONVERTED:
            out.converted += 1
        elif res.status == COMPLETE:
            out.complete += 1
        else:
            out.failures.append((Path(res.src), res.reason or "failed"))
            progress.say(f"error: {res.src}: {res.reason}")
        for w in res.warnings:
            progress.say(f"warning: {res.src}: {w}")
        if manifest is not None:
            manifest.add(res)
        progress.step(Path(res.src).name)

    # frames already complete need no worker (unless the manifest wants their inputs hashed)
    todo = []
    rendering = spec.options.rendering.id if spec.options.rendering is not None else None
    for job in jobs:
        if spec.hash_inputs and not spec.send_back:
            todo.append(job)  # the workers hash the inputs of complete frames too
            continue
        state, frame_options = frame_state(job.src, job.outputs, job_options(job, spec.options))
        if state == "complete":
            take(FrameResult(index=job.index, src=str(job.src), status=COMPLETE, rendering=rendering,
                             outputs={k: str(p) for k, p in job.outputs.items()},
                             sha256=sha256_file(job.src) if spec.hash_inputs else None))
        elif spec.send_back and isinstance(state, tuple):  # ("foreign", path): the client's to refuse
            take(FrameResult(index=job.index, src=str(job.src), status=FAILED, rendering=rendering,
                             reason=f"output {state[1]} already exists and was not made from this input "
                                    "(not overwriting; use --overwrite)"))
        else:
            if frame_options is not None and frame_options.overwrite:
                remake.add(job.index)
            todo.append(job)
    current = None
    try:
        if cluster:
            from station.batch.cluster import remove_dead_temporaries, run_cluster

            out.workers = f"cluster {cluster}"
            for res in run_cluster(todo, spec, cluster, say=progress.say):
                take(res)
            if not spec.send_back:
                remove_dead_temporaries(todo)  # what lost workers left (every frame of the batch is done)
        elif workers > 1 and len(todo) > 1:
            from station.batch.local import run_local

            n = min(workers, len(todo))
            out.workers = f"{n} workers"
            for res in run_local(todo, spec, n):
                take(res)
        else:
            out.workers = "1 process"
            for job in todo:
                current = job
                take(run_frame(job, spec))
            current = None
    except KeyboardInterrupt:
        out.interrupted = True
        progress.close()
        at = f" at {current.src.name}" if current is not None else ""
        print(f"\ninterrupted{at}: {out.converted} converted; run the same command again "
              "to finish (complete frames are skipped)", file=sys.stderr)
    finally:
        progress.close()
        if not cluster:
            from station.pipeline.write import remove_stale_temporaries

            for folder in {p.parent for j in todo for p in j.outputs.values()}:
                remove_stale_temporaries(folder)  # what a worker killed mid-frame left
    out.seconds = time.perf_counter() - t0
    return out
