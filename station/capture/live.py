"""The live positive: the camera's live view run through the roll's conversion.

    feed = LiveFeed(camera.preview, fps=20)      # one grabber on the camera's owner thread
    pos = LivePositive(feed, settings)           # live-view JPEG -> linear -> base -> LUT -> JPEG
    pos.latest() -> (seq, jpeg bytes, stats)     # served as GET /live.mjpg and /live.json

**One grabber.**  `LiveFeed` asks the camera service for one live-view frame at a time
(`CameraService.preview()`, a request on the camera's owner thread, in turn with
captures: a capture waits for at most the one preview in flight).  The settle watcher
(auto-capture) reads the same frames (`next_jpeg`), so the camera is asked once per frame.

**Live view is not linear.**  `ToneMap` (station.capture.livetone) maps each channel's
8-bit code to linear camera RGB, learnt from pairs: every captured RAW and the live-view
frame just before it.  **Nor at the RAW's level**: each frame's level (flicker, the camera's
exposure simulation) is read on its film base (`frame_level`) and the base scaled by it.

**The conversion** is the daemon's preview path on the linearised frame: the roll's base
(its calibrated blank, or the per-frame estimate), density, the inverter's compiled LUT
(the station's `inversion.method` / `inversion.model`) with the roll's print composed in
(station.pipeline.printing; the station's `print:` when the roll has none), JPEG.  It runs in its own thread
on the newest frame only (frames that arrive while one converts are skipped), so it
never holds up the camera.

**Aids** (station.capture.liveaids): focus score (best on this roll), picture edges and tilt.
"""
from __future__ import annotations

import concurrent.futures as cf
import io
import json
import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable

import numpy as np

from station.capture.livetone import (  # noqa: F401  (re-exported: the live view's tone map and decoders)
    MAX_PAIRS, ToneMap, _raw_linear, decode_jpeg, default_table, frame_level, srgb_to_linear,
)

log = logging.getLogger("station.live")

BASE_EVERY_S = 1.0
REBATES = 5  # the live view's base: the median of this many recent rebate estimates
AIDS_EVERY_S = 0.25
METER_EVERY_S = 0.25  # the live view metered at most this often (the view stands still between)


class _Loop:
    """One background thread running `self._run()` until `self._stop` is set (waking it
    through `self._cond`); the subclass sets `_thread = None`, `_stop`, `_cond`."""

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _start_thread(self, name: str) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _stop_thread(self, timeout: float) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)


class LiveFeed(_Loop):
    """One thread asking `grab()` (CameraService.preview) for frames at up to `fps`."""

    def __init__(self, grab: Callable[[], object], fps: float = 20.0, keep: int = 8):
        self.grab = grab
        self.interval = 1.0 / max(0.5, float(fps))
        self._cond = threading.Condition()
        self._frames: deque = deque(maxlen=keep)  # (seq, t, jpeg)
        self._seq = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats = {"frames": 0, "errors": 0, "last_error": None, "fps": 0.0}
        self._times: deque = deque(maxlen=30)
        self._reader_seq = 0  # the settle watcher's last frame

    def start(self) -> None:
        self._start_thread("live-feed")

    def stop(self, timeout: float = 5.0) -> None:
        self._stop_thread(timeout)

    def _run(self) -> None:
        backoff = self.interval
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                data = self.grab()
                if hasattr(data, "result"):
                    data = data.result(timeout=10)
                data = bytes(data)
            except Exception as exc:
                self.stats["errors"] += 1
                self.stats["last_error"] = str(exc)
                if getattr(exc, "permanent", False):
                    log.error("live view: %s; live view is off", exc)
                    return
                if self._stop.wait(backoff):
                    return
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = self.interval
            t = time.monotonic()
            with self._cond:
                self._seq += 1
                self._frames.append((self._seq, t, data, time.time()))
                self._cond.notify_all()
            self.stats["frames"] += 1
            self._times.append(t)
            if len(self._times) > 1:
                self.stats["fps"] = round((len(self._times) - 1) / max(1e-6, self._times[-1] - self._times[0]), 1)
            rest = self.interval - (time.monotonic() - t0)
            if rest > 0 and self._stop.wait(rest):
                return

    def latest(self, before: float | None = None):
        """The newest frame (seq, t, jpeg, wall time), or the newest received before wall time `before`."""
        with self._cond:
            frames = [f for f in self._frames if before is None or f[3] < before]
            return frames[-1] if frames else None

    def wait_newer(self, seq: int, timeout: float = 2.0):
        """The newest frame after `seq` (blocks up to timeout); None on timeout/stop."""
        end = time.monotonic() + timeout
        with self._cond:
            while not self._stop.is_set():
                if self._frames and self._frames[-1][0] > seq:
                    return self._frames[-1]
                rest = end - time.monotonic()
                if rest <= 0:
                    return None
                self._cond.wait(rest)
        return None

    def next_jpeg(self):
        """For the settle watcher (one reader): the next new frame's JPEG; raises when none comes."""
        if not self.running:
            self.start()
        fr = self.wait_newer(self._reader_seq, timeout=5.0)
        if fr is None:
            raise RuntimeError(self.stats.get("last_error") or "no live-view frame")
        self._reader_seq = fr[0]
        return fr[2]


