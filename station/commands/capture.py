"""`station capture`: fire the camera once.

With a running daemon the request goes over its control socket (the daemon
owns the camera).  `--camera PORT --incoming DIR` (or --direct) opens the
camera here instead.  Exit 0 once the RAW is downloaded; 1 with the reason
when no camera answers; 2 for usage errors.
"""
from __future__ import annotations

import argparse
import sys
import time


def register(sub) -> None:
    from station.commands.run import add_config_args

    p = sub.add_parser("capture", help="fire the camera once and download the RAW to the incoming folder")
    p.add_argument("--camera", metavar="PORT", help="camera port: auto, usb:BUS,DEV, ptpip:HOST:PORT:PORT, virtual "
                                                   "(opens the camera directly instead of asking the daemon)")
    add_config_args(p)  # --config FILE (the daemon's), --incoming, --output, --state, --socket
    p.add_argument("--direct", action="store_true", help="do not use the daemon even if one is running")
    p.add_argument("--roll", metavar="NAME", help="name the file into this roll (default: the current roll, if any)")
    p.add_argument("--no-roll", action="store_true", help="keep the camera's file name, ignore rolls")
    p.add_argument("--delete", action="store_true", help="delete the file from the card after a verified download")
    p.add_argument("--drop-jpeg", action="store_true", help="RAW+JPEG cameras: keep only the RAW")
    p.add_argument("--target", choices=("card", "ram"), help="capture target (camera setting)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S", help="seconds to wait for the camera (default 10)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from station.capture.camera import CameraError, CaptureOptions
    from station.capture.control import capture_direct
    from station.commands.run import client_paths, daemon_socket
    from station.control import ControlError, request

    paths = client_paths(args)  # the configuration's folders (--config FILE), the flags on top
    if paths is None:
        return 2
    direct = args.direct or args.camera is not None or args.incoming is not None
    if not direct:
        t0 = time.monotonic()
        try:
            result = request(daemon_socket(args), "capture", timeout=args.timeout + 25,
                             args={"wait_positive": True, "timeout": args.timeout + 20}) or {}
        except ControlError as exc:
            print(f"station capture: {exc}; start `station run`, or capture directly with "
                  "--camera PORT", file=sys.stderr)
            return 1
        for f in result.get("files", []):
            print(f)
        if result.get("preview"):
            print(f"positive: {result['preview']}")
        if result.get("latency"):
            print(f"time to positive: {result['latency']}")
        print(f"done in {time.monotonic() - t0:.2f} s", file=sys.stderr)
        return 0

    if args.no_roll and args.roll:
        print("station capture: --roll and --no-roll contradict each other (choose one)", file=sys.stderr)
        return 2
    incoming = paths["incoming"]
    port = args.camera or "auto"
    options = CaptureOptions(keep_on_card=not args.delete, keep_jpeg=not args.drop_jpeg, capture_target=args.target)
    roll = None
    if not args.no_roll:
        from station.capture.roll import RollError, RollStore

        store = RollStore(paths["state"], incoming)
        try:
            roll = store.get(args.roll) if args.roll else store.current()
        except RollError as exc:
            print(f"station capture: {exc}", file=sys.stderr)
            return 2
    before_connect = before_capture = vcam = tmp = None
    if port == "virtual":  # libgphoto2's virtual camera, serving a generated negative
        import tempfile

        from station.capture import virtual
        from station.capture.samples import negative_dng_bytes

        tmp = tempfile.TemporaryDirectory(prefix="station-vcamera-")
        neg = negative_dng_bytes(400, 600, seed=int(time.time()) % 100000)
        vcam = virtual.VirtualCamera(tmp.name, frame_size=len(neg) + 4096, frames=[neg])
        before_connect, before_capture = vcam.before_connect, vcam.next_frame
    t0 = time.monotonic()
    try:
        files = capture_direct(port, incoming, options=options, namer=roll.namer if roll else None,
                               on_captured=roll.record if roll else None, connect_timeout=args.timeout,
                               before_connect=before_connect, before_capture=before_capture)
    except CameraError as exc:
        print(f"station capture: {exc}", file=sys.stderr)
        return 1
    finally:
        if vcam:
            vcam.close()
            tmp.cleanup()
    for f in files:
        print(f.path)
    print(f"downloaded {len(files)} file(s) in {time.monotonic() - t0:.2f} s", file=sys.stderr)
    return 0 if files else 1
