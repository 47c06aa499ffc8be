#!/usr/bin/env python3
"""The README's screenshot of the live panel, made on the real station: `station demo --live`
(the PTP/IP emulator's strip over real libgphoto2, the real daemon, auto-capture) in a child
process, the page in headless chromium (playwright, the system's chromium as in
tests/test_web_browser.py).  Waits until the live positive has learnt from `--pairs` captured
frames (the live view -> linear table), clicks a point for the 100 % magnifier, and saves a
1280 x 800 screenshot of the page.

    .venv/bin/python tools/live_panel_screenshot.py [--out docs/img/live-panel.png] [--pairs 3]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM = os.environ.get("STATION_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def _live_json(url: str) -> dict:
    try:
        return json.loads(urllib.request.urlopen(url + "/live.json", timeout=5).read())
    except Exception:  # noqa: BLE001 - not up yet
        return {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/img/live-panel.png"))
    ap.add_argument("--pairs", type=int, default=3, help="captured frames the live positive has learnt from first")
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from station.capture.ptpip_emulator import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        demo = subprocess.Popen([sys.executable, "-m", "station", "demo", "--live", "--seconds", str(args.timeout),
                                 "--web", f"127.0.0.1:{port}", "--out", tmp], stdout=subprocess.DEVNULL)
        try:
            end = time.monotonic() + args.timeout
            while ((_live_json(url).get("tone") or {}).get("pairs", 0) < args.pairs and time.monotonic() < end
                   and demo.poll() is None):
                time.sleep(1)
            state = _live_json(url)
            if (state.get("tone") or {}).get("pairs", 0) < args.pairs:
                print(f"live_panel_screenshot: the live positive did not learn {args.pairs} pairs: {state}",
                      file=sys.stderr)
                return 1
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
                page.goto(url + "/")
                page.wait_for_selector("#livepanel", state="visible", timeout=30000)
                page.wait_for_function("() => document.getElementById('liveimg').naturalWidth >= 800", timeout=60000)
                page.wait_for_function("() => document.getElementById('live-tilt').textContent.includes('°')",
                                       timeout=30000)
                box = page.locator("#liveimg").bounding_box()
                page.mouse.click(box["x"] + box["width"] * 0.42, box["y"] + box["height"] * 0.5)
                page.wait_for_function("() => +document.getElementById('loupe').dataset.drawn > 2", timeout=30000)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out))
                browser.close()
        finally:
            demo.terminate()
            try:
                demo.wait(60)
            except subprocess.TimeoutExpired:
                demo.kill()
    print(f"{args.out} (the live positive after {state['tone']['pairs']} pairs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
