#!/usr/bin/env python3
"""Benchmark the daemon's latency: drop N 24 MP negative DNGs into incoming/
and print median / p90 of complete→preview and complete→master.

    PYTHONPATH=. python tools/bench_latency.py [--frames 8] [--interval 3] [--size 6000x4000]
                                               [--workers 2] [--burst] [--keep DIR]

A benchmark, not a test: it starts the real daemon (`python -m station run`)
on temporary folders, publishes each DNG by rename (as a tether does), one
every --interval seconds (an operator advancing the film) or all at once
(--burst), waits until every master is written and reads the latencies from
the journal.  Prints the machine (CPU count, model) with the figures.
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--interval", type=float, default=3.0, help="seconds between frames (0 = burst)")
    ap.add_argument("--burst", action="store_true", help="drop all frames at once")
    ap.add_argument("--size", default="6000x4000", help="WxH of the DNGs (default 24 MP)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--method", default="auto", help="inversion.method (auto|classic|mlp)")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    w, h = (int(x) for x in args.size.lower().split("x"))
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="station-bench-"))
    import shutil

    for d in ("incoming", "output", "state"):  # a fresh run (generated sources are kept)
        shutil.rmtree(work / d, ignore_errors=True)
    for d in ("incoming", "output", "state", "src"):
        (work / d).mkdir(parents=True, exist_ok=True)
    print(f"generating {min(args.frames, 3)} distinct {w}x{h} negative DNGs ...", file=sys.stderr)
    srcs = []
    for i in range(min(args.frames, 3)):
        p = work / "src" / f"neg{i}.dng"
        if not p.exists():
            negative_dng(p, h, w, i)
        srcs.append(p)
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
                return 1
            time.sleep(0.1)
        names = []
        for i in range(args.frames):
            name = f"frame{i:03d}.dng"
            tmp = work / "incoming" / f".{name}.tmp"
            data = srcs[i % len(srcs)].read_bytes()
            tmp.write_bytes(data)
            os.rename(tmp, work / "incoming" / name)
            names.append(name)
            if not args.burst and args.interval and i + 1 < args.frames:
                time.sleep(args.interval)
        db = sqlite3.connect(str(work / "state" / "journal.sqlite"), timeout=10)
        deadline = time.time() + 60 + 30 * args.frames
        while time.time() < deadline:
            rows = db.execute("SELECT path, state, lat_preview, lat_master, reason FROM frames").fetchall()
            if len(rows) == len(names) and all(r[1] in ("master_written", "failed") for r in rows):
                break
            time.sleep(0.2)
        rows = db.execute("SELECT path, state, lat_preview, lat_master, reason FROM frames ORDER BY id").fetchall()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    prev = [r[2] for r in rows if r[2] is not None]
    mast = [r[3] for r in rows if r[3] is not None]
    failed = [(r[0], r[4]) for r in rows if r[1] == "failed"]
    result = {
        "machine": {"cpus": os.cpu_count(), "cpu": cpu_model(), "python": platform.python_version()},
        "frames": len(rows), "size": f"{w}x{h}", "workers": args.workers,
        "mode": "burst" if args.burst else f"one every {args.interval:g} s",
        "preview": {"median": round(pct(prev, 50), 3), "p90": round(pct(prev, 90), 3), "max": round(max(prev), 3) if prev else None},
        "master": {"median": round(pct(mast, 50), 3), "p90": round(pct(mast, 90), 3), "max": round(max(mast), 3) if mast else None},
        "failed": failed,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        m = result["machine"]
        print(f"machine: {m['cpus']} CPUs, {m['cpu']}; {result['frames']} frames {result['size']}, "
              f"{args.workers} workers, {result['mode']}")
        print(f"complete→preview: median {result['preview']['median']:.3f} s, p90 {result['preview']['p90']:.3f} s, "
              f"max {result['preview']['max']}")
        print(f"complete→master:  median {result['master']['median']:.3f} s, p90 {result['master']['p90']:.3f} s, "
              f"max {result['master']['max']}")
        for f in failed:
            print(f"FAILED {f[0]}: {f[1]}")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0 if not failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
