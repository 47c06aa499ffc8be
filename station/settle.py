"""Auto-capture on a manual film carrier: fire once when a new frame has settled.

The camera's live view (libgphoto2 `capture_preview`, a small JPEG) is watched while
the operator slides the strip.  `SettleDetector.update(image, t)` returns True on the
one preview where the film has *moved* (a large change against the last captured
frame) and then *stood still* for `still_s` seconds.  It never fires twice for one
frame and never while the film moves.  `detect_settles(frames, timestamps)` runs it
over a whole sequence (the pure form the tests use); `LiveViewWatcher` is the thin
thread that feeds it from a `grab_preview()` callable and calls `on_settled()`.

How each preview is compared (robust to what a copy stand does to live view):

* noise: the preview is reduced to grey and block-averaged to ~`size` px on its long
  side, then blurred (sigma `blur` px);
* flicker and auto-exposure (global brightness changes): every reduced frame is
  normalised to zero mean and unit standard deviation, so a gain or an offset of the
  whole picture changes nothing;
* hand shake (the stand or the carrier jitters by a few pixels): the distance between
  two frames is the smallest mean absolute difference over shifts of up to `shift` px
  (at the reduced size) -- a jitter stays within it, a real slide quickly leaves it;
* "still" means: every frame of the last `still_s` seconds is within `still_thr` of
  the newest one (a slow creep accumulates and is not still);
* "moved" means: some frame since the last trigger was further than `change_thr` from
  the reference (the last triggered frame); the trigger then also needs the settled
  frame itself to differ from the reference by `min_change` (a hand passing over the
  frame and leaving moves nothing: no trigger) and to show some picture (`min_contrast`:
  an empty, evenly lit holder is not a frame).

The first frame seen settled becomes the reference without a trigger (the frame in
the holder when auto-capture is switched on is the operator's to shoot), unless
`trigger_first` is set.
"""
from __future__ import annotations

import io
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

log = logging.getLogger("station.settle")


@dataclass
class SettleParams:
    still_s: float = 0.5  # the film must stand still this long
    still_thr: float = 0.2  # max distance within the still window
    change_thr: float = 0.35  # distance from the reference that counts as "the film moved"
    min_change: float = 0.25  # the settled frame must differ from the reference this much
    shift: int = 2  # shake tolerance, px at the reduced size
    size: int = 64  # long side of the reduced frame
    crop: float = 0.8  # the central fraction (of each side) that is compared
    blur: float = 1.0  # Gaussian sigma at the reduced size
    min_contrast: float = 0.02  # std/mean below this = an empty (flat) view: never a trigger
    max_window: int = 5  # at most this many frames of the still window are compared
    min_frames: int = 3  # "still" needs at least this many frames agreeing (incl. the newest): with a
    # slow live view (a loaded machine) the window reaches further back instead of never filling
    trigger_first: bool = False


