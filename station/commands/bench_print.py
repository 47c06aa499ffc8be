"""`station bench-print [FILE] [--mp 24] [--changes 8] [--json]`: how fast a print change shows.

Starts the real daemon (`station run`, its worker processes, on temporary folders),
lets it process one RAW (FILE, or a generated Bayer DNG of --mp megapixels), then
sends `set_print` for that frame --changes times (a new exposure and white balance
each time, as the page's sliders do, one after the other finishes) and measures, from
sending the command, the time until the frame's preview on disk carries the new
settings (its EXIF description) and until its master (TIFF) does.  Prints medians
and maxima; `--json` prints one object.  Also times, in this process, the two parts
of the preview's cost that the print adds or changes: composing the print into the
model's LUT (`printed_lut`, once per setting) and the preview conversion itself (first
with the RAW's decode, then re-printed from the decode the worker remembers).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("bench-print", help="time a print change on the real daemon: preview, then master",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("file", nargs="?", type=Path, metavar="FILE", help="a RAW to use (default: a generated DNG)")
    p.add_argument("--mp", type=float, default=24, help="size of the generated DNG in megapixels (default 24)")
    p.add_argument("--changes", type=int, default=8, help="print changes to time (default 8)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _in_process(src: Path, work: Path) -> dict:
    from station.pipeline.convert import ConvertOptions, convert_file
    from station.pipeline.invert import get_inverter
    from station.pipeline.lutinvert import compiled, printed_lut
    from station.pipeline.printing import PrintSettings

    inv = compiled(get_inverter())
    t_lut = []
    for i in range(5):
        s = PrintSettings(exposure=0.1 * (i + 1), temperature=5000 + 100 * i)
        t0 = time.perf_counter()
        printed_lut(inv.model_lut, s)
        t_lut.append(time.perf_counter() - t0)
    t_prev = []
    for i in range(4):  # the first decodes the RAW; the others re-print the remembered decode
        out = work / f"p{i}.jpg"
        t0 = time.perf_counter()
        convert_file(src, {"preview": out}, ConvertOptions(inverter=inv.direct, half_size=True,
                                                          print=PrintSettings(exposure=0.2 * i + 0.1)))
        t_prev.append(time.perf_counter() - t0)
    return {"lut_size": inv.size, "printed_lut_s": round(statistics.median(t_lut), 3),
            "preview_first_s": round(t_prev[0], 3), "preview_reprint_s": round(statistics.median(t_prev[1:]), 3)}


def run(args) -> int:
    from station.commands.bench import machine, make_dng
    from station.control import ControlError, request
    from station.pipeline.write import output_print

    with tempfile.TemporaryDirectory(prefix="station-bench-print-") as tmp:
        root = Path(tmp)
        inc, out, st = root / "in", root / "out", root / "st"
        for d in (inc, out, st):
            d.mkdir()
        src = args.file if args.file else make_dng(root / "gen.dng", args.mp)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("STATION_CONFIG", None)
        log = open(root / "daemon.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "station", "run", "--incoming", str(inc), "--output", str(out),
                                 "--state", str(st), "--web", "off"], env=env, stdout=log, stderr=subprocess.STDOUT)
        sock = st / "station.sock"
        try:
            def wait(cond, timeout, what):
                end = time.monotonic() + timeout
                while time.monotonic() < end:
                    if cond():
                        return
                    if proc.poll() is not None:
                        raise RuntimeError(f"the daemon exited waiting for {what}")
                    time.sleep(0.005)
                raise RuntimeError(f"timed out waiting for {what}")

            wait(lambda: b"ready:" in (root / "daemon.log").read_bytes(), 300, "the daemon")
            name = "frame" + src.suffix.lower()
            os.link(src, inc / name) if src.parent == root else __import__("shutil").copy(src, inc / name)

            def row():
                try:
                    return request(sock, "frames", limit=1)[0]
                except (ControlError, IndexError):
                    return {}
            wait(lambda: row().get("state") == "master_written", 600, "the first master")
            stem = Path(name).stem
            preview, tiff = out / f"{stem}.preview.jpg", out / f"{stem}.tif"
            lat_p, lat_m = [], []
            for i in range(args.changes):
                want = {"exposure": round(0.25 * ((i % 4) + 1) * (-1) ** i, 2), "temperature": 4500.0 + 250 * i}
                t0 = time.perf_counter()
                request(sock, "set_print", frame=name, settings=want)
                wait(lambda: (output_print(preview) or {}).get("temperature") == want["temperature"], 120,
                     "the preview")
                lat_p.append(time.perf_counter() - t0)
                wait(lambda: (output_print(tiff) or {}).get("temperature") == want["temperature"]
                     and row().get("state") == "master_written", 600, "the master")
                lat_m.append(time.perf_counter() - t0)
            parts = _in_process(src, root)
        finally:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
        from station.pipeline.decode import decode_raw_u16

        h, w = decode_raw_u16(src, True)[0].shape[:2]
    res = {"machine": machine(), "file": str(args.file) if args.file else f"generated {args.mp:g} MP DNG",
           "pixels": f"~{h * w * 4 / 1e6:.0f} MP", "changes": args.changes,
           "preview_s": {"median": round(statistics.median(lat_p), 3), "max": round(max(lat_p), 3)},
           "master_s": {"median": round(statistics.median(lat_m), 3), "max": round(max(lat_m), 3)},
           "master_hold_s": __import__("station.daemon.prints", fromlist=["MASTER_HOLD"]).MASTER_HOLD,
           **parts}
    if args.json:
        print(json.dumps(res))
    else:
        print(f"station bench-print on {res['machine']}")
        print(f"  {res['file']} ({res['pixels']}), {args.changes} print changes on the real daemon")
        print(f"  preview with the new print: median {res['preview_s']['median']:.3f} s, max {res['preview_s']['max']:.3f} s")
        print(f"  master with the new print:  median {res['master_s']['median']:.3f} s, max {res['master_s']['max']:.3f} s"
              f" (starts {res['master_hold_s']:g} s after the preview)")
        print(f"  in process: print composed into the {res['lut_size']}^3 LUT {res['printed_lut_s']:.3f} s; "
              f"preview {res['preview_first_s']:.3f} s (with the decode), re-printed {res['preview_reprint_s']:.3f} s"
              " (the print's LUT included)")
    return 0
