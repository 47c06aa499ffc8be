"""`station demo [--frames N] [--out DIR]`: the whole station on the virtual camera.
(`station demo --live`: on a live-view camera instead, see demo_live.py.)

This runs the real daemon in-process (folder watcher, journal, decoder
workers, camera service, live page) with libgphoto2's virtual camera as the
camera: it serves a different colour negative for every shot, generated first
by the film-physics simulator (DIR/negatives/).  The
demo starts a roll and presses the shutter N times through the same command a
foot pedal or `station capture` uses; each RAW is downloaded into
DIR/incoming/<roll>/NN.dng, the watcher takes it, and the positives appear as
DIR/positives/<roll>/NN.preview.jpg (first), NN.tif and NN.jpg.  It prints
each frame's latency and exits 0 once N previews and N masters are written.
"""
from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger("station.demo")


def register(sub) -> None:
    p = sub.add_parser("demo", help="run a short roll on the virtual camera with generated negatives")
    p.add_argument("--frames", type=int, default=6, help="frames to shoot (default 6)")
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="demo folder (default ./demo-output)")
    p.add_argument("--method", choices=("mlp", "classic"), help="inversion method (default: the station's default)")
    p.add_argument("--web", default="127.0.0.1:8077", help="live page address while the demo runs, or off (default 127.0.0.1:8077)")
    p.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds (default 300)")
    p.add_argument("--live", action="store_true",
                   help="live view instead: a live-view camera (PTP/IP emulator) whose strip advances by itself, "
                        "auto-capture, the live positive on the page and at /live.mjpg (station/commands/demo_live.py)")
    p.add_argument("--seconds", type=float, default=60.0, help="--live: run this long (default 60)")
    p.add_argument("--advance-every", type=float, default=4.0, help="--live: seconds the strip stands still (default 4)")
    p.add_argument("--json", help="--live: also write the figures to this file")
    p.set_defaults(func=run)


# Scenes of the demo roll: scikit-image's bundled photographs and generated scenes, some
# over- or under-exposed, as a real roll is.  One stock: a roll is one film, and the station
# renders a roll with one analysis (base, balance, print exposure) as a lab does; a roll
# spliced from six stocks cannot share one (frame 6, Fujicolor C200 in a Portra-balanced
# rendering, came out yellow and clipped).
DEMO_SCENES = ["astronaut", "coffee", "rocket", "chelsea", None, "astronaut", "coffee", None]
DEMO_STOCK = "kodak_portra_400"
DEMO_EVS = [0.0, 0.7, -0.7, 0.3]  # film exposure of each frame against the roll's metering (stops)


def make_negatives(folder: Path, n: int, size: int = 900) -> list[Path]:
    """Film-physics negatives of the demo's stock (with rebate, sprocket holes and holder edges)
    as Bayer DNGs, in `folder`/<stock>/: the virtual camera serves that folder's files, so the
    mixed-stock negatives an earlier demo left in `folder` are not served into this roll."""
    import numpy as np

    from station.model import film

    folder = folder / DEMO_STOCK
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        path = folder / f"negative-{i + 1:02d}.dng"
        if not path.exists():
            name = DEMO_SCENES[i % len(DEMO_SCENES)]
            scene = film.photo(name, size=size, rng=np.random.default_rng(i)) if name else film.procedural_scene(size, seed=i)
            params = film.ScanParams(stock=DEMO_STOCK, scene_ev=DEMO_EVS[i % len(DEMO_EVS)], seed=i)
            film.write_dng(path, film.add_rebate(film.simulate(scene, params), seed=i))
        out.append(path)
    return out


def demo_config(out: Path, method: str | None, web: str, frames_dir: Path) -> dict:
    from station import config

    paths = {k: out / k for k in ("incoming", "positives", "state")}
    for p in paths.values():
        p.mkdir(parents=True, exist_ok=True)
    return config.validate({
        "paths": {"incoming": str(paths["incoming"]), "output": str(paths["positives"]), "state": str(paths["state"])},
        "camera": {"port": "virtual", "virtual_frames": str(frames_dir)},
        "web": {"address": web},
        "inversion": {"method": method or "auto"},
        "watcher": {"rescan_interval": 5.0},
    })