class LivePositive(_Loop):
    """Thread: newest live-view frame -> positive JPEG (+ aids).  See the module docstring.

    settings: callable -> (inverter, base rgb or None[, print or None[, rendering or None]]);
    called per frame (cheap: cached by the caller).  With the roll's rendering
    (pipeline.roll.Rendering: the locked one, or the analysis' estimate until it locks) its base
    and normaliser (A, b) are used, as for the roll's captured frames.  Else the inverter meters each frame (at most every METER_EVERY_S) -- a
    frame of one dominant colour then comes out cast, as it would on its own -- with the given
    base or the live view's own: the median of its last REBATES rebate estimates (one every
    BASE_EVERY_S).  size: long side of the positive (the live view's own size if smaller).
    """

    def __init__(self, feed: LiveFeed, settings: Callable[[], tuple], size: int = 960, quality: int = 80):
        self.feed = feed
        self.settings = settings
        self.size = int(size)
        self.quality = int(quality)
        self.tone = ToneMap()
        self._cond = threading.Condition()
        self._out: tuple | None = None  # (seq, jpeg, stats)
        self._seq = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._times: deque = deque(maxlen=30)
        self._pool: cf.ProcessPoolExecutor | None = None
        self.point: tuple[float, float] | None = None  # magnifier / focus point (fractions)
        self._base = None  # (key, time, BaseEstimate): the live view's base estimate
        self._shown: deque = deque(maxlen=32)  # (live-view seq, the positive JPEG shown for it)
        self._rebates: deque = deque(maxlen=REBATES)  # the live view's recent rebate (base) estimates
        self._metered = None  # (key, time, (A, b)): the inverter's metering of a recent frame
        self._aids_at = 0.0
        self._compiled = None
        self.pair_log: deque = deque(maxlen=64)  # per captured RAW: the live positive just before it
        self.aids = None
        self.stats = {"positives": 0, "fps": 0.0, "errors": 0, "last_error": None, "convert_ms": None}

    def start(self) -> None:
        self.feed.start()
        self._start_thread("live-positive")

    def stop(self, timeout: float = 5.0) -> None:
        self._stop_thread(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def convert(self, lv: np.ndarray) -> np.ndarray:
        """Live-view frame (uint8) -> positive sRGB float HxWx3 in [0, 1]."""
        return self.convert_u8(lv).astype(np.float32) / np.float32(255.0)

    def convert_u8(self, lv: np.ndarray) -> np.ndarray:
        """Live-view frame (uint8) -> positive sRGB uint8 HxWx3 (what the JPEG encodes)."""
        from station.capture import livelut
        from station.pipeline.base import BaseEstimate, estimate_base
        from station.pipeline.lutinvert import compiled
        from station.pipeline.normalise import density

        got = self.settings()
        inverter, base_rgb = got[0], got[1]
        ps = got[2] if len(got) > 2 else None  # the roll's print (printing.PrintSettings), when there is one
        rendering = got[3] if len(got) > 3 else None  # the roll's locked rendering (pipeline.roll.Rendering)
        affine = None
        if rendering is not None:  # the roll's base and normaliser, as the daemon converts its frames
            base, affine = rendering.base_estimate(), rendering.affine
        elif base_rgb is not None:
            base = BaseEstimate(np.asarray(base_rgb, np.float32), "roll")
        else:  # the live view's own estimate (~0.2 s): refreshed every BASE_EVERY_S, and when the tone map changes
            now = time.monotonic()
            key = (self.tone.pairs, lv.shape)
            if self._base is None or self._base[0] != key or now - self._base[1] > BASE_EVERY_S:
                if self._base is None or self._base[0] != key:
                    self._rebates.clear()  # another table: another linear scale
                est = estimate_base(self.tone.to_linear(lv[::2, ::2]))
                if est.source == "rebate":
                    self._rebates.append(est.rgb)
                if self._rebates:  # the median of the recent rebate estimates: one frame's (the strip
                    # moving, a sprocket hole read as base) does not swing the whole picture's colour
                    est = BaseEstimate(np.median(np.asarray(self._rebates, np.float32), axis=0), "rebate")
                self._base = (key, now, est)
            base = self._base[2]
        table = self.tone.table  # one table for the whole frame (a pair may be learnt meanwhile)
        # the frame's own level (flicker, exposure simulation): its film base against the base in use,
        # which is scaled by it (as base.reconcile does for a RAW whose scan exposure changed)
        level = frame_level(lv, table, base.rgb)
        self.stats["level"] = None if level is None else round(level, 4)
        if level is not None:
            base = BaseEstimate(base.rgb * np.float32(10.0 ** level), base.source)
        # 8-bit input: density is a function of each channel's code, D_c = -log10(lin_c / base_c)
        dtab = density(np.ascontiguousarray(table.T[:, None, :]), base.rgb)[:, 0, :].T
        dtab = np.ascontiguousarray(dtab, np.float32)
        if self._compiled is None or self._compiled[0] is not inverter or self._compiled[1] != ps:
            self._compiled = (inverter, ps, compiled(inverter, print=ps))  # once per inverter and print
        fn = self._compiled[2]
        if affine is None and livelut.available(fn):
            affine = self._meter(fn, dtab, lv)
        self.stats["rendering"] = (None if rendering is None  # None: metered
                                   else rendering.id + ("" if rendering.locked else " (provisional)"))
        if affine is not None and livelut.available(fn):  # codes -> LUT -> uint8 in one pass
            return livelut.apply_u8(fn.lut, lv, livelut.shaper(fn.lut, dtab, affine), fn.method)
        D = _take(dtab, lv)
        pos = fn(D) if affine is None else fn(D, affine=affine)
        if ps is not None and not ps.identity and fn is inverter:  # no LUT to compose the print into
            from station.pipeline.printing import apply_srgb

            pos = apply_srgb(pos, ps)
        return _to_u8(pos)

    def _meter(self, fn, dtab: np.ndarray, lv: np.ndarray):
        """The inverter metering the frame (its frame_affine, on the pixels it samples anyway),
        at most every METER_EVERY_S: the view stands still between, and the metering is a
        third of a frame's cost.  None when the inverter does not meter."""
        from station.pipeline.lutinvert import sample_frame

        now = time.monotonic()
        key = (id(fn), self.tone.pairs, lv.shape)
        if self._metered is not None and self._metered[0] == key and now - self._metered[1] < METER_EVERY_S:
            return self._metered[2]
        affine = fn.frame_affine(_take(dtab, np.ascontiguousarray(sample_frame(lv))))
        self._metered = (key, now, affine)
        return affine

    def _run(self) -> None:
        seq = 0
        while not self._stop.is_set():
            fr = self.feed.wait_newer(seq, timeout=1.0)
            if fr is None:
                continue
            seq, t_frame, data = fr[:3]
            t0 = time.perf_counter()
            try:
                lv = decode_jpeg(data, self.size)
                jpeg = _jpeg(self.convert_u8(lv), self.quality)
                self._shown.append((seq, jpeg, self.stats.get("rendering"), self.stats.get("level")))
                if time.monotonic() - self._aids_at > AIDS_EVERY_S:
                    from station.capture.liveaids import measure

                    self.aids = measure(lv, self.tone.to_linear(lv), self.point, self.aids)
                    self._aids_at = time.monotonic()
            except Exception as exc:
                self.stats["errors"] += 1
                self.stats["last_error"] = f"{exc.__class__.__name__}: {exc}"
                log.warning("live positive: %s", self.stats["last_error"])
                if self._stop.wait(0.5):
                    return
                continue
            now = time.monotonic()
            self._times.append(now)
            self.stats["positives"] += 1
            self.stats["convert_ms"] = round(1000 * (time.perf_counter() - t0), 1)
            self.stats["size"] = (int(lv.shape[1]), int(lv.shape[0]))
            if len(self._times) > 1:
                self.stats["fps"] = round((len(self._times) - 1) / max(1e-6, self._times[-1] - self._times[0]), 1)
            with self._cond:
                self._seq += 1
                self._out = (self._seq, jpeg, lv.shape[1], lv.shape[0])
                self._last_lv = (t_frame, lv)
                self._cond.notify_all()

    def wait_newer(self, seq: int, timeout: float = 2.0):
        """(seq, jpeg, w, h) of the newest positive after `seq`, or None on timeout."""
        end = time.monotonic() + timeout
        with self._cond:
            while not self._stop.is_set():
                if self._out is not None and self._out[0] > seq:
                    return self._out
                rest = end - time.monotonic()
                if rest <= 0:
                    return None
                self._cond.wait(rest)
        return None

    # -- pairs ------------------------------------------------------------------------
    def pair_with(self, raw_path: str | Path, before: float | None = None) -> cf.Future | None:
        """A RAW was captured: pair it with the newest live-view frame taken before it
        (received before wall time `before`, the file's event)."""
        fr = self.feed.latest(before)
        if fr is None:
            return None
        lv = decode_jpeg(fr[2], self.size)
        # the live positive just before the shot, as it was shown: the newest one made from a frame
        # taken up to that one (converting the frame again now would use what the live view
        # learnt and saw since -- the base, the metering, the light level of frames after the shot)
        shown = [x for x in list(self._shown) if x[0] <= fr[0]]
        try:
            if shown:
                seq, positive, rendering, level = shown[-1]
            else:
                seq, positive = fr[0], _jpeg(self.convert_u8(lv), self.quality)
                rendering, level = self.stats.get("rendering"), self.stats.get("level")
            self.pair_log.append({"raw": str(raw_path), "pairs": self.tone.pairs, "positive": positive, "frame": fr[2],
                                  "rendering": rendering, "level": level,
                                  "frame_age_s": round(before - fr[3], 3) if before is not None else None,
                                  "frames_between": fr[0] - seq})
        except Exception as exc:
            log.warning("live view: %s", exc)
        if self._pool is None:
            import multiprocessing as mp

            self._pool = cf.ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"))
        fut = self._pool.submit(_raw_linear, str(raw_path), (lv.shape[1], lv.shape[0]))

        def done(f):
            try:
                n = self.tone.learn(lv, f.result())
                if n:
                    log.info("live view: tone pair %d from %s (%d flat blocks)", self.tone.pairs, Path(raw_path).name, n)
                else:
                    log.info("live view: %s not learnt from: %s", Path(raw_path).name, (self.tone.last or {}).get("reason"))
            except Exception as exc:
                log.warning("live view: cannot learn from %s: %s", raw_path, exc)

        fut.add_done_callback(done)
        return fut

    def snapshot(self) -> dict:
        return {"running": self.running, "feed": dict(self.feed.stats), **self.stats, "tone": self.tone.snapshot(),
                "point": self.point, "aids": self.aids}

    def snapshot_json(self) -> bytes:
        return json.dumps(self.snapshot(), default=float).encode()


def _take(dtab: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Per channel, dtab[c][code]: HxWx3 uint8 codes -> HxWx3 float32."""
    out = np.empty(codes.shape, np.float32)
    for c in range(3):
        np.take(dtab[c], codes[..., c], out=out[..., c])
    return out


def _to_u8(pos: np.ndarray) -> np.ndarray:
    return (np.clip(pos, 0, 1) * 255 + 0.5).astype(np.uint8)


def _jpeg(pos: np.ndarray, quality: int) -> bytes:
    """A positive (uint8, or float in [0, 1]) as JPEG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pos if pos.dtype == np.uint8 else _to_u8(pos), "RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


# -- the daemon plug-in -----------------------------------------------------------------

class _Settings:
    """(inverter, roll base, print, rendering) for the live positive, as the daemon gives a new
    frame of the roll: the station's inversion settings, the current roll's base (its calibrated
    blank's, state/rolls/<roll>/manifest.json, else the one its roll analysis locked), the roll's
    print (else the station's `print:`) and the roll analysis' rendering (state/renderings/<roll>.json:
    base and normaliser; before it locks, its estimate so far, <roll>.provisional.json), once
    there is one."""

    def __init__(self, app):
        self.app = app
        self._inverter = None
        self._files: dict = {}  # "blank" / "analysis" -> (path, mtime, rgb)
        self._roll_error: str | None = None

    def __call__(self):
        if self._inverter is None:
            from station.pipeline.invert import get_inverter

            inv = (self.app.cfg.get("inversion") or {})
            method = inv.get("method")
            self._inverter = get_inverter(None if method in (None, "auto") else method, inv.get("model"))
        roll = self._roll()
        return self._inverter, self._roll_base(roll), self._print(roll), self._rendering(roll)

    def _roll(self):
        """The camera's current roll (its CameraState.roll, station.boundary), or None."""
        cam = self.app.service("camera")
        if cam is None:
            return None
        try:
            snap = cam.snapshot()
        except Exception as exc:  # said once, not per frame; the live view goes on without the roll's settings
            if self._roll_error != str(exc):
                self._roll_error = str(exc)
                log.warning("live view: cannot read the camera's current roll (%s); using no roll settings", exc)
            return None
        self._roll_error = None
        roll = getattr(snap, "roll", None)
        return getattr(roll, "name", None)

    def _print(self, roll):
        book = getattr(self.app, "prints", None)
        if book is None:
            return None
        try:
            s = book.roll_print(roll) or book.default
        except Exception:
            return None
        return None if s is None or s.identity else s

    def _roll_base(self, roll):
        """The roll's blank's base, else the base of its locked roll analysis, else None."""
        if not roll:
            return None
        return self._blank_base(roll) or self._analysis_base(roll)

    def _rendering(self, roll):
        """The roll's rendering: the locked one (the daemon's roll analysis,
        state/renderings/<roll>.json), else the analysis' estimate so far (<roll>.provisional.json:
        the frames' previews are re-rendered with the locked one, which it is the nearest guess of)
        once it has as many frames as a lock needs (roll.MIN_FRAMES: from one or two the estimate is
        that picture's own normaliser, and metering the live view does better), else None."""
        if not roll:
            return None
        folder = Path(self.app.cfg["paths"]["state"]) / "renderings"
        for path in (folder / f"{roll}.json", folder / f"{roll}.provisional.json"):
            try:
                mtime = path.stat().st_mtime_ns
                break
            except OSError:
                continue
        else:
            return None
        cached = self._files.get("rendering")
        if cached is not None and cached[:2] == (path, mtime):
            return cached[2]
        try:
            from station.pipeline.roll import MIN_FRAMES, Rendering

            r = Rendering.from_dict(json.loads(path.read_text()))
            r = r if r.locked or r.frames >= MIN_FRAMES else None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("live view: unreadable roll rendering %s (%s)", path, exc)
            r = None
        self._files["rendering"] = (path, mtime, r)
        return r

    def _analysis_base(self, roll: str):
        """The base of the roll's locked rendering (the daemon's roll analysis: the median of its
        frames' rebates, state/renderings/<roll>.json)."""
        return self._read_rgb("analysis", Path(self.app.cfg["paths"]["state"]) / "renderings" / f"{roll}.json",
                              lambda d: d["base"])

    def _blank_base(self, roll: str):
        """The base of the roll's calibrated blank (state/rolls/<roll>/manifest.json)."""
        return self._read_rgb("blank", Path(self.app.cfg["paths"]["state"]) / "rolls" / roll / "manifest.json",
                              lambda d: (d.get("base") or {}).get("rgb"))

    def _read_rgb(self, slot: str, path: Path, pick):
        """An RGB triple (all > 0) picked from a JSON file, read again only when the file changes;
        None when the file or the triple is not there."""
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return None
        cached = self._files.get(slot)
        if cached is not None and cached[:2] == (path, mtime):
            return cached[2]
        try:
            rgb = [float(v) for v in pick(json.loads(path.read_text()))]
            rgb = rgb if len(rgb) == 3 and all(v > 0 for v in rgb) else None
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            rgb = None
        self._files[slot] = (path, mtime, rgb)
        return rgb


class LiveService:
    """The `live` service: feed + positive; started by config (`liveview.live: true`), by the
    `live` command (the page's button) or by auto-capture (the settle watcher's frames)."""

    name = "live"

    def __init__(self, feed: LiveFeed, positive: LivePositive, autostart: bool = False, command=None):
        self.feed, self.positive, self.autostart = feed, positive, autostart
        self._command = command

    def commands(self) -> dict:
        return {"live": self._command} if self._command is not None else {}

    def start(self) -> None:
        if self.autostart:
            self.positive.start()

    def stop(self) -> None:
        self.positive.stop()
        self.feed.stop()

    def snapshot(self) -> dict:
        return self.positive.snapshot()


def attach(app) -> LiveService | None:
    """Live view for the page: needs the camera service's preview().  Config (`liveview:`):
    live (start with the daemon, default false), fps (frames asked per second, 20), size
    (long side of the live positive, 960).  Command `live` (on=true/false, point=[x, y])."""
    cfg = dict(app.cfg.get("liveview") or {})
    cam = app.service("camera")
    camera = getattr(cam, "camera", None)
    if camera is None or not callable(getattr(camera, "preview", None)):
        def refuse(**_):
            raise ValueError("live view needs a camera with live view (preview()); none is attached")

        app.register_command("live", refuse)  # the page's button answers with the reason
        return None
    feed = LiveFeed(camera.preview, fps=float(cfg.get("fps", 20.0)))
    positive = LivePositive(feed, _Settings(app), size=int(cfg.get("size", 960)))

    def command(on=None, point=None, **_):
        if point is not None:
            x, y = (float(v) for v in point)
            if not (0 <= x <= 1 and 0 <= y <= 1):
                raise ValueError(f"point must be two fractions in [0, 1], got {point!r}")
            positive.point = (x, y)
        if on is True:
            positive.start()
        elif on is False:
            positive.stop()
            watcher = app.service("liveview")
            if not getattr(watcher, "running", False):
                feed.stop()
        return positive.snapshot()

    svc = LiveService(feed, positive, autostart=bool(cfg.get("live", False)), command=command)
    app.register_service(svc)

    def on_event(ev: dict) -> None:
        if ev.get("type") == "camera" and ev.get("event") == "file" and ev.get("kind") == "raw" and positive.running:
            positive.pair_with(ev["path"], before=ev.get("time"))
        elif ev.get("type") == "roll" and ev.get("event") != "calibrated":
            positive.aids = None  # best focus is per roll

    app.subscribe(on_event)
    return svc
