"""A batch as a list of frame jobs, and the one function every runner calls for a frame.

`plan_frames` turns the inputs into `FrameJob`s (an input and its outputs: the same paths
whoever converts it), refusing two inputs whose outputs would clash; `run_frame` is the
unit of work, run in-process (`--jobs 1`), in a local worker process (local.py) or on a
Dask worker (cluster.py): it decides from the outputs already there whether the frame is
complete, half made or in another's way (`frame_state`), converts it with the one engine
(pipeline/convert.py convert_file) and returns a `FrameResult` (never raises for a bad
frame).  Because the decision is taken where the frame is converted, a frame run twice
(a worker lost after publishing, before answering) is found complete the second time and
not written again.

`BatchSpec` is what every worker needs once (not per frame): the ConvertOptions (model
weights, print, roll rendering, flat field) and whether to hash the inputs for the
manifest.  `prepare_worker` bakes (or loads) the LUT once per worker process, on the GPU
when torch sees one (the model's pixel function runs where torch puts it).
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

CONVERTED, COMPLETE, FAILED = "converted", "complete", "failed"


@dataclass(frozen=True)
class FrameJob:
    index: int  # position in the batch (the manifest and the progress follow it)
    src: Path
    outputs: dict  # kind -> Path
    stem: Path | None = None  # the outputs' common path without extension
    extra_meta: dict | None = None  # this frame's own ConvertOptions.extra_meta (its story: roll, frame, ...)


def job_options(job: FrameJob, options):
    """The batch's ConvertOptions with this frame's own metadata."""
    return options if job.extra_meta is None else replace(options, extra_meta=job.extra_meta)


@dataclass(frozen=True)
class BatchSpec:
    options: object  # pipeline.options.ConvertOptions, as the command built it
    hash_inputs: bool = False  # sha256 of every input (for --manifest)
    threads: int | None = None  # CPU threads a worker's kernels may use (None: leave as is)
    # the worker cannot see --out (a cluster without shared storage for it): it converts into a
    # folder of its own and sends the encoded outputs back (FrameResult.data); the client,
    # which decided the frame's state, publishes them (publish_back)
    send_back: bool = False


@dataclass
class FrameResult:
    index: int
    src: str
    status: str  # converted | complete | failed
    outputs: dict = field(default_factory=dict)  # kind -> path (str)
    sha256: str | None = None
    rendering: str | None = None
    reason: str | None = None
    warnings: list = field(default_factory=list)
    worker: str = ""
    seconds: float = 0.0
    finished: float = 0.0  # time.time() when the frame was done (the manifest's "finished", UTC)
    data: dict | None = None  # send_back: kind -> the encoded output (bytes), published by the client

    def manifest_record(self) -> dict:
        d = {"input": self.src, "sha256": self.sha256, "outputs": self.outputs, "rendering": self.rendering,
             "status": self.status}
        if self.reason:
            d["reason"] = self.reason
        if self.warnings:
            d["warnings"] = list(self.warnings)
        if self.finished:
            import datetime

            d["finished"] = datetime.datetime.fromtimestamp(self.finished, datetime.timezone.utc).isoformat(
                timespec="milliseconds")
        return d


def plan_frames(files: list[Path], rel: dict, out: Path, formats: list[str], ext: dict, stem_for=None,
                meta_for=None, never=frozenset()):
    """Inputs -> ([FrameJob], [(path, reason)]): outputs under `out` (sub-folders kept from
    `rel`; `stem_for(src)` names them, relative, without extension: NamingError refuses the
    input; `ext[format]` ends them), the folders made and cleared of what a killed writer left;
    an input whose outputs would clash with an earlier one's is refused.  `meta_for(src)`: the
    frame's own extra metadata.  An input whose output would be a path in `never` (resolved: the
    inputs, the camera JPEGs beside RAWs) is refused: an original is never written."""
    from station.pipeline.write import remove_stale_temporaries

    jobs, failures = [], []
    seen: set[str] = set()
    cleaned: set[Path] = set()
    for src in files:
        out_dir = out / rel.get(src, Path())
        try:
            stem = stem_for(src) if stem_for is not None else Path(src.stem)
        except Exception as exc:  # naming.NamingError: one line naming the input
            failures.append((src, str(exc)))
            continue
        key = str(out_dir / stem)
        if key in seen:
            failures.append((src, f"another input has the same output name {str(stem)!r}; outputs would clash "
                                  "(refused, nothing overwritten)"))
            continue
        seen.add(key)
        out_dir = (out_dir / stem).parent
        stem = Path(stem).name
        if out_dir not in cleaned:
            out_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(out_dir)  # what a killed run left (its process is gone)
            cleaned.add(out_dir)
        outputs = {f: out_dir / f"{stem}{ext[f]}" for f in formats}
        clash = next((p for p in outputs.values() if p.resolve() in never), None)
        if clash is not None:  # --out is the inputs' folder and a scan's positive takes its name
            failures.append((src, f"output {clash} is an input (an original is never written, not even with "
                                  "--overwrite): choose another --out or --name"))
            continue
        jobs.append(FrameJob(len(jobs), src, outputs, stem=out_dir / stem,
                             extra_meta=meta_for(src) if meta_for is not None else None))
    return jobs, failures


def frame_state(src: Path, outputs: dict, options):
    """What to do with one frame: ("complete", None) — all its outputs are there, made from
    `src` with the same method, print and roll rendering: skip it; ("foreign", path) — an output of another origin is in the way; or
    ("todo", options) — convert it, with overwrite for a half frame an interrupted run left
    (its outputs are remade together)."""
    from dataclasses import replace

    from station.pipeline.write import output_description

    if options.overwrite:
        return "todo", options
    present = [p for p in outputs.values() if p.exists()]
    if not present:
        return "todo", options
    wanted = {"station_method": getattr(options.inverter, "name", "default"),
              "station_print": options.print.to_dict() if options.print is not None else None,
              "station_rendering": options.rendering.id if options.rendering is not None else None,
              "station_flatfield": options.flatfield.id if options.flatfield is not None else None}
    # the film's story and the colour spaces (--stock, --colour-space, ...): outputs made with others are remade
    for k in ("film_stock", "film_type", "roll", "frame", "shot_date", "station_colour_space", "station_jpeg_colour_space"):
        wanted[k] = options.extra_meta.get(k)
    if options.film in ("colour", "bw", "slide"):  # auto: whatever was detected
        wanted["station_film"] = None if options.film == "colour" else options.film
    same = True
    for p in present:
        d = output_description(p) or {}
        if d.get("station_source") != src.name:
            return ("foreign", p), None
        film = wanted.get("station_film", d.get("station_film"))  # bw and slide: made by their own transfer
        want = {**wanted, "station_method": film} if film in ("bw", "slide") else wanted
        same = same and all(d.get(k) == v for k, v in want.items())
    if len(present) == len(outputs) and same:
        return "complete", None
    # a half frame, or the station's own outputs of this input made with another method or
    # print: remade together
    return "todo", replace(options, overwrite=True)


def sha256_file(path: Path) -> str | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def worker_name() -> str:
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def prepare_worker(spec: BatchSpec) -> float:
    """Once per worker process: limit the kernels' threads (N workers on N cores) and bake or
    load the LUT of the batch's inverter with its print (lutinvert caches it in the process:
    no frame bakes).  Returns the seconds it took."""
    t0 = time.perf_counter()
    if spec.threads:
        try:
            import numba

            numba.set_num_threads(max(1, min(spec.threads, numba.config.NUMBA_NUM_THREADS)))
        except Exception:  # numba absent or its pool already fixed: the numpy paths ignore it
            pass
        import sys

        if "torch" in sys.modules:  # (importing torch for this alone costs seconds)
            sys.modules["torch"].set_num_threads(spec.threads)
    options = spec.options
    if options.compiled:
        from station.pipeline.lutinvert import compiled, warm_up

        warm_up(options.inverter)  # the kernels (numba's cache) and the model's LUT
        if options.inverter is not None and options.print is not None:
            compiled(options.inverter, print=options.print)  # the print composed into it
    return time.perf_counter() - t0


def run_frame(job: FrameJob, spec: BatchSpec) -> FrameResult:
    """Convert one frame unless its outputs are complete; a bad frame is a "failed" result
    with the one-line reason (never an exception)."""
    from station.errors import OutputError, StationError
    from station.pipeline.convert import convert_file

    t0 = time.perf_counter()
    options = job_options(job, spec.options)
    res = FrameResult(index=job.index, src=str(job.src), status=FAILED, worker=worker_name(),
                      rendering=options.rendering.id if options.rendering is not None else None)
    if spec.hash_inputs:
        res.sha256 = sha256_file(job.src)
    if spec.send_back:
        return _convert_and_send_back(job, spec, res, t0)
    try:
        state, frame_options = frame_state(job.src, job.outputs, options)
        if state == "complete":
            res.status, res.outputs = COMPLETE, {k: str(p) for k, p in job.outputs.items()}
        elif isinstance(state, tuple):  # ("foreign", path)
            res.reason = (f"output {state[1]} already exists and was not made from this input "
                          "(not overwriting; use --overwrite)")
        else:
            try:
                out = convert_file(job.src, job.outputs, frame_options)
            except OutputError:
                # another run of this same frame published it first (a worker thought lost
                # was still at work): complete now, not written twice
                if frame_state(job.src, job.outputs, options)[0] != "complete":
                    raise
                res.status, res.outputs = COMPLETE, {k: str(p) for k, p in job.outputs.items()}
            else:
                res.status, res.outputs = CONVERTED, {k: str(p) for k, p in out.outputs.items()}
                res.warnings = list(out.warnings)
    except StationError as exc:
        res.reason = exc.reason if exc.path is not None and Path(exc.path) == job.src else str(exc)
    except MemoryError:
        res.reason = "out of memory"
    except Exception as exc:  # a bug must not stop the batch: the frame fails with what happened
        res.reason = f"unexpected error ({exc.__class__.__name__}: {exc})"
    res.seconds = time.perf_counter() - t0
    res.finished = time.time()
    return res


def _convert_and_send_back(job: FrameJob, spec: BatchSpec, res: FrameResult, t0: float) -> FrameResult:
    """send_back: convert into a private folder (the same file names, so the same metadata)
    and return the encoded outputs; nothing is written where the client will publish."""
    import tempfile

    from station.errors import StationError
    from station.pipeline.convert import convert_file

    try:
        with tempfile.TemporaryDirectory(prefix="station-frame-") as tmp:
            local = {k: Path(tmp) / p.name for k, p in job.outputs.items()}
            out = convert_file(job.src, local, replace(job_options(job, spec.options), overwrite=False))
            res.data = {k: Path(p).read_bytes() for k, p in out.outputs.items()}
        res.status, res.warnings = CONVERTED, list(out.warnings)
        res.outputs = {k: str(job.outputs[k]) for k in res.data}
    except StationError as exc:
        res.reason = exc.reason if exc.path is not None and Path(exc.path) == job.src else str(exc)
    except MemoryError:
        res.reason = "out of memory"
    except Exception as exc:
        res.reason = f"unexpected error ({exc.__class__.__name__}: {exc})"
    res.seconds = time.perf_counter() - t0
    res.finished = time.time()
    return res


def publish_back(job: FrameJob, res: FrameResult, overwrite: bool) -> None:
    """The client's half of send_back: the frame's outputs published together (atomic), with
    overwrite only for a frame the client found half made; `res` loses its data."""
    from station.errors import OutputError
    from station.pipeline.write import publish_frame

    data, res.data = res.data or {}, None
    try:
        publish_frame({k: (job.outputs[k], lambda fh, b=b: fh.write(b)) for k, b in data.items()}, overwrite)
    except OutputError as exc:
        res.status, res.outputs, res.reason = FAILED, {}, str(exc)
