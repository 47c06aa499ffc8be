"""`--cluster ADDRESS`: the frames of a batch on a Dask distributed cluster.

ADDRESS is a scheduler (`tcp://host:8786`) or `local:N`, an in-process LocalCluster of N
single-threaded worker processes on this machine.  Workers read the inputs and write the
outputs at the same paths as the client (shared storage), with the same engine and the
same frame decision as a local run (plan.run_frame), so the outputs are the same pixels.

The `BatchSpec` (model weights, print, roll rendering, flat field) is scattered to every
worker once (`broadcast=True`); each frame's task names it, so nothing but the frame's
paths travels per frame, and each worker process bakes or loads the LUT once (the first
frame it takes; `prepare_worker`).  A worker lost mid-batch (kill -9, a machine gone) is
the scheduler's to handle: its frames are run again on the others (a frame whose outputs
the lost worker had already published is then found complete, not written twice; one it
was writing left only a dot-temporary, removed at the end of the batch).  A frame that
kills `distributed.scheduler.allowed-failures` workers fails with that reason.

Needs the optional extra: pip install 'station[cluster]' (dask[distributed]).
"""
from __future__ import annotations

import os
import threading
import uuid

from station.batch.plan import FAILED, BatchSpec, FrameJob, FrameResult, prepare_worker, run_frame

INSTALL = "pip install 'station[cluster]'  (installs dask[distributed])"


class ClusterError(RuntimeError):
    """The cluster cannot be used (no dask, an unreachable scheduler, a bad address)."""


def available() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def parse_address(address: str) -> tuple[str, int | None]:
    """("local", N) or ("remote", None); ValueError for a malformed one."""
    if address.startswith("local:"):
        try:
            n = int(address[len("local:"):])
        except ValueError:
            raise ValueError(f"{address!r}: local:N needs a number of workers") from None
        if n < 1:
            raise ValueError(f"{address!r}: local:N needs at least one worker")
        return "local", n
    if address == "local":
        from station.batch.local import default_jobs

        return "local", default_jobs()
    if "://" not in address and ":" not in address:
        raise ValueError(f"{address!r}: expected tcp://HOST:PORT or local:N")
    return "remote", None


_PREPARED: dict[str, float] = {}
_PREPARE_LOCK = threading.Lock()


def _task(spec: BatchSpec, token: str, job: FrameJob) -> FrameResult:  # runs on a worker
    with _PREPARE_LOCK:
        if token not in _PREPARED:  # once per worker process and batch
            _PREPARED.clear()
            _PREPARED[token] = prepare_worker(spec)
    return run_frame(job, spec)


def run_cluster(jobs: list[FrameJob], spec: BatchSpec, address: str, say=print):
    """Yield a FrameResult per job as the cluster finishes them.  Raises ClusterError when the
    cluster cannot be reached or started."""
    kind, n = parse_address(address)
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ClusterError(f"--cluster needs dask distributed: {INSTALL}") from None
    import logging

    if not logging.getLogger().isEnabledFor(logging.DEBUG):  # (-v shows the cluster's own log)
        for name in ("distributed", "dask"):
            logging.getLogger(name).setLevel(logging.WARNING)
    cluster = None
    try:
        if kind == "local":
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(cluster)
        else:
            client = Client(address, timeout="20s")
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise ClusterError(f"--cluster {address}: cannot reach the scheduler ({exc})") from None
    try:
        info = client.scheduler_info()
        workers = info.get("workers", {})
        say(f"cluster: {address}, {len(workers)} worker(s), "
            f"{sum(w.get('nthreads', 0) for w in workers.values())} thread(s)")
        if not workers:
            say("cluster: no workers yet; waiting for one")
            client.wait_for_workers(1)
        token = uuid.uuid4().hex
        spec_future = client.scatter(spec, broadcast=True, hash=False)
        futures = {}
        for job in jobs:
            fut = client.submit(_task, spec_future, token, job, key=f"station-frame-{job.index}-{token}",
                                pure=False)
            futures[fut] = job
        for fut in as_completed(futures):
            job = futures[fut]
            try:
                yield fut.result()
            except Exception as exc:  # KilledWorker: the frame took down too many workers
                name = exc.__class__.__name__
                reason = ("the frame's worker died on every try (KilledWorker)" if name == "KilledWorker"
                          else f"cluster error ({name}: {exc})")
                yield FrameResult(index=job.index, src=str(job.src), status=FAILED, reason=reason)
            fut.release()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def remove_dead_temporaries(jobs: list[FrameJob]) -> list:
    """After the whole batch is done: the dot-temporaries of this batch's outputs (named
    `.NAME.PID.part|tmp`) are a lost worker's (on any host); remove them."""
    import re

    from station.pipeline.write import _TEMP_NAME

    names: dict = {}
    for job in jobs:
        for p in job.outputs.values():
            names.setdefault(p.parent, set()).add(p.name)
    removed = []
    for folder, wanted in names.items():
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            m = _TEMP_NAME.match(e.name)
            # .NAME.PID.tmp (atomic_write) or .NAME.PID.part / .NAME.PID.part.PID.tmp (publish_frame)
            base = re.sub(r"\.\d+\.part$", "", m["name"]) if m else None
            if base in wanted:
                try:
                    os.unlink(e.path)
                    removed.append(e.path)
                except OSError:
                    pass
    return removed
