#!/usr/bin/env python3
"""Benchmark the daemon's latency: drop N 24 MP negative DNGs into incoming/
and print median / p90 of complete→preview and complete→master.

    PYTHONPATH=. python tools/bench_latency.py [--frames 8] [--interval 3] [--size 6000x4000]
                                               [--workers 2] [--burst] [--keep DIR]
                                               [--publish rename|move|both]

A benchmark, not a test: it starts the real daemon (`python -m station run`)
on temporary folders, publishes each DNG one every --interval seconds (an
operator advancing the film) or all at once (--burst), waits until every
master is written and reads the latencies from the journal.  Two ways to
publish (--publish both, the default, runs each on a fresh daemon):
  rename  written under a dot-name inside incoming/, then renamed (a tether, gphoto2)
  move    written in a folder outside incoming/, then moved in (`mv` from elsewhere:
          one inotify MOVED_TO and no close event)
Besides complete→preview/master (the journal's latencies) it prints
publish→taken (from the moment the file was published to the daemon taking it as
complete: the journal's t_seen; the intake wait alone, whatever the decoding load)
and publish→preview (to its preview in the journal).
Prints the machine (CPU count, model) with the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def negative_dng(path: Path, h: int, w: int, seed: int) -> None:
    from station.io.dng import mosaic, write_bayer_dng

    rng = np.random.default_rng(seed)
    base = np.array([0.80, 0.45, 0.25], dtype=np.float32)
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    xx = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    scene = np.empty((h, w, 3), dtype=np.float32)
    scene[..., 0] = xx
    scene[..., 1] = yy
    scene[..., 2] = 0.5 + 0.4 * np.sin((xx * w + yy * h) / (300 + 40 * seed))
    scene += rng.normal(0, 0.01, (h, w, 1)).astype(np.float32)
    np.clip(scene, 0.02, 0.98, out=scene)
    img = base * np.power(10.0, -(0.2 + 1.6 * scene)).astype(np.float32)
    b = h // 12
    img[:b], img[-b:], img[:, :b], img[:, -b:] = base, base, base, base
    write_bayer_dng(path, (np.clip(mosaic(img), 0, 1) * 60000).astype(np.uint16))


def pct(v, q):
    v = sorted(v)
    if not v:
        return float("nan")
    k = (len(v) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def run_once(args, work: Path, srcs: list, mode: str) -> dict | None:
    """Start a fresh daemon, publish the frames by `mode` (rename|move), return the figures."""
    import shutil

    w, h = (int(x) for x in args.size.lower().split("x"))
    for d in ("incoming", "output", "state", "outside"):
        shutil.rmtree(work / d, ignore_errors=True)
        (work / d).mkdir(parents=True, exist_ok=True)
    cfg = work / "bench.yaml"
    cfg.write_text(json.dumps({"workers": {"count": args.workers}, "inversion": {"method": args.method},
                               "watcher": {"rescan_interval": 0}}))
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    env.pop("NOTIFY_SOCKET", None)
    log = open(work / "daemon.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "station", "run", "--config", str(cfg), "--incoming",
                             str(work / "incoming"), "--output", str(work / "output"), "--state", str(work / "state"),
                             "--web", "off"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while b"ready:" not in (work / "daemon.log").read_bytes():
            if proc.poll() is not None or time.time() > deadline:
                print((work / "daemon.log").read_text(), file=sys.stderr)
                return None
            time.sleep(0.1)
        names = []
        published = {}
        for i in range(args.frames):
            name = f"frame{i:03d}.dng"
            # rename: a dot-temporary inside incoming/; move: a file in a folder outside it
            tmp = (work / "incoming" / f".{name}.tmp") if mode == "rename" else (work / "outside" / name)
            data = srcs[i % len(srcs)].read_bytes()
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            published[name] = time.time()
            os.rename(tmp, work / "incoming" / name)
            names.append(name)
            if not args.burst and args.interval and i + 1 < args.frames:
                time.sleep(args.interval)
        db = sqlite3.connect(str(work / "state" / "journal.sqlite"), timeout=10)
        deadline = time.time() + 60 + 30 * args.frames
        while time.time() < deadline:
            rows = db.execute("SELECT path, state, lat_preview, lat_master, reason, t_preview FROM frames").fetchall()
            if len(rows) == len(names) and all(r[1] in ("master_written", "failed") for r in rows):
                break
            time.sleep(0.2)
        rows = db.execute("SELECT path, state, lat_preview, lat_master, reason, t_preview, t_seen FROM frames ORDER BY id").fetchall()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()
    prev = [r[2] for r in rows if r[2] is not None]
    mast = [r[3] for r in rows if r[3] is not None]
    pub = [r[5] - published[r[0]] for r in rows if r[5] is not None and r[0] in published]
    taken = [r[6] - published[r[0]] for r in rows if r[6] is not None and r[0] in published]
    failed = [(r[0], r[4]) for r in rows if r[1] == "failed"]

    def fig(v):
        return {"median": round(pct(v, 50), 3), "p90": round(pct(v, 90), 3), "max": round(max(v), 3) if v else None}

    return {
        "machine": {"cpus": os.cpu_count(), "cpu": cpu_model(), "python": platform.python_version()},
        "frames": len(rows), "size": f"{w}x{h}", "workers": args.workers, "publish": mode,
        "mode": "burst" if args.burst else f"one every {args.interval:g} s",
        "publish_taken": fig(taken), "publish_preview": fig(pub), "preview": fig(prev), "master": fig(mast), "failed": failed,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--interval", type=float, default=3.0, help="seconds between frames (0 = burst)")
    ap.add_argument("--burst", action="store_true", help="drop all frames at once")
    ap.add_argument("--size", default="6000x4000", help="WxH of the DNGs (default 24 MP)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--method", default="auto", help="inversion.method (auto|classic|mlp)")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it")
    ap.add_argument("--publish", choices=("rename", "move", "both"), default="both",
                    help="rename inside incoming/, move in from another folder, or both (default)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    w, h = (int(x) for x in args.size.lower().split("x"))
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="station-bench-"))
    (work / "src").mkdir(parents=True, exist_ok=True)  # generated sources are kept; each run is fresh
    print(f"generating {min(args.frames, 3)} distinct {w}x{h} negative DNGs ...", file=sys.stderr)
    srcs = []
    for i in range(min(args.frames, 3)):
        p = work / "src" / f"neg{i}.dng"
        if not p.exists():
            negative_dng(p, h, w, i)
        srcs.append(p)
    results = []
    for mode in (("rename", "move") if args.publish == "both" else (args.publish,)):
        res = run_once(args, work, srcs, mode)
        if res is None:
            return 1
        results.append(res)
    failed = [f for r in results for f in r["failed"]]
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0], indent=2))
    else:
        m = results[0]["machine"]
        print(f"machine: {m['cpus']} CPUs, {m['cpu']}; {results[0]['frames']} frames {results[0]['size']}, "
              f"{args.workers} workers, {results[0]['mode']}")
        for r in results:
            print(f"[published by {r['publish']}]")
            for key, label in (("publish_taken", "publish→taken:   "), ("publish_preview", "publish→preview: "), ("preview", "complete→preview:"),
                               ("master", "complete→master: ")):
                v = r[key]
                print(f"  {label} median {v['median']:.3f} s, p90 {v['p90']:.3f} s, max {v['max']}")
            for f in r["failed"]:
                print(f"  FAILED {f[0]}: {f[1]}")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0 if not failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
