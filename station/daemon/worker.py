"""The body of a decoder worker process.

Runs in a child started with `forkserver` or `spawn` (never `fork`: rawpy's
OpenMP runtime can deadlock in a forked child).  It imports the pipeline and
builds the inverter ONCE, then converts one job at a time from its pipe.
Anything that parses an untrusted file happens here, so a crash in LibRaw
takes only this process (and its frame) with it.

Messages, parent → child: {"id", "stage", "src", "outputs": {kind: path},
"half_size", "hash", "base": [r,g,b] | None, "overwrite": bool, "print": {...} | None,
"rendering": dict | None, "sample": bool, "flatfield": path | None, "film": str | None,
"negative": bool} or None (exit).  "negative": the roll has a calibrated blank (so, with the
station's blank, the film is a negative: "auto" never picks slide).
"film": the roll's film type (manifest `film:`; ConvertOptions.film, None = colour; the reply's
"film" is the type rendered, detected for "auto"; for "auto" with a rendering, the type the
roll settled on, the rendering's "film", is used).  "flatfield": the
roll's saved flat field (.npz), else the station's (settings "flatfield", inversion.flatfield).  "print": the frame's print settings
(printing.PrintSettings), None = as inverted.  "rendering": the roll's locked rendering
(pipeline/roll.py), applied instead of the per-frame base and normaliser; "sample": also return
the frame's roll-analysis sample ("sample" in the reply, and "blank": the configured blank's base).
With "overwrite" (a re-render, or a retry of a frame with its own outputs) every output
is made again and replaces the old one atomically; otherwise outputs that already exist
are kept (a daemon killed after writing one: outputs are atomic, so it is complete).
Child → parent: first {"ready": True, "pid", "inverter", "error", "error_key"} once
loaded (error: the model or base frame cannot be used; error_key: its setting), then per
job {"id", "ok": True, "written": {kind: path}, "skipped": [kinds], "warnings": [lines],
"sha256", "base": [r,g,b], "timings", "checks_follow": bool} or
{"id", "ok": False, "reason", "kind"}; after a result with "checks_follow",
{"id", "checks_metrics": {...} | None, "checks_error": str | None}.

Frame checks (settings["checks"] = the `checks:` config, enabled): on the preview
stage the worker keeps the frame it has just decoded and inverted, sends the
preview's result at once (the preview's latency does not pay for the checks),
then computes the checks' metrics (station.checks.metrics_for_decoded) from that
frame and sends them as a follow-up message for the same job id;
the daemon turns them into findings with the roll's context and never decodes
a RAW itself.  A preview that already existed (kept, not re-made) has no metrics.

Test hooks (environment, fnmatch globs on the file name; for the fault
tests only): STATION_FAULT_KILL (the worker SIGKILLs itself mid-frame),
STATION_FAULT_HANG (the worker hangs), STATION_FAULT_ENOSPC (writing an
output fails with ENOSPC), STATION_FAULT_KILL_WRITING (the worker SIGKILLs
itself halfway through writing an output).
"""
from __future__ import annotations

import errno
import fnmatch
import hashlib
import os
import signal
import sys
import time
from pathlib import Path


