"""`station bench --batch`: frames/s of a whole batch (`station invert` as a user runs it) with
1 job, N jobs and a local Dask cluster of N workers, next to rawtherapee-cli's own batch
(one process, its Film Negative tool, 16-bit TIFF) on the same frames.

The frames are copies of one generated 24 MP Bayer DNG of a synthetic negative (bench.py's,
through LibRaw like a camera file); each mode converts all of them into an empty folder
(16-bit TIFF only, as rawtherapee writes), timed as the whole command (start-up, worker
start, LUT load included), after one untimed warm-up run (numba's and the LUT's caches).
Each station mode also reports its running rate: frames/s from the first frame done to the
last (the manifest's times), what a long archive converts at once the workers are up.
The modes run in turn, `--rounds` times (load from other jobs drifts; interleaving keeps
the comparison fair), and each mode's best round is reported.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("--batch", action="store_true",
                   help="frames/s of `station invert` with 1 job, N jobs and a local Dask cluster, "
                        "and rawtherapee-cli's batch, on generated frames (see --frames, --jobs)")
    p.add_argument("--frames", type=int, default=8, help="--batch: frames in the batch (default 8)")
    p.add_argument("--jobs", type=int, default=None, help="--batch: N (default: the number of cores)")
    p.add_argument("--rounds", type=int, default=2,
                   help="--batch: the modes run in turn this many times (load from other jobs drifts: each "
                        "mode's best round is reported, every round kept in --json); default 2")


def _generate(bench, path: Path, mp) -> Path:
    """bench.make_dng in a child process (a 24 MP generation's peak memory stays out of ours)."""
    import multiprocessing

    p = multiprocessing.get_context("spawn").Process(target=bench.make_dng, args=(path, mp))
    p.start()
    p.join()
    if p.exitcode != 0 or not path.exists():
        raise RuntimeError(f"could not generate {path}")
    return path


def _timed(cmd: list[str], env=None) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=7200)
    return time.perf_counter() - t0, proc


def _station(*args) -> list[str]:
    return [sys.executable, "-m", "station", *map(str, args)]


def run_batch_bench(args, bench) -> int:
    """`bench`: the station.commands.bench module (handed over, not imported: it imports this one)."""
    from station.batch.cluster import available
    from station.batch.local import default_jobs

    n_frames = max(2, int(args.frames))
    jobs = max(1, int(args.jobs or default_jobs()))
    try:
        mp = float(str(args.sizes).split(",")[0])
    except ValueError:
        print(f"station bench: --sizes wants a number like 24, got {args.sizes!r}", file=sys.stderr)
        return 2
    extra = []
    if args.method:
        extra += ["--method", args.method]
    if args.model:
        extra += ["--model", args.model]
    results: dict = {"frames": n_frames, "megapixels": mp, "jobs": jobs, "machine": bench.machine(), "modes": {}}
    say = (lambda line: print(line, file=sys.stderr)) if args.json else print
    with tempfile.TemporaryDirectory(prefix="station-bench-batch-") as tmp:
        work = Path(tmp)
        src_dir = work / "frames"
        src_dir.mkdir()
        say(f"generating a {mp:g} MP Bayer DNG and {n_frames - 1} copies ...")
        one = _generate(bench, work / "synthetic.dng", int(mp) if mp.is_integer() and int(mp) in bench.SIZES else mp)
        for i in range(n_frames):
            shutil.copyfile(one, src_dir / f"frame{i:03d}.dng")
        warm = _station("invert", src_dir / "frame000.dng", "--out", work / "warm", "--format", "tiff", "--jobs", "1", *extra)
        _, proc = _timed(warm)
        if proc.returncode != 0:
            print(f"station bench: warm-up failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            return 1
        modes = [("1 job", ["--jobs", "1"]), (f"{jobs} jobs", ["--jobs", str(jobs)])]
        if available():
            modes.append((f"local cluster ({jobs} workers)", ["--cluster", f"local:{jobs}"]))
        else:
            say("local cluster: not run (pip install 'station[cluster]')")
        cmds = {name: _station("invert", src_dir, "--out", "{out}", "--format", "tiff", "--manifest", "{manifest}",
                               *flags, *extra) for name, flags in modes}
        exe = shutil.which("rawtherapee-cli")
        if exe and not args.no_peers:
            pp3 = work / "station-filmneg.pp3"
            pp3.write_text(bench.PP3)
            cmds["rawtherapee-cli batch"] = [exe, "-q", "-Y", "-b16", "-t", "-p", str(pp3), "-o", "{out}", "-c",
                                             *map(str, sorted(src_dir.glob("*.dng")))]
        else:
            say("rawtherapee-cli batch: not run (" + ("--no-peers" if exe else "apt-get install rawtherapee") + ")")
        rounds = max(1, int(args.rounds))
        for r in range(rounds):
            for i, (name, cmd) in enumerate(cmds.items()):
                out = work / f"out-{i}"
                out.mkdir()
                manifest = work / f"manifest-{i}.jsonl"
                dt, proc = _timed([str(out) if c == "{out}" else str(manifest) if c == "{manifest}" else c for c in cmd])
                made = len(list(out.glob("*.tif")))
                steady = _steady_rate(manifest)
                manifest.unlink(missing_ok=True)
                shutil.rmtree(out, ignore_errors=True)
                m = results["modes"].setdefault(name, {"rounds_s": []})
                if proc.returncode != 0 or made != n_frames:
                    m["error"] = f"exit {proc.returncode}, {made} of {n_frames} made: " + \
                        (proc.stderr.strip().splitlines() or ["?"])[-1]
                    continue
                m["rounds_s"].append(round(dt, 2))
                m["seconds"] = min(m["rounds_s"])
                m["frames_per_s"] = n_frames / m["seconds"]
                if steady:
                    m["steady_frames_per_s"] = max(m.get("steady_frames_per_s", 0.0), steady)
                if r == rounds - 1:
                    say(_line(name, m, results["modes"].get("1 job")))
    results["load_after"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    if args.json:
        print(json.dumps(results))
    else:
        print(f"({n_frames} frames of {mp:g} MP, 16-bit TIFF out; {results['machine']}, "
              f"load {results['load_after']:.2f} at the end)")
    return 0 if all("error" not in m for m in results["modes"].values()) else 1


def _steady_rate(manifest: Path) -> float | None:
    """Frames/s once the workers are running: (frames - 1) over the time from the first frame
    done to the last (the manifest's "finished"); what a long batch (an archive) converts at."""
    import datetime

    try:
        times = sorted(datetime.datetime.fromisoformat(json.loads(line)["finished"]).timestamp()
                       for line in manifest.read_text().splitlines() if line.strip())
    except (OSError, KeyError, ValueError):
        return None
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) >= 3 and times[-1] > times[0] else None


def _line(name: str, m: dict, base: dict | None) -> str:
    if "error" in m:
        return f"  {name:<32} failed: {m['error']}"
    ratio = ""
    if base and "frames_per_s" in base and base is not m:
        ratio = f"  ({m['frames_per_s'] / base['frames_per_s']:.2f}x 1 job)"
    runs = ", ".join(f"{t:.1f}" for t in m.get("rounds_s", []))
    steady = ""
    if "steady_frames_per_s" in m:
        steady = f"; running: {m['steady_frames_per_s']:.3f} frames/s"
        if base and "steady_frames_per_s" in base and base is not m:
            steady += f" ({m['steady_frames_per_s'] / base['steady_frames_per_s']:.2f}x)"
    return f"  {name:<32} {m['frames_per_s']:6.3f} frames/s  (best of {runs} s){ratio}{steady}"
