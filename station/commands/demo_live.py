"""`station demo --live [--seconds N] [--web ADDR] [--out DIR]`: the station on a live-view camera.

The PTP/IP emulator (station.capture.ptpip_emulator, in a child process) plays a Nikon
with live view over real libgphoto2: a negative strip on a copy stand that the
"operator" slides by one frame every few seconds (with noise, flicker, hand shake).
The real daemon runs in-process with auto-capture on (`liveview: {enabled: true,
live: true}`): the settle watcher fires a capture when each new frame stands still, the
live positive (the roll's conversion on the live view) streams at /live.mjpg and on the
page's live panel, the captured positives land in DIR/positives/<roll>/.

At the end it prints what it measured (this is also the live view's benchmark, issue 16's
three figures on one line: live view >= 15 fps, /live.mjpg >= 10 fps at >= 800 px while
frames are captured and converted, a capture starting <= 0.3 s after it is requested):
live-view frames per second reaching the station, live positives per second and their
size, frames per second a /live.mjpg client received, seconds from the settle watcher's
capture request to the camera receiving InitiateCapture (median, max), the load average,
captures against strip advances (double, while moving), and per captured frame the median
CIEDE2000 between the live positive shown just before the shot and that frame's preview.
`--json FILE` writes the same figures.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("station.demo")


def _mjpeg_client(url: str, stop: threading.Event, out: dict) -> None:
    """Count the JPEG parts of a multipart stream (what a browser or VLC would get)."""
    import urllib.request

    t_first = None
    n = 0
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            out["content_type"] = resp.headers.get("Content-Type")
            buf = b""
            while not stop.is_set():
                chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
                if not chunk:
                    break
                buf += chunk
                while True:
                    i = buf.find(b"\r\n\r\n")
                    if i < 0:
                        break
                    head = buf[:i].decode("latin-1")
                    length = next((int(line.split(":", 1)[1]) for line in head.split("\r\n")
                                   if line.lower().startswith("content-length")), None)
                    if length is None or len(buf) < i + 4 + length:
                        break
                    jpeg = buf[i + 4:i + 4 + length]
                    buf = buf[i + 4 + length:]
                    if jpeg[:2] == b"\xff\xd8":
                        n += 1
                        t_first = t_first or time.monotonic()
                        out["last"] = jpeg
                        out["frames"] = n
                        if n > 1:
                            out["fps"] = round((n - 1) / max(1e-6, time.monotonic() - t_first), 1)
    except Exception as exc:  # noqa: BLE001 - reported in the summary
        out["error"] = str(exc)


def delta_e_per_frame(pair_log, views: dict, incoming: Path, keep: Path | None = None) -> list[dict]:
    """Per captured RAW: median ΔE00 between the live positive shown just before it and its preview
    (and how old that live-view frame was when the RAW arrived, the roll rendering it was made with
    -- None: metered, the roll's analysis had not locked yet -- and the frame's level against the
    base, log10).  `keep`: a folder to save each live positive in (<roll>_<frame>.live.jpg), with
    the live-view frame it was made from (<roll>_<frame>.lv.jpg)."""
    from station.capture.live import decode_jpeg
    from station.model.metrics import ciede2000
    from station.pipeline.fastdecode import area_resize

    def small(jpeg: bytes) -> np.ndarray:
        a = decode_jpeg(jpeg).astype(np.float32) / 255.0
        return area_resize(np.ascontiguousarray(a), (96, 64))

    rows = []
    for entry in pair_log:
        try:
            rel = str(Path(entry["raw"]).resolve().relative_to(incoming.resolve()))
        except ValueError:
            continue
        v = views.get(rel)
        if not v or not v.get("preview") or not Path(v["preview"]).is_file():
            continue
        de = ciede2000(small(entry["positive"]), small(Path(v["preview"]).read_bytes()))
        rows.append({"frame": rel, "pairs_before": entry["pairs"], "dE00_median": round(float(np.median(de)), 2),
                     "frame_age_s": entry.get("frame_age_s"), "frames_between": entry.get("frames_between"),
                     "rendering": entry.get("rendering"), "level": entry.get("level")})
        if keep is not None:  # the live positive as it was shown, beside the frame's preview
            dest = keep / (Path(rel).with_suffix("").as_posix().replace("/", "_") + ".live.jpg")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(entry["positive"])
            if entry.get("frame") is not None:  # and the live-view frame it was made from
                dest.with_name(dest.name.replace(".live.jpg", ".lv.jpg")).write_bytes(entry["frame"])
    return rows


def run(args) -> int:
    from station import config
    from station.app import App
    from station.capture.ptpip_emulator import EmulatedCamera
    from station.commands.run import _plug_in_services

    out = args.out.resolve()
    paths = {k: out / k for k in ("incoming", "positives", "state")}
    try:
        for p in paths.values():
            p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"station demo: --out {out}: {exc.strerror}", file=sys.stderr)
        return 2
    print("starting the live-view camera (PTP/IP emulator: a negative strip on a copy stand) ...", flush=True)
    cam = EmulatedCamera(live={"seed": 1, "auto_advance": args.advance_every}).start()
    try:
        cfg = config.validate({
            "paths": {"incoming": str(paths["incoming"]), "output": str(paths["positives"]), "state": str(paths["state"])},
            "camera": {"port": cam.address},
            "web": {"address": args.web},
            "inversion": {"method": args.method or "auto"},
            "liveview": {"enabled": True, "live": True},
        })
    except config.ConfigError as exc:
        cam.stop()
        print(f"station demo: {exc}", file=sys.stderr)
        return 2
    if not getattr(args, "verbose", False):  # -v: the station's debug log (each capture's start, timed)
        logging.getLogger("station").setLevel(logging.WARNING)
    app = App(cfg)
    _plug_in_services(app)
    # every capture request, from the start until the station stops (the settle watcher goes on
    # firing while the previews are awaited at the end): each shot in the emulator's log is timed
    # from its own request, never from the one before it (that would be the time between two shots)
    requested = _time_capture_requests(app)
    if args.web != "off":
        print(f"watch it live at http://{args.web}/ (the live positive alone: http://{args.web}/live.mjpg)", flush=True)
    report: dict = {}
    driver = threading.Thread(target=_drive, args=(app, args, report), name="demo-live", daemon=True)
    driver.start()
    try:
        app.run()
    finally:
        driver.join(5)
        scene_log = []
        try:
            scene_log = cam.scene_log()
        finally:
            cam.stop()
    if report.get("error"):
        print(f"station demo: {report['error']}", file=sys.stderr)
        return 1
    moving = sum(1 for e in scene_log if e["moving"])
    per: dict = {}
    for e in scene_log:
        per[e["index"]] = per.get(e["index"], 0) + 1
    report["captures"] = len(scene_log)
    report["pictures"] = sorted(per)
    report["double"] = sum(n - 1 for n in per.values() if n > 1)
    report["while_moving"] = moving
    report["capture_start_s"] = capture_start(scene_log, requested)
    _print(report)
    if getattr(args, "json", None):
        Path(args.json).write_text(json.dumps({k: v for k, v in report.items() if k != "mjpeg_last"}, indent=2))
    ok = report.get("positives", 0) > 0 and not report["double"] and not moving
    return 0 if ok else 1


def _time_capture_requests(app) -> list:
    """time.monotonic() of every capture the settle watcher requests (the emulator's shot log
    uses the same clock: CLOCK_MONOTONIC is the machine's, across processes)."""
    requested: list = []
    watcher = app.service("liveview")
    if watcher is None:
        return requested
    fire = watcher.on_settled

    def timed():
        requested.append(time.monotonic())
        return fire()

    watcher.on_settled = timed
    return requested


def capture_start(scene_log: list, requested: list) -> dict | None:
    """Request -> InitiateCapture (seconds: median, max, n, unrequested): each shot paired
    with its own request (station.capture.livescene.capture_starts)."""
    from station.capture.livescene import capture_starts

    return capture_starts(scene_log, requested)


def _drive(app, args, report: dict) -> None:
    stop = threading.Event()
    try:
        deadline = time.monotonic() + args.seconds + 120
        while not app.running and time.monotonic() < deadline:
            time.sleep(0.05)
        cam = app.service("camera")
        if cam is None or not cam.camera.wait_ready(60):
            report["error"] = "the live-view camera did not start"
            return
        roll = app.command("roll_new", stock="live demo strip (generated)")
        report["roll"] = roll["name"]
        print(f"roll {roll['name']}: live view on, auto-capture on; the strip advances every "
              f"{args.advance_every:g} s for {args.seconds:g} s", flush=True)
        live = app.service("live")
        mj: dict = {}
        if args.web != "off":
            threading.Thread(target=_mjpeg_client, args=(f"http://{args.web}/live.mjpg", stop, mj),
                             daemon=True).start()
        end = time.monotonic() + args.seconds
        seen = 0
        while time.monotonic() < end:
            time.sleep(0.5)
            n = len(live.positive.pair_log)
            if n > seen:
                seen = n
                print(f"captured {Path(live.positive.pair_log[-1]['raw']).name} "
                      f"(live view {live.feed.stats['fps']} fps, live positive {live.positive.stats['fps']} fps)",
                      flush=True)
        report.update(live_fps=live.feed.stats["fps"], positive_fps=live.positive.stats["fps"],
                      positives=live.positive.stats["positives"], feed_frames=live.feed.stats["frames"],
                      convert_ms=live.positive.stats["convert_ms"], mjpeg_fps=mj.get("fps"),
                      mjpeg_frames=mj.get("frames"), mjpeg_type=mj.get("content_type"), mjpeg_error=mj.get("error"),
                      seconds=args.seconds, tone=live.positive.tone.snapshot(), aids=live.positive.aids,
                      positive_size=live.positive.stats.get("size"), loadavg=[round(v, 2) for v in os.getloadavg()])
        stop.set()
        # the previews of the captured frames, for the live/captured comparison
        incoming = Path(app.cfg["paths"]["incoming"])
        t_end = time.monotonic() + 60
        views = {}
        while time.monotonic() < t_end:
            views = {v["path"]: v for v in app.command("frames", limit=500)}
            if all(v["state"] != "seen" for v in views.values()):
                break
            time.sleep(0.3)
        report["delta_e"] = delta_e_per_frame(list(live.positive.pair_log), views, incoming,
                                              Path(app.cfg["paths"]["output"]) / "live-before-shot")
        # the figure: from the 4th captured frame on (after 3 captured frames)
        after = [row["dE00_median"] for row in report["delta_e"][3:]]
        report["dE00_after_3"] = {"median": round(float(np.median(after)), 2) if after else None, "frames": len(after),
                                  "max": max(after) if after else None}
    except Exception as exc:  # noqa: BLE001 - report it, stop the station
        report["error"] = f"{exc.__class__.__name__}: {exc}"
    finally:
        stop.set()
        app.request_stop()


def _print(r: dict) -> None:
    cs = r.get("capture_start_s") or {}
    size = r.get("positive_size") or (None, None)
    print(f"BENCH live view {r.get('live_fps')} fps (>= 15); /live.mjpg {r.get('mjpeg_fps')} fps of "
          f"{size[0]}x{size[1]} positives (>= 10 fps, >= 800 px); capture request -> InitiateCapture median "
          f"{cs.get('median')} s, max {cs.get('max')} s over {cs.get('n')} captures (<= 0.3 s); load average {r.get('loadavg')} "
          f"({os.cpu_count()} CPUs)")
    print(f"live view: {r.get('feed_frames')} frames, {r.get('live_fps')} fps reaching the station; live positive "
          f"{r.get('positive_fps')} fps ({r.get('convert_ms')} ms per frame); /live.mjpg client "
          f"{r.get('mjpeg_fps')} fps ({r.get('mjpeg_frames')} frames{', ' + r['mjpeg_error'] if r.get('mjpeg_error') else ''})")
    print(f"auto-capture: {r['captures']} captures of pictures {r['pictures']}, {r['double']} double, "
          f"{r['while_moving']} while moving" + (f", {cs['unrequested']} not requested by the settle watcher"
                                                 if cs.get("unrequested") else ""))
    for row in r.get("delta_e", []):
        print(f"  {row['frame']}: live positive just before the shot vs its preview: median dE00 "
              f"{row['dE00_median']} ({row['pairs_before']} pairs learnt before; live frame {row.get('frame_age_s')} s "
              f"before the RAW arrived, its positive {row.get('frames_between')} frames older; "
              + (f"the roll's rendering {row['rendering']}" if row.get("rendering") else "metered: no roll rendering yet")
              + (f", level {row['level']:+.3f})" if row.get("level") is not None else ")"))
    a3 = r.get("dE00_after_3") or {}
    print(f"live positive vs preview from the 4th captured frame on: median dE00 {a3.get('median')} over "
          f"{a3.get('frames')} frames (<= 3), max {a3.get('max')}")
    print(f"tone map: {r.get('tone')}; aids: {r.get('aids')}")