def _fault(name: str, var: str, stage: str | None = None) -> bool:
    """Each comma-separated pattern is a glob, optionally prefixed by a stage: "master:slow*.dng"."""
    pat = os.environ.get(var)
    if not pat:
        return False
    for p in pat.split(","):
        st, _, glob = p.rpartition(":")
        if (not st or st == stage) and fnmatch.fnmatch(name, glob):
            return True
    return False


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load(settings: dict):
    """Build (inverter, base, error_reason, config_key): the key (inversion.model /
    inversion.base) names the setting at fault, so the daemon can refuse to start."""
    from station.errors import StationError
    from station.pipeline.invert import get_inverter

    inverter = base = None
    err = key = None
    try:
        method = settings.get("method")
        inverter = get_inverter(None if method in (None, "auto") else method, settings.get("model"))
    except StationError as exc:
        err = f"inverter unavailable: {exc}"
    except Exception as exc:  # a broken model file must not kill the worker
        err = f"inverter unavailable: {exc.__class__.__name__}: {exc}"
    if err is not None:
        key = "inversion.model" if settings.get("model") else "inversion.method"
    if settings.get("base") and err is None:
        try:
            from station.pipeline.base import base_from_blank
            from station.pipeline.decode import decode

            base = base_from_blank(decode(settings["base"], half_size=True).rgb)
        except StationError as exc:
            err, key = f"film-base frame unusable: {exc}", "inversion.base"
        except Exception as exc:
            err, key = f"film-base frame unusable ({settings['base']}): {exc}", "inversion.base"
    return inverter, base, err, key


def _load_flat(settings: dict):
    """(the station-wide flat field or None, error_reason, config_key): inversion.flatfield."""
    if not settings.get("flatfield"):
        return None, None, None
    try:
        from station.pipeline.flatfield import load_flat

        return load_flat(settings["flatfield"]), None, None
    except Exception as exc:  # refused (not a bare light), unreadable: the daemon does not start
        return None, f"flat field unusable ({settings['flatfield']}): {exc}", "inversion.flatfield"


_ROLL_FLATS: dict = {}  # path -> (mtime_ns, FlatField): the rolls' flatfield.npz, read once per change


def _roll_flat(path: str | None):
    """A roll's saved flat field (state/rolls/<roll>/flatfield.npz, the station's own file), or None."""
    if not path:
        return None
    from station.pipeline.flatfield import FlatField

    try:
        mtime = os.stat(path).st_mtime_ns
        hit = _ROLL_FLATS.get(path)
        if hit is None or hit[0] != mtime:
            _ROLL_FLATS[path] = hit = (mtime, FlatField.load(path))
        return hit[1]
    except (OSError, ValueError) as exc:
        print(f"station worker: {path}: flat field unusable ({exc}); the frame is made without it", file=sys.stderr)
        return None


def _extra_meta(story, settings: dict) -> dict:
    """What a frame's outputs carry besides the RAW's fields: the film's story (film_stock,
    film_type, roll, frame, shot_date: processor.frame_story) and the output colour spaces."""
    meta = {k: v for k, v in (story or {}).items() if v not in (None, "")}
    for key in ("colour_space", "jpeg_colour_space"):
        if settings.get(key, "srgb") != "srgb":
            meta[f"station_{key}"] = settings[key]
    return meta


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when its parent (the fork server or the daemon)
    dies, so a `kill -9` of the daemon leaves no worker writing behind its back."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        ppid = os.getppid()
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != ppid:
            os._exit(1)
    except Exception:
        pass


