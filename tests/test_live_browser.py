"""The live panel in a real headless browser on the real daemon (a subprocess) whose camera
is the PTP/IP emulator with live view, over real libgphoto2: the page's Live view button
starts the live positive, the panel's image updates from /live.mjpg, the readouts (fps,
focus, tilt) fill in, a click opens the 100 % magnifier; /live.mjpg answers as a
multipart JPEG stream to a plain HTTP client.  Skips like tests/test_web_browser.py.
"""
from __future__ import annotations

import json
import urllib.request

import pytest
import test_web_browser
from test_web_browser import _free_port, browser, page  # noqa: F401 - fixtures

pytestmark = test_web_browser.pytestmark  # skipped, with the install commands, without chromium/playwright
pytest.importorskip("gphoto2")
pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect  # noqa: E402

from ptpip_emulator import EmulatedCamera  # noqa: E402


def _frame_count(page) -> int:
    # a new multipart part replaces the image: its decoded size stays, so count repaints by canvas
    return page.evaluate("() => { const i = document.getElementById('liveimg');"
                         " const c = document.createElement('canvas'); c.width = 32; c.height = 16;"
                         " const x = c.getContext('2d'); x.drawImage(i, 0, 0, 32, 16);"
                         " return Array.from(x.getImageData(0, 0, 32, 16).data).reduce((a, b) => a + b, 0); }")


def test_live_panel_streams_the_live_positive_with_aids_and_magnifier(daemon_factory, page):  # noqa: F811
    port = _free_port()
    with EmulatedCamera(live={"seed": 4}) as cam:
        d = daemon_factory(config={"camera": {"port": cam.address}, "inversion": {"method": "classic"}},
                           extra_args=["--web", f"127.0.0.1:{port}"]).start()
        page.goto(f"http://127.0.0.1:{port}/")
        expect(page.locator("#camera")).to_have_text("camera ready", timeout=30000)
        btn = page.locator("#btn-liveview")
        expect(btn).to_be_visible(timeout=10000)
        expect(page.locator("#livepanel")).to_be_hidden()
        btn.click()
        expect(page.locator("#livepanel")).to_be_visible(timeout=10000)
        expect(page.locator("#stage")).to_be_hidden()  # the panel takes the head of the strip
        img = page.locator("#liveimg")
        page.wait_for_function("() => document.getElementById('liveimg').naturalWidth >= 800", timeout=60000)
        # the image keeps changing: the strip slides under the camera
        first = _frame_count(page)
        cam.advance()
        page.wait_for_function(f"() => {{ const i = document.getElementById('liveimg');"
                               f" const c = document.createElement('canvas'); c.width = 32; c.height = 16;"
                               f" const x = c.getContext('2d'); x.drawImage(i, 0, 0, 32, 16);"
                               f" return Array.from(x.getImageData(0, 0, 32, 16).data).reduce((a, b) => a + b, 0) !== {first}; }}",
                               timeout=30000)
        expect(page.locator("#live-focus")).to_contain_text("focus", timeout=10000)
        expect(page.locator("#live-focus")).not_to_contain_text("focus –", timeout=20000)
        expect(page.locator("#live-tilt")).to_contain_text("°", timeout=20000)
        expect(page.locator("#liveedges")).to_be_visible(timeout=20000)
        # the magnifier: a click shows the live positive at 100 % around that point
        box = img.bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5)
        expect(page.locator("#loupe")).to_be_visible()
        page.wait_for_function("() => +document.getElementById('loupe').dataset.drawn > 2", timeout=20000)
        state = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/live.json", timeout=10).read())
        assert state["running"] and state["positives"] > 0 and state["point"] == pytest.approx([0.4, 0.5], abs=0.02)
        # a plain client (VLC, curl) gets a multipart JPEG stream
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/live.mjpg", timeout=20) as r:
            assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            head = r.read(4096)
            assert b"Content-Type: image/jpeg" in head and b"\xff\xd8" in head
        # stopping live view gives the stage back
        btn.click()
        expect(page.locator("#stage")).to_be_visible(timeout=10000)
        expect(page.locator("#livepanel")).to_be_hidden()
        d.stop()
