"""`station bench [FILE...] [--json] [--sizes 24,61] [--runs N]`: time the pipeline.

With no FILE, generates Bayer DNGs of a synthetic colour negative (orange
mask, rebate border, smooth scene, sensor noise) at the requested sizes in
megapixels (station.io.dng, so they go through LibRaw like a camera file).
For each file it reports per-stage medians over N runs for

* preview: fast decode (Bayer binning to the preview size, fastdecode.py),
  base, density, LUT inversion, JPEG encode + atomic write; and apart (not in
  the total) the frame checks' metrics the daemon's worker computes after
  each preview is out;
* master: what convert_file runs for a full-size RAW (fastmaster.py): LibRaw
  decode to uint16 (LINEAR demosaic), base, normaliser, one-pass shaper+LUT,
  16-bit TIFF encode + atomic write (the "normalise" column is the normaliser's
  statistics; density is folded into the LUT pass);

plus the peak resident memory of a fresh process benchmarking that file, and, when installed, the same file
through `rawtherapee-cli` (Film Negative tool) and `darktable-cli`
(negadoctor), timed as whole processes, with ratios.  Install them with
`apt-get install rawtherapee darktable`; absent ones are skipped.

`--json` prints one object: preview_s, master_s, peak_rss_mb (for the first
file) and, when the peers ran, rawtherapee_s, darktable_s; `files` holds the
details of every file.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# 24 MP = 6000x4000 (3:2), 61 MP = 9504x6336 (Sony A7R IV)
SIZES = {24: (6000, 4000), 61: (9504, 6336)}


def register(sub) -> None:
    p = sub.add_parser("bench", help="time preview and master conversion (and RawTherapee/darktable when installed)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="*", metavar="FILE", help="RAW files to time (default: generated DNGs)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--sizes", default="24", help="generated DNG sizes in MP, comma-separated (e.g. 24,61); default 24")
    p.add_argument("--runs", type=int, default=5, help="runs per stage (median reported); default 5")
    p.add_argument("--method", default=None, help="inversion method (default: the installed default)")
    p.add_argument("--model", default=None, help="model file for method mlp")
    p.add_argument("--no-peers", action="store_true", help="do not run rawtherapee-cli / darktable-cli")
    p.add_argument("--peer-runs", type=int, default=None, help="runs of each peer (default: min(runs, 3))")
    from station.commands.bench_batch import add_arguments

    add_arguments(p)  # --batch (bench_batch.py)
    p.set_defaults(func=run)


# --------------------------------------------------------------------------- synthetic negative
def synth_negative_cfa(width: int, height: int, seed: int = 0, pattern: str = "RGGB") -> np.ndarray:
    """A Bayer mosaic (HxW uint16) of a plausible scanned colour negative.

    Scene: smooth colour gradients and discs at 1/16 resolution, upsampled;
    film: density above base proportional to log exposure, per-layer gammas;
    rebate (bare base) around 6% of the border; orange base; sensor noise."""
    rng = np.random.default_rng(seed)
    h2, w2 = height // 2, width // 2
    sh, sw = max(4, h2 // 8), max(4, w2 // 8)
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    yy /= sh
    xx /= sw
    logE = np.stack([
        -2.2 + 2.4 * xx + 0.3 * np.sin(6 * yy),
        -2.2 + 2.4 * xx + 0.3 * np.sin(5 * yy + 1.0),
        -2.2 + 2.4 * xx + 0.4 * np.cos(4 * yy),
    ], axis=-1)
    for _ in range(12):
        cy, cx, r = rng.random(), rng.random(), 0.04 + 0.12 * rng.random()
        m = ((yy - cy) ** 2 + (xx - cx) ** 2) < r * r
        logE[m] += rng.normal(0, 0.5, 3).astype(np.float32)
    gamma = np.array([0.62, 0.66, 0.72], np.float32)
    D = np.clip(gamma * (logE + 2.6), 0.0, 2.6)
    by, bx = int(sh * 0.06), int(sw * 0.06)
    D[:by], D[-by:], D[:, :bx], D[:, -bx:] = 0.0, 0.0, 0.0, 0.0
    base = np.array([0.80, 0.42, 0.22], np.float32)  # camera RGB of light through the orange base
    lin = base * np.power(10.0, -D, dtype=np.float32)
    # upsample each channel to (h2, w2) by repetition (cheap; fine for timing and agreement tests)
    ry, rx = -(-h2 // sh), -(-w2 // sw)
    cfa = np.empty((height, width), np.uint16)
    white, black = 65535.0, 0.0
    codes = {"R": 0, "G": 1, "B": 2}
    for i, ch in enumerate(pattern.upper()):
        dy, dx = divmod(i, 2)
        plane = np.repeat(np.repeat(lin[..., codes[ch]], ry, axis=0), rx, axis=1)[:h2, :w2]
        noise = rng.standard_normal((h2, w2), dtype=np.float32)
        noise *= 0.004
        plane = plane * (1.0 + noise) * (white - black) + black
        cfa[dy::2, dx::2] = np.clip(plane, 0, 65535).astype(np.uint16)
    return cfa


def make_dng(path: Path, mp: int, seed: int = 0) -> Path:
    from station.io.dng import write_bayer_dng

    w, h = SIZES.get(mp) or _dims(mp)
    return write_bayer_dng(path, synth_negative_cfa(w, h, seed), pattern="RGGB")


def _make_isolated(path: Path, mp) -> Path:
    """make_dng in a child process (its ~2 GB peak at 61 MP stays out of the bench's RSS)."""
    import multiprocessing as mp_

    p = mp_.get_context("spawn").Process(target=make_dng, args=(path, mp))
    p.start()
    p.join()
    if p.exitcode != 0 or not path.exists():
        raise RuntimeError(f"could not generate {path}")
    return path


def _dims(mp: float) -> tuple[int, int]:
    h = int((mp * 1e6 / 1.5) ** 0.5) // 2 * 2
    return (int(h * 1.5) // 2 * 2, h)


# --------------------------------------------------------------------------- timing
def peak_rss_mb() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return ru / 1024.0 if sys.platform != "darwin" else ru / 2 ** 20


def _time_pipeline(src: Path, out_dir: Path, kind: str, inverter, runs: int) -> dict:
    """Per-stage medians of one pipeline (preview or master) over `runs` runs."""
    from station.pipeline.base import estimate_base
    from station.pipeline.convert import ConvertOptions, resize_long_side
    from station.pipeline.decode import decode
    from station.pipeline.fastdecode import decode_fast
    from station.pipeline.lutinvert import compiled
    from station.pipeline.normalise import density
    from station.pipeline.write import atomic_write, encode_jpeg, write_tiff16

    from station.pipeline.decode import decode_raw_u16, sniff
    from station.pipeline.fastmaster import invert_u16
    from station.pipeline.lutinvert import LutInverter

    opts = ConvertOptions()
    inv = compiled(inverter)
    fast_master = (sniff(src) == "raw" and isinstance(inv, LutInverter)
                   and getattr(inv.direct, "frame_affine", None) is not None)
    stages: dict[str, list[float]] = {k: [] for k in ("read", "decode", "base", "normalise", "invert", "checks",
                                                      "write", "total")}
    for i in range(runs):
        dst = out_dir / f"{src.stem}.{kind}.{i}.{'jpg' if kind == 'preview' else 'tif'}"
        t_start = time.perf_counter()
        # read: the file's bytes from the page cache (what the OS gives LibRaw)
        t0 = time.perf_counter()
        with open(src, "rb") as fh:
            while fh.read(1 << 24):
                pass
        stages["read"].append(time.perf_counter() - t0)
        t_start = time.perf_counter()  # the read above is measured apart; decode re-reads from cache
        if kind == "master" and fast_master:
            # what convert_file does for a full-size RAW: fastmaster.convert_master
            t0 = time.perf_counter()
            rgb16, meta = decode_raw_u16(src)
            stages["decode"].append(time.perf_counter() - t0)
            pos16, base, t = invert_u16(rgb16, inv)
            for k in ("base", "normalise", "invert"):
                stages[k].append(t[k])
            del rgb16
            t0 = time.perf_counter()
            write_tiff16(dst, pos16, meta, True)
            stages["write"].append(time.perf_counter() - t0)
            stages["total"].append(time.perf_counter() - t_start)
            del pos16
        else:
            t0 = time.perf_counter()
            dec = decode_fast(src, long_side=opts.preview_size) if kind == "preview" else decode(src)
            stages["decode"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            base = estimate_base(dec.rgb)
            stages["base"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            D = density(dec.rgb, base.rgb)
            stages["normalise"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            pos = inv(D)
            stages["invert"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            meta = dict(dec.meta)
            if kind == "preview":
                data = encode_jpeg(resize_long_side(pos, opts.preview_size), meta, opts.jpeg_quality)
                atomic_write(dst, lambda fh: fh.write(data), True)
            else:
                write_tiff16(dst, pos, meta, True)
            stages["write"].append(time.perf_counter() - t0)
            stages["total"].append(time.perf_counter() - t_start)
            if kind == "preview":  # the frame checks' metrics: the worker computes them after each
                from station.checks import metrics_for_decoded  # preview is out (not in its total)

                t0 = time.perf_counter()
                metrics_for_decoded(dec, pos, base)
                stages["checks"].append(time.perf_counter() - t0)
            del dec, D, pos
        try:
            dst.unlink()
        except OSError:
            pass
    med = {k: statistics.median(v) for k, v in stages.items() if v}
    med["runs"] = runs
    return med


# --------------------------------------------------------------------------- peers
PP3 = """[Version]
AppVersion=5.9
Version=346

[Exposure]
Auto=false
Clip=0.02
Compensation=0
Brightness=0
Contrast=0
Saturation=0
Black=0
HighlightCompr=0
HighlightComprThreshold=0
ShadowCompr=50
CurveMode=Standard
Curve=0;

[Film Negative]
Enabled=true
RedRatio=1.36
GreenExponent=1.5
BlueRatio=0.86
ColorSpace=1
RefInput=0;0;0;
RefOutput=0;0;0;
BackCompat=0

[RAW]
CA=false
HotPixelFilter=false
DeadPixelFilter=false

[RAW Bayer]
Method=amaze
"""


def _peer_cmd(name: str, src: Path, out: Path, work: Path) -> list[str] | None:
    if name == "rawtherapee":
        exe = shutil.which("rawtherapee-cli")
        if not exe:
            return None
        pp3 = work / "station-filmneg.pp3"
        pp3.write_text(PP3)
        # -p profile, -t 16-bit TIFF (-b16), -Y overwrite, -c input last
        return [exe, "-q", "-Y", "-b16", "-t", "-p", str(pp3), "-o", str(out.with_suffix(".tif")), "-c", str(src)]
    if name == "darktable":
        exe = shutil.which("darktable-cli")
        if not exe:
            return None
        from station.commands import _darktable

        xmp = _darktable.write_xmp(work / "station-negadoctor.xmp")
        conf = work / "dtconf"
        conf.mkdir(exist_ok=True)
        return [exe, str(src), str(xmp), str(out.with_suffix(".tif")), "--core", "--configdir", str(conf),
                "--library", ":memory:", "--conf", "plugins/imageio/format/tiff/bpp=16"]
    return None


def _run_peer(name: str, src: Path, work: Path, runs: int) -> dict | None:
    times, peaks, err = [], [], None
    for i in range(runs):
        out = work / f"{name}-{i}"
        cmd = _peer_cmd(name, src, out, work)
        if cmd is None:
            return None
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd] if Path("/usr/bin/time").exists() else cmd,
                                  capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return {"error": str(exc)}
        dt = time.perf_counter() - t0
        made = list(work.glob(f"{name}-{i}*.tif"))
        if proc.returncode != 0 or not made:
            err = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
            return {"error": f"exit {proc.returncode}: {' | '.join(err)}"}
        times.append(dt)
        try:
            peaks.append(int(proc.stderr.strip().splitlines()[-1]) / 1024.0)
        except (ValueError, IndexError):
            pass
        for f in made:
            f.unlink()
    res = {"median_s": statistics.median(times), "runs": len(times)}
    if peaks:
        res["peak_rss_mb"] = max(peaks)
    if name == "darktable":
        from station.commands import _darktable

        res["note"] = _darktable.NOTE
    return res


# --------------------------------------------------------------------------- command
PEERS = {"rawtherapee": "rawtherapee-cli", "darktable": "darktable-cli"}


def bench_file(src: Path, inverter, runs: int, peers: list[str], peer_runs: int, work: Path) -> dict:
    res = {"file": str(src), "megapixels": None}
    try:
        import rawpy

        with rawpy.imread(str(src)) as r:
            res["megapixels"] = round(r.sizes.width * r.sizes.height / 1e6, 2)
    except Exception:
        pass
    # warm-up (JIT kernels, LUT bake, page cache) is not timed
    _time_pipeline(src, work, "preview", inverter, 1)
    res["preview"] = _time_pipeline(src, work, "preview", inverter, runs)
    res["master"] = _time_pipeline(src, work, "master", inverter, max(1, min(runs, 3)))
    res["peak_rss_mb"] = peak_rss_mb()
    from station.pipeline.lutinvert import LutInverter, compiled

    inv = compiled(inverter)
    if isinstance(inv, LutInverter):
        res["lut"] = {"size": inv.size, "method": inv.method, "error_vs_direct": inv.lut.meta.get("error")}
    for name in peers:
        r = _run_peer(name, src, work, peer_runs)
        if r is not None:
            res[name] = r
    return res


def _child(q, src, method, model, runs, peers, peer_runs, work):  # pragma: no cover - runs in a child process
    from station.pipeline.invert import get_inverter

    try:
        q.put(bench_file(Path(src), get_inverter(method, model), runs, peers, peer_runs, Path(work)))
    except BaseException as exc:
        q.put({"error": f"{exc.__class__.__name__}: {exc}"})


def _bench_isolated(src: Path, method, model, runs, peers, peer_runs, work: Path) -> dict:
    """bench_file in a fresh process, so peak RSS is this file's alone (not the generator's or a
    bigger file's before it)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q, str(src), method, model, runs, peers, peer_runs, str(work)))
    p.start()
    res = q.get()
    p.join()
    if "error" in res:
        raise RuntimeError(f"bench of {src} failed: {res['error']}")
    return res


def summary(results: list[dict]) -> dict:
    first = results[0]
    out = {
        "preview_s": first["preview"]["total"],
        "master_s": first["master"]["total"],
        "peak_rss_mb": first["peak_rss_mb"],
    }
    for name in ("rawtherapee", "darktable"):
        if "median_s" in first.get(name, {}):
            out[f"{name}_s"] = first[name]["median_s"]
    out["machine"] = machine()
    out["files"] = results
    return out


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    gpu = ""
    try:
        import torch

        if torch.cuda.is_available():
            gpu = f", GPU {torch.cuda.get_device_name(0)}"
    except Exception:
        pass
    return f"{os.cpu_count()} CPU ({cpu}){gpu}, load {load:.2f} at start"


def _table(s: dict) -> str:
    lines = [f"station bench on {s['machine']}"]
    stages = ("decode", "base", "normalise", "invert", "checks", "write", "total")
    for r in s["files"]:
        lines.append(f"\n{r['file']} ({r['megapixels']} MP)")
        lines.append(f"  {'stage':<10}" + "".join(f"{k:>10}" for k in ("read",) + stages))
        for kind in ("preview", "master"):
            t = r[kind]
            lines.append(f"  {kind:<10}" + "".join(f"{t.get(k, float('nan')):>10.3f}" for k in ("read",) + stages)
                         + f"   (s, median of {t['runs']})")
        lines.append(f"  peak RSS {r['peak_rss_mb']:.0f} MB")
        if r.get("lut"):
            e = r["lut"].get("error_vs_direct") or {}
            lines.append(f"  LUT {r['lut']['size']}^3 {r['lut']['method']}"
                         + (f", max ΔE2000 {e['max']:.2f} / p99 {e['p99']:.2f} vs the direct model" if e else ""))
        for name, label in (("rawtherapee", "rawtherapee-cli Film Negative"), ("darktable", "darktable-cli negadoctor")):
            p = r.get(name)
            if p is None and s.get("peers_skipped"):
                lines.append(f"  {label}: not run (--no-peers)")
            elif p is None:
                lines.append(f"  {label}: not run (not installed: apt-get install {name}; or --no-peers)")
            elif "error" in p:
                lines.append(f"  {label}: failed ({p['error']})")
            else:
                m = r["master"]["total"]
                pv = r["preview"]["total"]
                lines.append(f"  {label}: {p['median_s']:.2f} s (peak {p.get('peak_rss_mb', float('nan')):.0f} MB)"
                             f" = {p['median_s'] / m:.1f}x our master, {p['median_s'] / pv:.0f}x our preview")
                if p.get("note"):
                    lines.append(f"    note: {p['note']}")
    return "\n".join(lines)


def run(args) -> int:
    from station.errors import StationError
    from station.pipeline.invert import get_inverter

    if getattr(args, "batch", False):
        from station.commands.bench_batch import run_batch_bench

        return run_batch_bench(args, sys.modules[__name__])  # (its generator, peer profile, machine line)
    try:
        get_inverter(args.method, args.model)  # refuse a bad --model before generating anything
    except StationError as exc:
        print(f"station bench: {exc}", file=sys.stderr)
        return 2
    runs = max(1, int(args.runs))
    peer_runs = args.peer_runs if args.peer_runs is not None else min(runs, 3)
    with tempfile.TemporaryDirectory(prefix="station-bench-") as tmp:
        work = Path(tmp)
        files = [Path(f) for f in args.files]
        for f in files:
            if not f.is_file():
                print(f"station bench: {f}: no such file", file=sys.stderr)
                return 2
        if not files:
            try:
                sizes = [float(s) for s in str(args.sizes).split(",") if s.strip()]
            except ValueError:
                print(f"station bench: --sizes wants numbers like 24,61, got {args.sizes!r}", file=sys.stderr)
                return 2
            for mp in sizes:
                mp_key = int(mp) if float(mp).is_integer() and int(mp) in SIZES else mp
                if not args.json:
                    print(f"generating a {mp:g} MP Bayer DNG ...", file=sys.stderr)
                files.append(_make_isolated(work / f"synthetic-{mp:g}MP.dng", mp_key))
        peers = [] if args.no_peers else [n for n, exe in PEERS.items() if shutil.which(exe)]
        results = [_bench_isolated(f, args.method, args.model, runs, peers, max(1, peer_runs), work)
                   for f in files]
    s = summary(results)
    s["peers_skipped"] = bool(args.no_peers)
    if args.json:
        print(json.dumps(s, indent=None, default=float))
    else:
        print(_table(s))
    return 0