def main(conn, settings: dict) -> None:
    """Worker entry point (a top-level function so that spawn can find it)."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    nice = settings.get("nice", 0)
    if nice:
        try:
            os.nice(nice)
        except OSError:
            pass
    import numpy as np  # noqa: F401  (pre-import: the first frame must not pay for it)

    import station.pipeline.write as write
    from station.errors import OutputError, StationError
    from station.pipeline.base import BaseEstimate
    from station.pipeline.convert import ConvertOptions, convert_file
    from station.pipeline.printing import PrintError, PrintSettings

    inverter, base, load_error, error_key = _load(settings)
    station_flat = None
    if load_error is None:
        station_flat, load_error, flat_key = _load_flat(settings)
        error_key = flat_key or error_key
    check_params = None
    if settings.get("checks") is not None:
        from station.checks import checks_from_config

        enabled, params = checks_from_config(settings["checks"])
        check_params = params if enabled else None
    if load_error is None:
        try:  # compile (or load from numba's cache) the fast kernels and bake the LUT once
            from station.pipeline.lutinvert import warm_up

            warm_up(inverter)
            for key in ("colour_space", "jpeg_colour_space"):  # and the colour-space pass, when one is set
                if settings.get(key, "srgb") != "srgb":
                    from station.pipeline.colourspace import convert

                    convert(np.zeros((2, 2, 3), np.uint16), settings[key])
        except Exception as exc:  # the slow path still works
            print(f"station worker: warm-up failed: {exc}", file=sys.stderr)
    conn.send({"ready": True, "pid": os.getpid(), "inverter": getattr(inverter, "name", None), "error": load_error,
               "error_key": error_key})

    def enospc(path, data_writer):  # test seam: the output disk is full
        def full(fh):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return full

    def killed(path, data_writer):  # test seam: killed mid-write, the dot-temporary stays behind
        def half_then_die(fh):
            fh.write(b"II*\x00partial")
            fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return half_then_die

    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        jid = msg["id"]
        src = msg["src"]
        conn.send({"id": jid, "started": True})  # from here on, a crash is this frame's
        name = Path(src).name
        try:
            if _fault(name, "STATION_FAULT_KILL", msg.get("stage")):
                os.kill(os.getpid(), signal.SIGKILL)
            if _fault(name, "STATION_FAULT_HANG", msg.get("stage")):
                while True:
                    time.sleep(3600)
            if load_error:
                raise StationError(None, load_error)
            outputs = {k: Path(v) for k, v in msg["outputs"].items()}
            overwrite = bool(msg.get("overwrite"))
            todo = {k: v for k, v in outputs.items() if overwrite or not v.exists()}
            skipped = sorted(set(outputs) - set(todo))
            for p in todo.values():
                p.parent.mkdir(parents=True, exist_ok=True)
            result = {"id": jid, "ok": True, "written": {}, "skipped": skipped, "sha256": None,
                      "base": msg.get("base"), "timings": {}, "checks_follow": False}
            checked = []  # (decoded, positive, base) of this preview, for the checks' follow-up
            if not Path(src).is_file():
                raise StationError(src, "file disappeared before it was processed (deleted while queued)")
            if overwrite and any(Path(v).resolve() == Path(src).resolve() for v in todo.values()):
                raise StationError(src, "an output path is the RAW itself (not overwriting)")
            rendering = None
            if msg.get("rendering"):
                from station.pipeline.roll import Rendering

                rendering = Rendering.from_dict(msg["rendering"])
            result["rendering"] = rendering.id if rendering is not None else None
            if msg.get("sample") and not todo:  # outputs kept from before: the roll still needs the sample
                from station.pipeline.fastdecode import decode_fast
                from station.pipeline.flatfield import apply_flat
                from station.pipeline.roll import frame_sample

                rgb = decode_fast(src, long_side=settings.get("preview_size", 1600)).rgb
                flat = _roll_flat(msg.get("flatfield")) or station_flat  # as the frame was converted
                sample = frame_sample(apply_flat(rgb, flat))
                sample.film = msg.get("film") or "colour"
                if sample.film == "auto":  # the frame's vote for its roll's type
                    from station.pipeline.films import detect

                    negative = bool(msg.get("negative")) or base is not None  # a blank: a negative film
                    sample.film = detect(apply_flat(rgb, flat), sample.rebate, negative)[0]
                result["sample"] = sample.to_dict()
            if todo:
                b = msg.get("base")
                observe = None
                if check_params is not None and msg.get("stage") == "preview":
                    def observe(dec, pos, base_used):
                        checked[:] = [(dec, pos, base_used)]
                # a blank (the roll's calibrated one, or the station's) says the film is a negative:
                # film auto never renders a frame as a slide then (films.choose, by the base's source)
                given = "blank frame (calibrated)" if msg.get("negative") or base is not None else "preview"
                opts = ConvertOptions(
                    inverter=inverter,
                    # a roll's rendering brings its own base (the blank's, or the roll's rebate)
                    base=None if rendering is not None else
                    BaseEstimate(np.asarray(b, dtype=np.float32), given) if b is not None else base,
                    rendering=rendering, sample=bool(msg.get("sample")),
                    half_size=msg.get("half_size", False),
                    jpeg_quality=settings.get("jpeg_quality", 90),
                    # the film's story from the roll's manifest, the output colour spaces (metadata.py)
                    extra_meta=_extra_meta(msg.get("story"), settings),
                    preview_size=settings.get("preview_size", 1600),
                    overwrite=overwrite,
                    print=PrintSettings.from_dict(msg["print"]) if msg.get("print") else None,
                    observe=observe,
                    # the roll's flat field (`station roll flatfield`), else the station's
                    flatfield=_roll_flat(msg.get("flatfield")) or station_flat,
                    # the roll's film type (manifest `film:`); auto: the one its rendering settled on
                    film=(rendering.film if rendering is not None and rendering.film and msg.get("film") == "auto"
                          else msg.get("film") or "colour"),
                )
                write.set_fault(enospc if _fault(name, "STATION_FAULT_ENOSPC", msg.get("stage"))
                                else killed if _fault(name, "STATION_FAULT_KILL_WRITING", msg.get("stage"))
                                else None)
                try:
                    res = None
                    for _ in range(3):
                        try:
                            res = convert_file(src, todo, opts)
                            break
                        except OutputError as exc:
                            # "already exists": a worker of a daemon that was killed finished
                            # it meanwhile; outputs are atomic, so that file is complete.
                            if not (exc.path is not None and exc.path.exists() and "already exists" in exc.reason):
                                raise
                            todo = {k: v for k, v in todo.items() if not v.exists()}
                            skipped = sorted(set(outputs) - set(todo))
                            result["skipped"] = skipped
                            if not todo:
                                break
                finally:
                    write.set_fault(None)
                if res is not None:
                    result["written"] = {k: str(v) for k, v in res.outputs.items()}
                    result["warnings"] = list(res.warnings)  # e.g. "looks like a positive"
                    result["base"] = [float(v) for v in res.base.rgb]
                    result["timings"] = {k: round(v, 4) for k, v in res.timings.items()}
                    result["rendering"] = res.rendering
                    result["film"] = res.film
                    if res.sample is not None:
                        result["sample"] = res.sample.to_dict()
            if result.get("sample") and base is not None:
                result["blank"] = [float(v) for v in base.rgb]
            if msg.get("hash"):
                result["sha256"] = _sha256(src)
            result["checks_follow"] = bool(checked)
            conn.send(result)
            if checked:  # the preview is out: now the frame checks' numbers, from the same frame
                from station.checks import metrics_for_decoded

                follow = {"id": jid, "checks_metrics": None, "checks_error": None}
                try:  # a check that fails must not fail the frame
                    follow["checks_metrics"] = metrics_for_decoded(*checked[0], check_params)
                except Exception as exc:
                    follow["checks_error"] = f"{exc.__class__.__name__}: {exc}"
                checked.clear()
                conn.send(follow)
        except StationError as exc:
            reason = exc.reason
            if isinstance(exc, OutputError) and exc.path is not None:
                reason = f"{exc.path.name}: {exc.reason}"
            conn.send({"id": jid, "ok": False, "reason": reason, "kind": type(exc).__name__})
        except PrintError as exc:
            conn.send({"id": jid, "ok": False, "reason": f"print settings unusable ({exc})", "kind": "PrintError"})
        except MemoryError:
            conn.send({"id": jid, "ok": False, "reason": "out of memory", "kind": "MemoryError"})
        except FileNotFoundError:
            conn.send({"id": jid, "ok": False, "reason": "file disappeared before it was processed (deleted while queued)",
                       "kind": "FileNotFoundError"})
        except Exception as exc:
            conn.send({"id": jid, "ok": False, "reason": f"{exc.__class__.__name__}: {exc}", "kind": type(exc).__name__})