def _drive(app, frames: int, deadline: float, report: dict, web: str = "off") -> None:
    """Shoot the roll through the app's commands, then wait for every master."""
    try:
        while not app.running and time.monotonic() < deadline:
            time.sleep(0.05)
        if web != "off":  # the page's address only once it is served (a port in use: say so instead)
            svc = getattr(app.service("web"), "svc", None)
            if svc is not None and getattr(svc, "_server", None) is not None:
                print(f"watch the roll live at {svc.url}", flush=True)
            else:
                print(f"station demo: the live page is not served (could not bind {web}, see the error above); "
                      "the demo goes on without it", file=sys.stderr, flush=True)
        cam = app.service("camera")
        if cam is None or not cam.camera.wait_ready(max(1.0, deadline - time.monotonic())):
            report["error"] = "the virtual camera did not start"
            return
        roll = app.command("roll_new", stock=f"{DEMO_STOCK} (generated: film-physics model)", frames=frames)
        report["roll"] = roll["name"]
        print(f"roll {roll['name']} on the virtual camera ({cam.snapshot().model})", flush=True)
        raws = []
        for i in range(frames):
            res = app.command("capture", wait_positive=True, timeout=max(5.0, deadline - time.monotonic()))
            raw = next((f for f in res["files"] if not f.lower().endswith(".jpg")), res["files"][0])
            raws.append(raw)
            print(f"frame {i + 1:02d}: {Path(raw).name} downloaded in {res['download_s']:.2f} s, "
                  f"preview {res.get('latency', 'not written')}", flush=True)
        # the masters follow the previews without blocking them: wait for the last one
        incoming = Path(app.cfg["paths"]["incoming"])
        want = {str(Path(r).resolve().relative_to(incoming.resolve())) for r in raws}
        while time.monotonic() < deadline:
            views = {v["path"]: v for v in app.command("frames", limit=max(100, 2 * frames))}
            done = [views[p] for p in want if p in views and views[p]["state"] in ("master_written", "failed")]
            if len(done) == len(want):
                report["views"] = sorted(done, key=lambda v: v["path"])
                return
            time.sleep(0.1)
        report["error"] = "timed out waiting for the masters"
    except Exception as exc:  # a refused command: report it, stop the station
        report["error"] = str(exc)
    finally:
        app.request_stop()


def run(args: argparse.Namespace) -> int:
    from station.app import App
    from station.commands.run import _plug_in_services
    from station.config import ConfigError

    if getattr(args, "live", False):
        from station.commands.demo_live import run as run_live

        if args.seconds <= 0 or args.advance_every <= 0:
            print("station demo: --seconds and --advance-every must be > 0", file=sys.stderr)
            return 2
        return run_live(args)
    if args.frames < 1:
        print("station demo: --frames must be at least 1", file=sys.stderr)
        return 2
    out = args.out.resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
        frames_dir = out / "negatives"
        print(f"generating {args.frames} colour negatives (film-physics simulation) in {frames_dir / DEMO_STOCK} ...", flush=True)
        frames_dir = make_negatives(frames_dir, args.frames)[0].parent
        cfg = demo_config(out, args.method, args.web, frames_dir)
    except OSError as exc:
        print(f"station demo: --out {out}: {exc.strerror}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"station demo: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("station").setLevel(logging.WARNING)  # the demo prints its own lines
    app = App(cfg)
    _plug_in_services(app)
    report: dict = {}
    driver = threading.Thread(target=_drive, args=(app, args.frames, time.monotonic() + args.timeout, report, args.web),
                              name="demo", daemon=True)
    driver.start()
    app.run()  # the daemon's main loop, until the driver asks it to stop
    driver.join(5)
    if report.get("error"):
        print(f"station demo: {report['error']}", file=sys.stderr)
        return 1
    views = report.get("views", [])
    failed = [v for v in views if v["state"] == "failed"]
    for v in failed:
        print(f"station demo: {v['path']}: {v['reason']}", file=sys.stderr)
    lat_p = sorted(v["lat_preview"] for v in views if v.get("lat_preview") is not None)
    lat_m = sorted(v["lat_master"] for v in views if v.get("lat_master") is not None)
    if lat_p:
        print(f"{len(views) - len(failed)} positives in {out / 'positives' / report['roll']}: RAW on disk to preview "
              f"median {lat_p[len(lat_p) // 2]:.2f} s, to master median {lat_m[len(lat_m) // 2]:.2f} s" if lat_m else "")
    return 0 if views and not failed and len(views) == args.frames else 1
