"""settle.attach: the live-view watcher in the daemon with a camera stand-in (real threads, real clock)."""
from __future__ import annotations

import time
from concurrent.futures import Future

import numpy as np
from helpers import PluginHost
from test_settle_detector import H, PITCH, W, film_strip

from station.settle import attach


class Camera:
    """preview(): the view of a scripted slide in real time: frame 0 for 1 s, a 0.4 s slide, frame 1."""

    def __init__(self):
        rng = np.random.default_rng(9)
        self.strip = film_strip(rng, 3)
        self.pad = (self.strip.shape[0] - H) // 2
        self.t0 = None
        self.captures = []
        self.previews = 0
        self.rng = rng

    def scenario_time(self):
        return 0.0 if self.t0 is None else time.monotonic() - self.t0

    def preview(self):
        if self.t0 is None:
            self.t0 = time.monotonic()
        self.previews += 1
        t = self.scenario_time()
        s = min(max((t - 1.0) / 0.4, 0.0), 1.0)
        x = int(round(PITCH * (3 * s * s - 2 * s ** 3)))
        img = self.strip[self.pad:self.pad + H, 4 + x:4 + x + W] + self.rng.normal(0, 0.01, (H, W, 3))
        f = Future()
        f.set_result((np.clip(img, 0, 1) * 255).astype(np.uint8))
        return f

    def capture(self):
        self.captures.append(self.scenario_time())
        f = Future()
        f.set_result(["x.dng"])
        return f


class App(PluginHost):
    def __init__(self, cfg, running=False):
        super().__init__(cfg)
        self.services["camera"] = type("Svc", (), {"camera": Camera()})()
        if running:
            ctl = type("Ctl", (), {"running": True})()
            self.services["autoroll"] = type("ARS", (), {"controller": ctl})()


def test_liveview_fires_once_after_the_slide():
    app = App({"liveview": {"enabled": True, "still_s": 0.4, "interval": 0.03}})
    w = attach(app)
    cam = app.services["camera"].camera
    w.start()
    try:
        end = time.monotonic() + 60
        while cam.scenario_time() < 3.0 and time.monotonic() < end:
            time.sleep(0.05)
    finally:
        w.stop()
    assert cam.previews > 20
    assert len(cam.captures) == 1, cam.captures
    assert cam.captures[0] > 1.4  # after the slide ended (scenario time of the capture, not a duration)
    assert app.commands["liveview"]()["triggers"] == 1


def test_liveview_is_off_unless_enabled_and_paused_during_an_auto_roll():
    assert attach(App({})) is None
    app = App({"liveview": {"enabled": True}}, running=True)
    w = attach(app)
    cam = app.services["camera"].camera
    w.start()
    try:
        time.sleep(0.3)
        assert w.running and cam.previews == 0  # paused while the auto-roll runs
        app.services["autoroll"].controller.running = False
        end = time.monotonic() + 30
        while cam.previews == 0 and time.monotonic() < end:
            time.sleep(0.02)
        assert cam.previews > 0  # and watching again once it ends
    finally:
        w.stop()
