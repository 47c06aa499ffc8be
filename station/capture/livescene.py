"""A negative strip on a copy stand, as a camera's live view and its RAWs see it.

The PTP/IP emulator (station.capture.ptpip_emulator) serves this scene through
Nikon's live-view operations and makes its RAWs from it, so live view,
auto-capture and the live positive run on real libgphoto2 in tests and in
`station demo --live`.

Geometry (mm): 35 mm film, pictures 36 x 24 mm at a pitch of 38 mm (2 mm gaps),
8 sprocket holes per pitch in the rebate, a dark holder above and below the film.
The camera frames 44 x 29.3 mm around the picture in the holder: the picture,
its gaps, slivers of both neighbours, the rebate and the inner edge of the holes.

`advance()` slides the strip by one pitch in `slide_s` seconds (ease in, ease
out; the operator's hand).  Every live-view frame adds what a live view does to
a still strip: sensor noise, flicker of the light (a global gain that wobbles),
hand shake (the view jitters by up to `shake` px), JPEG.  The live-view JPEG is
*not* linear: the camera applies white balance, an sRGB curve and an S-shaped
picture style (see `camera_tone`), as real cameras do; the RAW is linear.

Everything is deterministic for a seed except the time: the state of the slide
is a function of the clock (`clock`, default time.monotonic).
"""
from __future__ import annotations

import io
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from station.capture.samples import FILM_BASE, GAMMA, scene

try:  # the emulated camera's tone curve + noise in one pass (it shares the CPUs with the station)
    import numba as _nb
except ImportError:  # pragma: no cover - numba is a dependency; numpy does the same, slower
    _nb = None


def _tone_noise_np(view, k, lut, noise):
    idx = np.clip(view * k, 0, lut.shape[1] - 1).astype(np.int32)
    out = np.empty(view.shape, np.float32)
    for c in range(3):
        np.take(lut[c], idx[..., c], out=out[..., c])
    out += noise
    np.clip(out, 0, 255, out=out)
    return (out + 0.5).astype(np.uint8)


if _nb is not None:
    @_nb.njit(parallel=True, fastmath=True, cache=True, nogil=True)
    def _tone_noise_nb(view, k, lut, noise, out):  # pragma: no cover - compiled
        top = lut.shape[1] - 1
        for y in _nb.prange(view.shape[0]):
            for x in range(view.shape[1]):
                for c in range(3):
                    t = view[y, x, c] * k
                    i = 0 if not t > 0.0 else (top if t >= top else int(t))
                    v = lut[c, i] + noise[y, x, c] + 0.5
                    out[y, x, c] = 0 if not v > 0.0 else (255 if v >= 255.0 else int(v))


