#!/usr/bin/env python3
"""Auto-capture soak on real libgphoto2: N strip advances (default 36) on the PTP/IP
emulator's live view (noise, flicker, hand shake); prints captures, doubles, shots while
moving, misses and the live-view rate.  Exit 0 only for N captures, 0 double, 0 while moving.

    .venv/bin/python tools/live_soak.py [--advances 36] [--seed 5]
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--advances", type=int, default=36)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    from station.capture.livescene import run_advances
    from station.capture.ptpip_emulator import EmulatedCamera, camera_service

    with EmulatedCamera(live={"seed": args.seed}) as cam, tempfile.TemporaryDirectory() as d:
        svc = camera_service(Path(d) / "incoming", cam, None)
        try:
            res = run_advances(cam, svc, advances=args.advances)
        finally:
            svc.stop()
    log = res.pop("log")
    print(json.dumps(res))
    print(f"{res['advances']} advances -> {res['captures']} captures, {res['double']} double, "
          f"{res['while_moving']} while moving, {res['missed']} missed; live view {res['fps']} fps "
          f"({res['previews']} frames); capture request -> InitiateCapture {res['capture_start_s']} s")
    ok = res["captures"] == args.advances and not res["double"] and not res["while_moving"]
    return 0 if ok and [e["index"] for e in log] == list(range(1, args.advances + 1)) else 1


if __name__ == "__main__":
    sys.exit(main())