def reduce_frame(img: np.ndarray, size: int = 64, blur: float = 1.0, crop: float = 0.8) -> tuple[np.ndarray, float]:
    """Preview (HxW or HxWx3, any dtype) → (zero-mean unit-std reduced grey image, contrast)."""
    from scipy.ndimage import gaussian_filter

    raw = np.asarray(img)
    h, w = raw.shape[:2]
    # The central part only: the rebate and its sprocket holes (the brightest, most
    # contrasty thing in view) repeat exactly from one frame to the next.
    cy, cx = int(h * (1 - crop) / 2), int(w * (1 - crop) / 2)
    raw = raw[cy:h - cy, cx:w - cx]
    h, w = raw.shape[:2]
    k = max(1, int(round(max(h, w) / size)))
    hh, ww = (h // k) * k, (w // k) * k
    raw = raw[:hh, :ww]
    if raw.ndim == 3:
        a = raw.reshape(hh // k, k, ww // k, k, raw.shape[2]).mean(axis=(1, 3, 4), dtype=np.float32)
    else:
        a = raw.reshape(hh // k, k, ww // k, k).mean(axis=(1, 3), dtype=np.float32)
    if raw.dtype.kind in "ui":  # 8- or 16-bit preview → [0, 1]
        a /= float(np.iinfo(raw.dtype).max)
    contrast = float(a.std() / max(abs(float(a.mean())), 1e-6))
    # log: a change of the light's level (flicker, auto-exposure) becomes an offset,
    # and the dense picture counts as much as the bright holes.
    a = np.log(np.maximum(a, 0.0) + 0.02)
    if blur > 0:
        a = gaussian_filter(a, blur, mode="nearest")
    a = a - float(np.median(a))
    std = float(a.std())
    # A floor on the spread keeps a flat view flat instead of amplifying its noise.
    a = a / max(std, 0.05)
    np.clip(a, -3.0, 3.0, out=a)
    return a.astype(np.float32), contrast


def _shifted_distances(cur: np.ndarray, others: np.ndarray, s: int) -> np.ndarray:
    """Shift-tolerant distances of `cur` (h×w) to each of `others` (n×h×w): the smallest
    mean absolute difference over shifts of up to `s` px in each direction."""
    h, w = cur.shape
    if s <= 0 or h <= 2 * s + 2 or w <= 2 * s + 2:
        return np.abs(others - cur[None]).mean(axis=(1, 2))
    from numpy.lib.stride_tricks import sliding_window_view

    views = sliding_window_view(cur, (h - 2 * s, w - 2 * s))  # (2s+1, 2s+1, h-2s, w-2s)
    views = views.reshape(-1, h - 2 * s, w - 2 * s)
    out = np.empty(len(others), np.float32)
    for i, o in enumerate(others):
        d = np.abs(views - o[s:h - s, s:w - s][None])
        out[i] = d.mean(axis=(1, 2)).min()
    return out


def frame_distance(a: np.ndarray, b: np.ndarray, params: SettleParams | None = None) -> float:
    """Distance between two previews as the detector sees it (0 = same picture, ~1.1 = unrelated)."""
    p = params or SettleParams()
    ra, _ = reduce_frame(a, p.size, p.blur, p.crop)
    rb, _ = reduce_frame(b, p.size, p.blur, p.crop)
    return float(_shifted_distances(ra, rb[None], p.shift)[0])


class SettleDetector:
    """Incremental settle detector: `update(image, t) -> bool` (True = capture now)."""

    def __init__(self, params: SettleParams | None = None):
        self.p = params or SettleParams()
        self.reset()

    def reset(self, keep_reference: bool = True) -> None:
        """Forget the recent frames (e.g. after a capture interrupted live view)."""
        self._window: deque = deque()
        if not keep_reference or not hasattr(self, "_ref"):
            self._ref: np.ndarray | None = None
            self._armed = bool(self.p.trigger_first)
            self.triggers = 0
        self.state = "waiting"
        self.last = {"still": None, "change": None}

    def update(self, image: np.ndarray, t: float) -> bool:
        p = self.p
        cur, contrast = reduce_frame(image, p.size, p.blur, p.crop)
        win = self._window
        if win and win[-1][1].shape != cur.shape:
            win.clear()  # the preview size changed
        # distance from the reference: "has the film moved since the last capture?"
        change = None
        if self._ref is not None and self._ref.shape == cur.shape:
            change = float(_shifted_distances(cur, self._ref[None], p.shift)[0])
            if change > p.change_thr:
                self._armed = True
        elif self._ref is not None:
            self._ref, self._armed = None, True
        # stillness over the last still_s seconds
        while len(win) >= p.min_frames and win[0][0] < t - p.still_s * 1.5:
            win.popleft()
        covered = bool(win) and win[0][0] <= t - p.still_s and len(win) >= p.min_frames - 1
        still_d = None
        if covered:
            in_window = [f for (ts, f, _) in win if ts >= t - p.still_s - 1e-9]
            if len(in_window) < p.min_frames - 1:  # too few frames in still_s: the last ones, further back
                in_window = [f for (_, f, _) in list(win)[-(p.min_frames - 1):]]
            older = [f for (ts, f, _) in win if ts < t - p.still_s - 1e-9]
            if older:
                in_window.insert(0, older[-1])  # the frame just before the window start: full coverage
            if len(in_window) > p.max_window:
                idx = np.linspace(0, len(in_window) - 1, p.max_window).round().astype(int)
                in_window = [in_window[i] for i in idx]
            still_d = float(_shifted_distances(cur, np.stack(in_window), p.shift).max())
        # the smallest distance from the reference held over the still window: the new
        # position must have been held, not just reached by the newest preview
        held = min([c for (ts, _, c) in win if ts >= t - p.still_s - 1e-9 and c is not None]
                   + ([change] if change is not None else []), default=None)
        win.append((t, cur, change))
        self.last = {"still": still_d, "change": change, "contrast": contrast}
        still = still_d is not None and still_d <= p.still_thr
        if not still:
            self.state = "moving" if still_d is not None else "waiting"
            return False
        if contrast < p.min_contrast:
            self.state = "empty"
            return False  # nothing to capture; stay armed for the next strip
        if self._ref is None and not self._armed:
            self._ref = cur  # the frame already in place: the reference, no trigger
            self.state = "settled"
            return False
        if self._armed and (held is None or held > p.min_change):
            self._ref = cur
            self._armed = False
            for j, (ts, f, _) in enumerate(win):
                win[j] = (ts, f, None)  # measured against the old reference
            self.triggers += 1
            self.state = "settled"
            return True
        # Still, but the same frame as the reference (a hand passed, light flickered).
        self._armed = False
        self.state = "settled"
        return False


def detect_settles(frames: Iterable[np.ndarray], timestamps: Sequence[float] | Iterable[float],
                   params: SettleParams | None = None) -> list[int]:
    """Indices of the frames on which the detector fires (pure: a fresh detector per call)."""
    det = SettleDetector(params)
    out = []
    for i, (img, t) in enumerate(zip(frames, timestamps)):
        if det.update(img, float(t)):
            out.append(i)
    return out


def decode_preview(data) -> np.ndarray:
    """A preview as given by the camera (JPEG bytes, a PIL image or an array) → HxWx3 array."""
    if isinstance(data, np.ndarray):
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        from PIL import Image

        with Image.open(io.BytesIO(bytes(data))) as im:
            im.draft("RGB", (320, 320))  # JPEG DCT scaling: cheap reduction
            return np.asarray(im.convert("RGB"))
    return np.asarray(data)


class LiveViewWatcher:
    """Thread: grab_preview() → detector → on_settled() once per settled frame.

    grab_preview: callable returning a preview (JPEG bytes or an array); it should
        raise when the camera cannot give one (busy, gone): the watcher backs off.
    on_settled: callable (e.g. `camera.capture`); if it returns a Future, the watcher
        waits for it before it grabs again (the capture interrupts live view), then
        forgets the recent frames (the preview after a capture may look different).
    interval: seconds between grabs (at most ~1/interval previews per second).
    """

    def __init__(self, grab_preview: Callable[[], object], on_settled: Callable[[], object],
                 params: SettleParams | None = None, interval: float = 1 / 15, capture_timeout: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, paused: Callable[[], bool] | None = None):
        self.grab_preview = grab_preview
        self.paused = paused  # while it returns True no preview is taken (e.g. an auto-roll runs)
        self.on_settled = on_settled
        self.detector = SettleDetector(params)
        self.interval = interval
        self.capture_timeout = capture_timeout
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats = {"previews": 0, "triggers": 0, "errors": 0, "last_error": None}

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="liveview-settle", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def snapshot(self) -> dict:
        return {"running": self.running, "state": self.detector.state, **self.stats}

    # a boundary.Service named "liveview"; its command turns auto-capture on and off
    name = "liveview"

    def commands(self) -> dict:
        def liveview(enabled=None, **_):
            if enabled is True:
                self.start()
            elif enabled is False:
                self.stop()
            return self.snapshot()

        return {"liveview": liveview}

    def _run(self) -> None:
        backoff = self.interval
        while not self._stop.is_set():
            if self.paused is not None and self.paused():
                self.detector.reset()
                if self._stop.wait(0.2):
                    return
                continue
            t0 = self.clock()
            try:
                img = self.grab_preview()
                if hasattr(img, "result"):  # a Future from the camera's owner thread
                    img = img.result(timeout=10)
                img = decode_preview(img)
            except Exception as exc:
                self.stats["errors"] += 1
                self.stats["last_error"] = str(exc)
                if getattr(exc, "permanent", False):  # e.g. a camera with no live view: stop asking
                    log.error("live view: %s; auto-capture is off", exc)
                    return
                log.warning("live view: no preview (%s); retrying in %.1f s", exc, backoff)
                self.detector.reset()
                if self._stop.wait(backoff):
                    return
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = self.interval
            self.stats["previews"] += 1
            if self.detector.update(img, t0):
                self.stats["triggers"] += 1
                log.info("live view: frame settled, capturing")
                try:
                    res = self.on_settled()
                    if hasattr(res, "result"):
                        res.result(timeout=self.capture_timeout)
                except Exception as exc:
                    self.stats["errors"] += 1
                    self.stats["last_error"] = f"capture failed: {exc}"
                    log.error("live view: capture after settle failed: %s", exc)
                self.detector.reset()
            rest = self.interval - (self.clock() - t0)
            if rest > 0 and self._stop.wait(rest):
                return


# -- configuration ---------------------------------------------------------------------------

LIVEVIEW_KEYS = {"enabled": bool, "interval": float,  # besides the SettleParams fields
                 "live": bool, "fps": float, "size": int}  # the live positive (station.capture.live)


def _config_errors(prefix: str, obj, cls, extra: dict) -> list[str]:
    """Errors (one line each, naming the key) for a mapping of `cls`'s dataclass fields + `extra`."""
    import dataclasses

    if obj is None:
        return []
    if not isinstance(obj, dict):
        return [f"{prefix}: must be a mapping, got {type(obj).__name__}"]
    types = {f.name: type(f.default) for f in dataclasses.fields(cls)}
    types.update(extra)
    errors = []
    for k, v in obj.items():
        key = f"{prefix}.{k}"
        t = types.get(k)
        if t is None:
            errors.append(f"{key}: unknown key (known: {', '.join(sorted(types))})")
        elif t is bool:
            if not isinstance(v, bool):
                errors.append(f"{key}: must be true or false, got {v!r}")
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or (t is int and not isinstance(v, int)):
            errors.append(f"{key}: must be a {'whole ' if t is int else ''}number, got {v!r}")
        elif v < 0:
            errors.append(f"{key}: must be ≥ 0, got {v!r}")
    return errors


def validate_liveview_config(obj) -> list[str]:
    """`liveview:` config (auto-capture on a manual carrier): enabled, interval, SettleParams fields."""
    return _config_errors("liveview", obj, SettleParams, LIVEVIEW_KEYS)


def liveview_from_config(obj) -> tuple[bool, SettleParams, float]:
    """`liveview:` mapping → (enabled, SettleParams, interval s); validate first."""
    obj = dict(obj or {})
    enabled = bool(obj.pop("enabled", False))
    interval = float(obj.pop("interval", 1 / 15))
    for k in ("live", "fps", "size"):  # station.capture.live's
        obj.pop(k, None)
    return enabled, SettleParams(**obj), interval


def attach(app) -> LiveViewWatcher | None:
    """The daemon plug-in: auto-capture on a manual carrier (config `liveview: {enabled: true}`).

    Needs the camera service (`app.service("camera")`, whose `.camera` is a CameraService)
    to offer `preview()` → JPEG bytes (or a Future of them), taken on the camera's owner
    thread with libgphoto2's `capture_preview`.  Captures with `.camera.capture()`.  Paused
    while an auto-roll runs.  Command `liveview` (enabled=true/false, or no argument for
    the state).  Attach after station.capture.service and station.autoroll.
    """
    enabled, params, interval = liveview_from_config(app.cfg.get("liveview"))
    cam = app.service("camera")
    camera = getattr(cam, "camera", None)
    grab = getattr(camera, "preview", None)
    if not enabled:
        return None
    if camera is None or not callable(grab):
        log.error("liveview: enabled, but the camera service offers no live view (preview()): auto-capture is off")
        return None
    ar = app.service("autoroll")

    def paused() -> bool:
        ctl = getattr(ar, "controller", None)
        return bool(ctl is not None and ctl.running)

    live = app.service("live")  # one grabber: the live positive's feed, when it is there
    if live is not None and getattr(live, "feed", None) is not None:
        grab = live.feed.next_jpeg
    watcher = LiveViewWatcher(grab, camera.capture, params, interval=interval, paused=paused)
    app.register_service(watcher)
    return watcher
