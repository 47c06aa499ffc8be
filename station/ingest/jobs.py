"""The job queue: previews before masters, each in arrival order, and a key
set so that a frame is never queued twice."""
from __future__ import annotations

import heapq
import itertools
import threading
from dataclasses import dataclass, field

PREVIEW, MASTER = "preview", "master"
_PRIO = {PREVIEW: 0, MASTER: 1}


@dataclass(order=True)
class Job:
    prio: int
    seq: int
    stage: str = field(compare=False)
    key: str = field(compare=False)  # the frame's journal path (relative)
    src: str = field(compare=False)  # absolute path of the RAW
    outputs: dict = field(compare=False, default_factory=dict)  # kind -> absolute path
    t_complete: float = field(compare=False, default=0.0)
    overwrite: bool = field(compare=False, default=False)  # a re-render: replace the frame's own outputs


class JobQueue:
    """Thread-safe priority queue.  `get(stages)` takes the best job whose stage
    is in `stages` (a preview-only worker passes {"preview"})."""

    def __init__(self):
        self._heap: list[Job] = []
        self._keys: set[tuple[str, str]] = set()  # (key, stage) queued or in progress
        self._cv = threading.Condition()
        self._seq = itertools.count()
        self._closed = False

    def put(self, stage: str, key: str, src: str, outputs: dict, t_complete: float, order: int | None = None,
            overwrite: bool = False) -> bool:
        """Queue a job; False if the same frame+stage is already queued or in progress.
        `overwrite`: the job replaces the frame's existing outputs (a re-render)."""
        with self._cv:
            if (key, stage) in self._keys or self._closed:
                return False
            self._keys.add((key, stage))
            seq = next(self._seq) if order is None else order
            heapq.heappush(self._heap, Job(_PRIO[stage], seq, stage, key, src, outputs, t_complete, overwrite))
            self._cv.notify_all()
            return True

    def cancel(self, key: str, stage: str) -> bool:
        """Drop a queued job that has not started (a re-render makes it obsolete); False if
        there is none (not queued, or already in progress)."""
        with self._cv:
            for job in self._heap:
                if job.key == key and job.stage == stage:
                    self._heap.remove(job)
                    heapq.heapify(self._heap)
                    self._keys.discard((key, stage))
                    self._cv.notify_all()
                    return True
            return False

    def next_order(self) -> int:
        return next(self._seq)

    def get(self, stages=(PREVIEW, MASTER), timeout: float | None = None) -> Job | None:
        with self._cv:
            while True:
                if self._closed:
                    return None
                for i, job in enumerate(sorted(self._heap)):
                    if job.stage in stages:
                        self._heap.remove(job)
                        heapq.heapify(self._heap)
                        return job
                if not self._cv.wait(timeout):
                    return None

    def done(self, job: Job) -> None:
        """The job is finished (whatever the outcome): its frame+stage may be queued again."""
        with self._cv:
            self._keys.discard((job.key, job.stage))
            self._cv.notify_all()

    def busy(self, key: str) -> bool:
        with self._cv:
            return any(k == key for k, _ in self._keys)

    def __len__(self) -> int:
        with self._cv:
            return len(self._heap)

    def counts(self) -> dict:
        with self._cv:
            n = {PREVIEW: 0, MASTER: 0}
            for j in self._heap:
                n[j.stage] += 1
            return n

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