def _tone_noise(view: np.ndarray, k, lut: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """uint8 live-view picture: each channel's linear value x k through its tone table, plus noise."""
    if _nb is None:
        return _tone_noise_np(view, k, lut, noise)
    out = np.empty(view.shape, np.uint8)
    _tone_noise_nb(np.ascontiguousarray(view, np.float32), np.float32(k), lut, noise, out)
    return out

PITCH_MM, PIC_W_MM, PIC_H_MM, FILM_H_MM = 38.0, 36.0, 24.0, 35.0
VIEW_W_MM, VIEW_H_MM = 44.0, 44.0 * 2 / 3
HOLE_PITCH_MM, HOLE_W_MM, HOLE_H_MM, HOLE_EDGE_MM = 4.75, 1.98, 2.79, 2.0  # KS perforations
HOLDER = 0.01  # transmission of the holder around the film
LV_WB = np.array([1.05, 1.6, 2.4], np.float32)  # the live view's white balance gains (auto WB on an orange base)
LV_GAIN = 1.15  # the live view's exposure relative to the RAW's


def camera_tone(lin: np.ndarray) -> np.ndarray:
    """The emulated camera's live-view rendering: linear camera RGB → 8-bit-ready [0, 1]:
    white balance, exposure, sRGB curve, then a picture style's S-curve (monotone)."""
    x = np.clip(lin * (LV_WB * LV_GAIN), 0.0, 1.0)
    y = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return np.clip(y - 0.07 * np.sin(2 * np.pi * y), 0.0, 1.0)


def _area(img: np.ndarray, h: int, w: int) -> np.ndarray:
    from station.pipeline.fastdecode import area_resize

    return area_resize(np.ascontiguousarray(img, dtype=np.float32), (w, h))


class LiveScene:
    """The scripted strip; see the module docstring.

    lv_size   live-view JPEG size (w, h);  raw_size  RAW size (w, h), 3:2
    slide_s   seconds one advance takes
    noise     live-view noise (std, in [0, 1] code values); flicker: relative gain wobble;
    shake     px (live view) the view jitters by
    auto_advance  the demo's operator (see _auto): None = slides only on advance()
    """

    def __init__(self, seed: int = 0, lv_size=(960, 640), raw_size=(1536, 1024), slide_s: float = 0.6,
                 noise: float = 0.012, flicker: float = 0.06, shake: float = 1.5, auto_advance: float | None = None,
                 quality: int = 80, clock=time.monotonic):
        self.seed = int(seed)
        self.lv_size = tuple(int(v) for v in lv_size)
        self.raw_size = tuple(int(v) for v in raw_size)
        self.slide_s = float(slide_s)
        self.noise, self.flicker, self.shake = float(noise), float(flicker), float(shake)
        self.auto_advance = auto_advance
        self.quality = int(quality)
        self.clock = clock
        self._lock = threading.Lock()
        self._pics: OrderedDict = OrderedDict()  # (k, scale) -> transmission image
        self._tiles: dict = {}
        self._rng = np.random.default_rng(self.seed + 7)
        self._bank = None
        self._lut = None
        self.t0 = clock()
        self._moves: list[tuple[float, int]] = []  # (start time, target index)
        self.log: list[dict] = []  # one entry per RAW made: time, position, moving, index
        self._auto_t0: float | None = None
        self.frames = 0  # live-view frames served

    # ------------------------------------------------------------------ the script
    def advance(self, start: float | None = None) -> int:
        """Start sliding to the next picture (after the current slide, if one runs); its index."""
        with self._lock:
            now = self.clock() if start is None else start
            start = max(now, self._moves[-1][0] + self.slide_s) if self._moves else now
            target = (self._moves[-1][1] if self._moves else 0) + 1
            self._moves.append((start, target))
            return target

    def state(self, t: float | None = None) -> tuple[float, bool, int]:
        """(position in pitches, moving, nearest picture index) at time t."""
        t = self.clock() if t is None else t
        if self.auto_advance:
            self._auto(t)
        with self._lock:
            moves = list(self._moves)
        pos, moving = 0.0, False
        for start, target in moves:
            if t < start:
                break
            s = min(1.0, (t - start) / self.slide_s)
            pos = (target - 1) + (3 * s * s - 2 * s ** 3)
            moving = s < 1.0
        return pos, moving, int(round(pos))

    def _auto(self, t: float) -> None:
        """The demo's operator: slides to the next picture `auto_advance` s after the last slide
        ended, or 1 s after the shot of the current picture, whichever comes first (an operator
        waits for the shot; a missed shot does not stop the roll).  The clock starts with the
        first live-view frame."""
        with self._lock:
            if self._auto_t0 is None:
                self._auto_t0 = t
            last_end = self._moves[-1][0] + self.slide_s if self._moves else self._auto_t0
            if t < last_end:
                return
            due = last_end + self.auto_advance
            shots = [e["t"] for e in self.log if e["t"] >= last_end and not e["moving"]]
            if shots:
                due = min(due, shots[-1] + 1.0)
            if t < due:
                return
        self.advance(start=due)

    # ------------------------------------------------------------------ rendering
    def _picture(self, k: int, scale: float) -> np.ndarray:
        """Transmission (h x w x 3) of picture k at `scale` px/mm; static grain included."""
        key = (k, round(scale, 4))
        with self._lock:
            if key in self._pics:
                self._pics.move_to_end(key)
                return self._pics[key]
        h, w = int(round(PIC_H_MM * scale)), int(round(PIC_W_MM * scale))
        full = 42.0  # pictures are made at one fine scale, then area-resized: LV and RAW agree
        fh, fw = int(round(PIC_H_MM * full)), int(round(PIC_W_MM * full))
        pos = scene(fh // 2, fw // 2, self.seed * 1000 + k)
        pos = np.repeat(np.repeat(pos, 2, axis=0), 2, axis=1)[:fh, :fw]
        rng = np.random.default_rng(self.seed * 1000 + k + 555)
        grain = rng.normal(0.0, 0.02, (fh, fw, 1)).astype(np.float32)  # density grain: moves with the film
        dens = GAMMA * np.log10(pos / 0.02) + grain
        trans = (FILM_BASE * 10.0 ** (-dens)).astype(np.float32)
        img = trans if (fh, fw) == (h, w) else _area(trans, h, w)
        with self._lock:
            self._pics[key] = img
            while len(self._pics) > 8:
                self._pics.popitem(last=False)
        return img

    def _tile(self, scale: float, w_px: int, h_px: int) -> np.ndarray:
        """The bare strip (base, rebate, holes, holder) over (view width + 2 pitches)."""
        key = (round(scale, 4), w_px, h_px)
        tile = self._tiles.get(key)
        if tile is not None:
            return tile
        pitch_px = PITCH_MM * scale
        width = int(np.ceil(2 * pitch_px + w_px + 4))
        pad = int(self.shake) + 4
        y = (np.arange(h_px + 2 * pad) - pad + 0.5) / scale - VIEW_H_MM / 2  # mm from the strip's centre line
        x = (np.arange(width) + 0.5) / scale
        tile = np.empty((len(y), width, 3), np.float32)
        tile[:] = HOLDER
        film = np.abs(y) <= FILM_H_MM / 2
        tile[film] = FILM_BASE
        holes_y = (np.abs(y) >= FILM_H_MM / 2 - HOLE_EDGE_MM - HOLE_H_MM) & (np.abs(y) <= FILM_H_MM / 2 - HOLE_EDGE_MM)
        holes_x = np.mod(x, HOLE_PITCH_MM) < HOLE_W_MM
        tile[np.ix_(holes_y, holes_x)] = 1.0
        self._tiles[key] = tile
        return tile

    def render(self, w_px: int, h_px: int, pos: float, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
        """Transmission of the view (h x w x 3) with the strip at `pos` pitches, shaken by (dx, dy) px."""
        scale = w_px / VIEW_W_MM
        pitch_px = PITCH_MM * scale
        tile = self._tile(scale, w_px, h_px)
        pad = (tile.shape[0] - h_px) // 2
        # view's left edge in strip px (the strip's x grows to the left as it advances)
        left = pos * pitch_px - (VIEW_W_MM / 2 - PITCH_MM / 2) * scale + dx
        phase = left % pitch_px
        x0 = int(round(phase))
        y0 = pad + int(round(dy))
        view = tile[y0:y0 + h_px, x0:x0 + w_px].copy()
        ph, pw = int(round(PIC_H_MM * scale)), int(round(PIC_W_MM * scale))
        top = int(round((VIEW_H_MM - PIC_H_MM) / 2 * scale)) - int(round(dy))
        k0 = int(np.floor(left / pitch_px))
        for k in range(k0 - 1, k0 + 3):
            if k < 0:
                continue
            # picture k's left edge in view px
            px = int(round(k * pitch_px + (PITCH_MM - PIC_W_MM) / 2 * scale - left))
            a, b = max(0, px), min(w_px, px + pw)
            c, d = max(0, top), min(h_px, top + ph)
            if a >= b or c >= d:
                continue
            pic = self._picture(k, scale)
            view[c:d, a:b] = pic[c - top:d - top, a - px:b - px]
        return view

    def _shake(self, scale_to_lv: float = 1.0) -> tuple[float, float]:
        s = self.shake * scale_to_lv
        return tuple(float(v) for v in self._rng.uniform(-s, s, 2))

    def start_on_first_frame(self) -> None:
        """With auto_advance: the operator's clock starts at the next frame asked for (not now)."""
        self._auto_t0 = None

    def live_frame(self, t: float | None = None) -> np.ndarray:
        """One live-view frame as 8-bit RGB (what the JPEG encodes)."""
        pos, _moving, _ = self.state(t)
        w, h = self.lv_size
        dx, dy = self._shake()
        view = self.render(w, h, pos, dx, dy)
        tt = self.clock() if t is None else t
        gain = 1.0 + self.flicker * np.sin(2 * np.pi * 2.7 * tt) + self.flicker / 2 * float(self._rng.standard_normal())
        if self._lut is None:  # camera_tone tabulated on 12-bit linear codes (x 4 headroom)
            codes = np.arange(4 * 4096, dtype=np.float32)[:, None] / 4095.0
            self._lut = np.ascontiguousarray((camera_tone(codes * np.ones(3, np.float32)) * 255).T.astype(np.float32))
            self._bank = (self._rng.standard_normal((4, h + 16, w + 16, 3)) * (self.noise * 255)).astype(np.float32)
        oy, ox = self._rng.integers(0, 16, 2)
        noise = self._bank[self._rng.integers(0, len(self._bank)), oy:oy + h, ox:ox + w]
        return _tone_noise(view, np.float32(0.85 * gain * 4095.0), self._lut, noise)

    def live_jpeg(self, t: float | None = None) -> bytes:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(self.live_frame(t)).save(buf, "JPEG", quality=self.quality)
        self.frames += 1
        return buf.getvalue()

    def raw_linear(self, t: float | None = None) -> np.ndarray:
        """The RAW's linear camera RGB (1.0 = sensor white) at time t (no flicker: a longer exposure)."""
        pos, _moving, _ = self.state(t)
        w, h = self.raw_size
        dx, dy = self._shake(w / self.lv_size[0])
        lin = self.render(w, h, pos, dx, dy) * 0.85
        rng = np.random.default_rng(self.seed + len(self.log) + 99)
        lin += rng.normal(0, 0.002, lin.shape).astype(np.float32)
        return np.clip(lin, 0, 1)

    def raw_dng(self, n: int = 0) -> bytes:
        """A RAW (Bayer DNG bytes) of the view now; logs the strip's state at the shot."""
        from station.io.dng import mosaic, write_bayer_dng

        t = self.clock()
        pos, moving, index = self.state(t)
        self.log.append({"t": t, "pos": pos, "moving": moving, "index": index, "frames": self.frames})
        rgb = self.raw_linear(t)
        cfa = mosaic(np.round(rgb * 65535).astype(np.uint16), "RGGB")
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "live.dng"
            write_bayer_dng(path, cfa, "RGGB", black=0, white=65535, make="Station", model="PTPIP Emulator")
            return path.read_bytes()


def run_advances(cam, service, advances: int, *, first_still: float = 1.5, still_after: float = 1.0,
                 timeout_each: float = 30.0, params=None, interval: float = 1 / 20) -> dict:
    """Auto-capture on the emulator's strip: `advances` slides, the station's settle watcher
    firing CameraService.capture() on its own.

    cam: an EmulatedCamera with live view; service: a started CameraService on it.  After each
    slide, waits for the capture (up to `timeout_each` s), then `still_after` s more (time for
    a double trigger to show).  Returns {"advances", "captures", "capture_start_s", "double",
    "while_moving", "missed", "previews", "fps", "log"}: log = the emulator's record of every
    shot; capture_start_s = seconds from the watcher's capture request to the camera receiving
    InitiateCapture (median, max) while live view runs."""
    from station.settle import LiveViewWatcher

    requested: list[float] = []

    def capture():
        requested.append(time.monotonic())  # the same clock as the emulator's shot log (one machine)
        return service.capture()

    watcher = LiveViewWatcher(service.preview, capture, params, interval=interval)
    watcher.start()
    t0 = time.monotonic()
    try:
        # the frame in place when auto-capture starts is the operator's: the watcher takes it as
        # its reference once it has seen it settle (the page shows "settled")
        end = time.monotonic() + max(first_still, timeout_each)
        while time.monotonic() < end and watcher.detector.state != "settled":
            time.sleep(0.05)
        time.sleep(first_still / 3)
        for i in range(advances):
            want = len(cam.scene_log()) + 1
            files = service.snapshot()["files"]
            cam.advance()
            end = time.monotonic() + timeout_each
            while time.monotonic() < end and (len(cam.scene_log()) < want or service.snapshot()["files"] <= files):
                time.sleep(0.05)  # shot and downloaded
            time.sleep(still_after)
    finally:
        watcher.stop()
    elapsed = time.monotonic() - t0
    log = cam.scene_log()
    per: dict[int, int] = {}
    for e in log:
        if not e["moving"]:
            per[e["index"]] = per.get(e["index"], 0) + 1
    return {"advances": advances, "captures": len(log),
            "capture_start_s": capture_starts(log, requested),
            "double": sum(max(0, n - 1) for n in per.values()) + per.get(0, 0),
            "while_moving": sum(1 for e in log if e["moving"]),
            "missed": sum(1 for k in range(1, advances + 1) if k not in per),
            "previews": watcher.stats["previews"], "fps": round(watcher.stats["previews"] / elapsed, 1),
            "log": log}


def capture_starts(shots: list[dict], requested: list[float]) -> dict | None:
    """Capture request -> the camera receiving InitiateCapture: {"median", "max", "n",
    "unrequested"} in seconds, or None when no shot was requested.

    shots: the emulator's shot log (its "t": time.monotonic() at InitiateCapture, the same
    clock as the requests: CLOCK_MONOTONIC is the machine's, across processes); requested:
    time.monotonic() of every capture request.  Each shot is paired with the newest request
    before it that no earlier shot took: a request answers one shot.  A shot with no request
    of its own (the camera's own button, or one requested after the caller stopped recording
    requests) counts as `unrequested` and is left out of the figures: pairing it with an
    earlier shot's request would report the time between two shots as a start delay."""
    reqs = sorted(requested)
    starts: list[float] = []
    unrequested = 0
    used = -1  # index of the newest request a shot has taken
    j = -1
    for e in sorted(shots, key=lambda e: e["t"]):
        while j + 1 < len(reqs) and reqs[j + 1] <= e["t"]:
            j += 1
        if j > used:
            starts.append(e["t"] - reqs[j])
            used = j
        else:
            unrequested += 1
    if not starts:
        return None
    return {"median": round(float(np.median(starts)), 3), "max": round(max(starts), 3), "n": len(starts),
            "unrequested": unrequested}
