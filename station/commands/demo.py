"""`station demo [--frames N] [--out DIR]`: a short roll on the virtual camera.

libgphoto2's virtual camera (bundled in the gphoto2 wheel) serves generated
colour negatives, a different one for each shot.  The demo starts a roll,
shoots its blank film base, then N frames; each RAW is downloaded by the
camera service into DIR/originals/<roll>/NN.dng and inverted into
DIR/positives/<roll>/NN.preview.jpg (first), NN.tif and NN.jpg.  It prints
each frame's latency and exits 0 once N positives are written.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("demo", help="run a short roll on the virtual camera with generated negatives")
    p.add_argument("--frames", type=int, default=6, help="frames to shoot (default 6)")
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="demo folder (default ./demo-output)")
    p.add_argument("--size", default="1000x1500", help="negative size HxW in pixels (default 1000x1500)")
    p.add_argument("--method", choices=("mlp", "classic"), help="inversion method (default: the station's default)")
    p.set_defaults(func=run)


def invert_frame(src: Path, out_dir: Path, base=None, inverter=None) -> dict[str, float]:
    """The inversion step: preview first, then the master TIFF and the full JPEG.

    Returns seconds from the call to each output being on disk."""
    from station.pipeline.convert import ConvertOptions, convert_file

    t0 = time.monotonic()
    stem = src.stem
    out_dir.mkdir(parents=True, exist_ok=True)
    convert_file(src, {"preview": out_dir / f"{stem}.preview.jpg"},
                 ConvertOptions(inverter=inverter, base=base, half_size=True, preview_size=1200))
    t_preview = time.monotonic() - t0
    convert_file(src, {"tiff": out_dir / f"{stem}.tif", "jpeg": out_dir / f"{stem}.jpg"},
                 ConvertOptions(inverter=inverter, base=base))
    return {"preview": t_preview, "master": time.monotonic() - t0}


def run(args: argparse.Namespace) -> int:
    from station.capture import virtual
    from station.capture.camera import CameraError, CameraService, CaptureOptions
    from station.capture.roll import RollStore
    from station.capture.samples import FILM_BASE, negative_dng_bytes

    if args.frames < 1:
        print("station demo: --frames must be at least 1", file=sys.stderr)
        return 2
    try:
        h, w = (int(v) for v in args.size.lower().split("x"))
        if h < 16 or w < 16 or h % 2 or w % 2:
            raise ValueError
    except ValueError:
        print(f"station demo: --size {args.size!r}: want HxW, even numbers >= 16", file=sys.stderr)
        return 2
    out = args.out
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"station demo: --out {out}: {exc.strerror}", file=sys.stderr)
        return 2

    inverter = None
    if args.method:
        from station.pipeline.invert import get_inverter

        inverter = get_inverter(args.method)

    print(f"generating {args.frames} negatives ({h}x{w}) and a blank film-base frame ...", flush=True)
    import numpy as np

    from station.io.dng import mosaic, write_bayer_dng

    negatives = [negative_dng_bytes(h, w, seed=1000 + i) for i in range(args.frames)]
    import tempfile

    with tempfile.TemporaryDirectory(prefix="station-demo-") as tmp:
        tmp = Path(tmp)
        blank = np.clip(np.ones((h, w, 3), np.float32) * FILM_BASE * 0.85, 0, 1)
        write_bayer_dng(tmp / "blank.dng", mosaic(np.round(blank * 65535).astype(np.uint16)), model="Virtual Negative")
        blank_bytes = (tmp / "blank.dng").read_bytes()
        frames = [blank_bytes] + negatives
        vcam = virtual.VirtualCamera(tmp / "vcamera", frame_size=max(map(len, frames)) + 4096, frames=frames)

        store = RollStore(out / "state", out / "originals")
        roll = store.new(stock="Virtual Portra 400 (generated)", frames=args.frames)
        calibrating = {"on": True}

        def namer(info):
            if calibrating["on"]:
                return f".calibration/base{info.kind.ext}"
            return roll.namer(info)

        def on_captured(cf):
            if not calibrating["on"]:
                roll.record(cf)

        svc = CameraService(out / "originals", "virtual", options=CaptureOptions(capture_timeout=10),
                            namer=namer, on_captured=on_captured, before_connect=vcam.before_connect,
                            before_capture=vcam.next_frame, session_limit=virtual.SESSION_LIMIT,
                            backoff=(0.2, 1.0))
        svc.start()
        try:
            if not svc.wait_ready(15):
                print(f"station demo: the virtual camera did not start: {svc.snapshot()['last_error']}", file=sys.stderr)
                return 1
            roll.set_camera(svc.snapshot()["model"])
            print(f"roll {roll.name} on the virtual camera ({svc.snapshot()['model']})")
            # 1. the blank film base of the roll, used by every frame
            files = svc.capture_sync(30)
            calibrating["on"] = False
            base_path = roll.set_base(files[0].path.read_bytes(), files[0].path.suffix, source="shot")
            files[0].path.unlink()
            try:
                files[0].path.parent.rmdir()
            except OSError:
                pass
            base = store.get(roll.name).base_estimate()
            print(f"film base shot ({base_path.name}): " + (", ".join(f"{v:.3f}" for v in base.rgb) if base is not None else "not measured"))
            # 2. the frames
            positives = out / "positives" / roll.name
            written = 0
            lat = []
            for i in range(args.frames):
                t0 = time.monotonic()
                files = svc.capture_sync(30)
                t_raw = time.monotonic() - t0
                raw = next((f for f in files if f.kind == "raw"), None)
                if raw is None:
                    print(f"frame {i + 1}: no RAW arrived", file=sys.stderr)
                    continue
                t = invert_frame(raw.path, positives, base=base, inverter=inverter)
                written += 1
                lat.append(t_raw + t["preview"])
                print(f"frame {i + 1:02d}: {raw.path.relative_to(out)}  RAW in {t_raw:.2f} s, "
                      f"preview {t_raw + t['preview']:.2f} s, master {t_raw + t['master']:.2f} s after the trigger",
                      flush=True)
        except CameraError as exc:
            print(f"station demo: {exc}", file=sys.stderr)
            return 1
        finally:
            svc.stop()
            vcam.close()
    if written < args.frames:
        print(f"station demo: only {written} of {args.frames} positives written", file=sys.stderr)
        return 1
    lat.sort()
    print(f"{written} positives in {out / 'positives' / roll.name} (median trigger-to-preview {lat[len(lat) // 2]:.2f} s)")
    return 0
