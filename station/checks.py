"""Frame checks: catch a bad frame while the strip is still in the holder.

Every check is a pure function returning a list of findings ``{"check", "message"}``
(plus ``"value"``, a number for the status page); an empty list means "looks fine".

* ``framing``  — the picture cut by the holder or the image edge (no film rebate left
  between the picture and it on a side), or off-centre (rebate widths on opposite
  sides very uneven).  From the densities D (rebate ≈ 0, picture > `picture_d`,
  holder ≥ `holder_d`).  A picture that reaches every edge of the image (a tight crop,
  a film scanner's output) is not judged.
* ``focus``    — sharpness of the picture area well below the roll's median
  (fine-over-coarse gradient energy; needs a few frames of the roll first).
* ``clipping`` — the film base at or over the sensor's white: the fraction of rebate
  pixels with a channel ≥ 0.98 in the decoded linear data.  Sprocket holes always clip
  and cover a minority of the rebate; a clipped base clips all of it.
* ``duplicate`` — the positive is nearly identical to the previous frame's (the film
  was not advanced).

Two ways in:

1. ``frame_metrics(pos, D, linear)`` — cheap numbers and a tiny thumbnail, computed
   where the frame is in memory (the daemon's worker, right after `invert_decoded`);
   JSON-able, so it crosses a process boundary.  ``RollChecks.check(metrics, roll)``
   then turns them into findings with the roll's context (focus median, previous
   frame).  ``check_frame(pos, D, linear, history)`` does both at once.
2. ``check_file(path)`` decodes (half size) and inverts a RAW with the pipeline, for
   a check of files already on disk (never in the daemon's process: its workers send
   the metrics, see CheckService).
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass
class CheckParams:
    picture_d: float = 0.08  # mean density above base from which a pixel is picture
    holder_d: float = 2.0  # mean density (over base) from which a pixel is the holder (opaque)
    line_picture: float = 0.15  # a row/column with this fraction of picture pixels is picture
    min_rebate: float = 0.006  # rebate narrower than this fraction of the side = cut
    uneven_ratio: float = 0.35  # narrower/wider rebate below this = off-centre ...
    uneven_min: float = 0.025  # ... when the widths also differ by this fraction of the side
    clip_level: float = 0.98  # linear value counted as the sensor's white
    clip_fraction: float = 0.5  # fraction of rebate pixels clipped that flags the base as clipped
    focus_ratio: float = 0.5  # sharpness below this × roll median = soft
    focus_min_frames: int = 3  # roll frames needed before focus is judged
    focus_history: int = 36  # frames of the roll the median is taken over
    duplicate_d: float = 0.12  # thumbnail distance below which two frames are the same
    work_size: int = 512  # long side of the copy the framing/clipping analysis runs on


def _finding(check: str, message: str, value=None) -> dict:
    f = {"check": check, "message": message}
    if value is not None:
        f["value"] = round(float(value), 4)
    return f


def _sample(a: np.ndarray, k: int) -> np.ndarray:
    """Every k-th pixel (a full-resolution pass over a 24 MP frame costs too much here)."""
    a = np.asarray(a)
    return a if k <= 1 else a[k // 2::k, k // 2::k]


def _mean_density(D: np.ndarray, k: int) -> np.ndarray:
    from scipy.ndimage import uniform_filter

    d = _sample(D, k).astype(np.float32).mean(axis=2)
    return uniform_filter(d, 3, mode="nearest") if k > 1 else d


def _factor(shape, size: int) -> int:
    return max(1, int(np.ceil(max(shape[:2]) / size)))


# -- framing --------------------------------------------------------------------------------

def _longest_run(good: np.ndarray) -> tuple[int, int] | None:
    best, start = None, None
    for i, g in enumerate(np.append(good, False)):
        if g and start is None:
            start = i
        elif not g and start is not None:
            if best is None or i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    return best


def _run_out(line_is_rebate: np.ndarray, start: int, step: int) -> int:
    """Rows/columns of rebate from `start` outward (step ±1) before something else or the edge."""
    n, i = 0, start
    while 0 <= i < len(line_is_rebate) and line_is_rebate[i]:
        n += 1
        i += step
    return n


def framing_metrics(D: np.ndarray, params: CheckParams | None = None) -> dict | None:
    """Picture box and rebate widths (fractions of the side) from densities; None if no picture."""
    p = params or CheckParams()
    k = _factor(D.shape, p.work_size)
    d = _mean_density(D, k)
    picture = (d > p.picture_d) & (d < p.holder_d)
    holder = d >= p.holder_d
    rows_pic = picture.mean(axis=1) >= p.line_picture
    cols_pic = picture.mean(axis=0) >= p.line_picture
    r, c = _longest_run(rows_pic), _longest_run(cols_pic)
    if r is None or c is None:
        return None
    (y0, y1), (x0, x1) = r, c
    h, w = d.shape
    # Rebate lines: next to the picture, few picture pixels and mostly not holder —
    # measured over the picture's extent only (corners belong to neither side).
    band_rows = picture[:, x0:x1].mean(axis=1) < p.line_picture
    band_rows &= holder[:, x0:x1].mean(axis=1) < 0.5
    band_cols = picture[y0:y1].mean(axis=0) < p.line_picture
    band_cols &= holder[y0:y1].mean(axis=0) < 0.5
    return {
        "box": [y0 / h, y1 / h, x0 / w, x1 / w],
        "rebate": {
            "top": _run_out(band_rows, y0 - 1, -1) / h,
            "bottom": _run_out(band_rows, y1, +1) / h,
            "left": _run_out(band_cols, x0 - 1, -1) / w,
            "right": _run_out(band_cols, x1, +1) / w,
        },
    }


def check_framing(framing: dict | None, params: CheckParams | None = None) -> list[dict]:
    """Findings from `framing_metrics`: picture cut on a side, picture off-centre."""
    p = params or CheckParams()
    if framing is None:
        return [_finding("framing", "no picture found in the frame (blank frame, or the film is not in view)")]
    reb = framing["rebate"]
    out = []
    y0, y1, x0, x1 = framing["box"]
    if y0 <= 0 and x0 <= 0 and y1 >= 1 and x1 >= 1:
        return []  # picture to every edge: a tight crop (film scanner, zoomed in): nothing to judge
    cut = [side for side in ("top", "bottom", "left", "right") if reb[side] < p.min_rebate]
    if cut:
        sides = cut[0] if len(cut) == 1 else ", ".join(cut[:-1]) + " and " + cut[-1]
        out.append(_finding("framing", f"picture cut at the {sides}: no film rebate between the "
                                        f"picture and the holder or the image edge there",
                            min(reb[s] for s in cut)))
    for a, b in (("left", "right"), ("top", "bottom")):
        if a in cut or b in cut:
            continue
        lo, hi = sorted((reb[a], reb[b]))
        if hi - lo >= p.uneven_min and lo < p.uneven_ratio * hi:
            out.append(_finding("framing", f"picture off-centre: rebate {a} {100 * reb[a]:.1f} %, "
                                            f"{b} {100 * reb[b]:.1f} % of the frame",
                                lo / hi if hi else 0.0))
    return out


# -- clipping -------------------------------------------------------------------------------

def clip_metrics(linear: np.ndarray, D: np.ndarray, framing: dict | None, params: CheckParams | None = None) -> dict | None:
    """Fraction of the rebate's pixels (outside the picture box, not holder) at the sensor's white."""
    p = params or CheckParams()
    k = _factor(linear.shape, p.work_size)
    lin = _sample(linear, k).astype(np.float32)
    d = _mean_density(D, k)
    h, w = d.shape
    outside = np.ones((h, w), bool)
    if framing is not None:
        y0, y1, x0, x1 = framing["box"]
        outside[int(y0 * h):int(np.ceil(y1 * h)), int(x0 * w):int(np.ceil(x1 * w))] = False
    rebate = outside & (d < p.picture_d) & (lin.max(axis=2) > 0.0)
    rebate &= lin.mean(axis=2) > 10 ** (-p.holder_d) * lin.max()  # not the (black) holder
    n = int(rebate.sum())
    if n < 20:
        return None
    px = lin[rebate]
    per = (px >= p.clip_level).mean(axis=0)
    return {"fraction": float((px >= p.clip_level).any(axis=1).mean()), "per_channel": [float(v) for v in per],
            "pixels": n}


def check_clipping(clip: dict | None, params: CheckParams | None = None) -> list[dict]:
    p = params or CheckParams()
    if clip is None or clip["fraction"] < p.clip_fraction:
        return []
    chans = [c for c, v in zip("RGB", clip["per_channel"]) if v >= p.clip_fraction]
    return [_finding("clipping", f"film base at the sensor's white ({100 * clip['fraction']:.0f} % of the rebate "
                                 f"clipped{' in ' + ', '.join(chans) if chans else ''}): lower the exposure or the light",
                     clip["fraction"])]


# -- focus ----------------------------------------------------------------------------------

def sharpness(pos: np.ndarray, framing: dict | None = None, max_side: int = 768) -> float:
    """Fine-over-coarse gradient energy of the picture area's centre (grey, native resolution).

    E(s) = mean |∇(G_s * image)|²; sharpness = E(0.8 px) / E(2 px) − 1.  A ratio of one
    picture with itself, so the picture's contrast and level cancel; defocus removes the
    fine scale first and drives it towards 0.  Its size still depends on the scene, so a
    frame is judged against the roll's median.  A crop (not a resize: resizing would hide
    the detail focus is about) of at most `max_side` px square is used.
    """
    from scipy.ndimage import gaussian_gradient_magnitude

    g = np.asarray(pos)
    h, w = g.shape[:2]
    if framing is not None:
        y0, y1, x0, x1 = framing["box"]
        y0, y1, x0, x1 = int(y0 * h), int(y1 * h), int(x0 * w), int(x1 * w)
    else:
        y0, y1, x0, x1 = 0, h, 0, w
    # the central 70 % of the picture, then at most max_side square
    cy, cx = (y1 - y0) * 15 // 100, (x1 - x0) * 15 // 100
    y0, y1, x0, x1 = y0 + cy, y1 - cy, x0 + cx, x1 - cx
    if y1 - y0 > max_side:
        y0 = (y0 + y1 - max_side) // 2
        y1 = y0 + max_side
    if x1 - x0 > max_side:
        x0 = (x0 + x1 - max_side) // 2
        x1 = x0 + max_side
    g = g[y0:y1, x0:x1].astype(np.float32)
    if g.ndim == 3:
        g = g.mean(axis=2)
    if min(g.shape) < 16:
        return 0.0
    e1 = float(np.mean(gaussian_gradient_magnitude(g, 0.8) ** 2))
    e2 = float(np.mean(gaussian_gradient_magnitude(g, 2.0) ** 2))
    if e2 < 1e-12:
        return 0.0
    return max(0.0, e1 / e2 - 1.0)


def check_focus(value: float | None, roll_values, params: CheckParams | None = None) -> list[dict]:
    """Flag a frame whose sharpness is well below the median of the roll's earlier frames."""
    p = params or CheckParams()
    vals = [v for v in roll_values if v is not None and v > 0]
    if value is None or len(vals) < p.focus_min_frames:
        return []
    med = float(np.median(vals))
    if med > 0 and value < p.focus_ratio * med:
        return [_finding("focus", f"soft: sharpness {100 * value / med:.0f} % of the roll's median "
                                  f"(check focus, a bent film or camera shake)", value / med)]
    return []


# -- duplicate ------------------------------------------------------------------------------

def thumbnail(pos: np.ndarray, framing: dict | None = None, size: int = 64) -> np.ndarray:
    """A small normalised grey copy of the picture area (what duplicate detection compares).

    Only the picture: the rebate and its holes look the same on every frame.  A fixed
    size (size × size·2/3, or its transpose) so that frames of a roll compare.
    """
    from station.settle import reduce_frame

    g = np.asarray(pos, np.float32)
    h, w = g.shape[:2]
    if framing is not None:
        y0, y1, x0, x1 = framing["box"]
        g = g[int(y0 * h):int(np.ceil(y1 * h)), int(x0 * w):int(np.ceil(x1 * w))]
        h, w = g.shape[:2]
    # resample to a fixed grid first (nearest rows/columns; block means follow)
    th, tw = (size * 2 // 3, size) if w >= h else (size, size * 2 // 3)
    ys = np.linspace(0, h - 1, th * 4).round().astype(int)
    xs = np.linspace(0, w - 1, tw * 4).round().astype(int)
    t, _ = reduce_frame(g[ys][:, xs], size=size, blur=0.7, crop=0.9)
    return t


def check_duplicate(thumb, prev_thumb, params: CheckParams | None = None) -> list[dict]:
    from station.settle import _shifted_distances

    p = params or CheckParams()
    if thumb is None or prev_thumb is None:
        return []
    a, b = np.asarray(thumb, np.float32), np.asarray(prev_thumb, np.float32)
    if a.shape != b.shape:
        return []
    d = float(_shifted_distances(a, b[None], 1)[0])
    if d < p.duplicate_d:
        return [_finding("duplicate", "looks like the previous frame: was the film advanced?", d)]
    return []


# -- together -------------------------------------------------------------------------------

def frame_metrics(pos: np.ndarray, D: np.ndarray | None = None, linear: np.ndarray | None = None,
                  params: CheckParams | None = None) -> dict:
    """Everything the checks need from one frame, JSON-able (computed where the frame is in memory).

    pos: the positive (HxWx3, sRGB [0,1]), D: its densities above base (same size),
    linear: the decoded linear camera RGB (same size).  D and linear are optional:
    without them the framing and clipping checks are skipped.
    """
    p = params or CheckParams()
    framing = framing_metrics(D, p) if D is not None else None
    m = {
        "framing": framing,
        "framing_known": D is not None,
        "clip": clip_metrics(linear, D, framing, p) if (linear is not None and D is not None) else None,
        "sharpness": sharpness(pos, framing),
        "thumb": thumbnail(pos, framing).round(3).tolist(),
    }
    return m


def findings_for(metrics: dict, roll_sharpness=(), prev_thumb=None, params: CheckParams | None = None) -> list[dict]:
    """Metrics of one frame (+ the roll's context) → findings."""
    p = params or CheckParams()
    out = []
    if metrics.get("framing_known"):
        out += check_framing(metrics.get("framing"), p)
    out += check_clipping(metrics.get("clip"), p)  # None (no rebate in view): silent
    out += check_focus(metrics.get("sharpness"), roll_sharpness, p)
    out += check_duplicate(metrics.get("thumb"), prev_thumb, p)
    return out


class RollChecks:
    """The roll context of the checks: sharpness history and the previous frame, per roll.

    check(metrics, roll) → findings; thread-safe.  Frames must be given in shooting order
    (the daemon's preview results arrive in order).
    """

    def __init__(self, params: CheckParams | None = None):
        self.p = params or CheckParams()
        self._lock = threading.Lock()
        self._rolls: dict = {}

    def check(self, metrics: dict, roll: str | None = None) -> list[dict]:
        with self._lock:
            st = self._rolls.setdefault(roll, {"sharp": deque(maxlen=self.p.focus_history), "thumb": None})
            out = findings_for(metrics, list(st["sharp"]), st["thumb"], self.p)
            st["sharp"].append(metrics.get("sharpness"))
            st["thumb"] = metrics.get("thumb")
        return out

    def forget(self, roll: str | None) -> None:
        with self._lock:
            self._rolls.pop(roll, None)


def check_frame(pos, D=None, linear=None, history: RollChecks | None = None, roll=None,
                params: CheckParams | None = None) -> list[dict]:
    """One call: metrics and findings (with `history` for focus and duplicates)."""
    m = frame_metrics(pos, D, linear, params)
    if history is None:
        return findings_for(m, (), None, params)
    return history.check(m, roll)


def metrics_for_decoded(dec, pos: np.ndarray, base, params: CheckParams | None = None) -> dict:
    """The one call for the daemon's worker, right after `invert_decoded(dec, opts)`:
    `frame_metrics` from the Decoded (linear rgb), the positive and the BaseEstimate used
    (D is recomputed from them: cheap at preview size).  JSON-able: send it back with
    the job's result and give it to `RollChecks.check(metrics, roll)` in the daemon."""
    from station.pipeline.normalise import density

    rgb = dec.rgb
    D = density(rgb, getattr(base, "rgb", base))
    if D.shape[:2] != pos.shape[:2]:  # auto-crop changed the positive: framing/clipping need the full frame
        return frame_metrics(pos, None, None, params)
    return frame_metrics(pos, D, rgb, params)


def check_file(path, options=None, history: RollChecks | None = None, roll=None,
               preview_size: int | None = 1600) -> tuple[list[dict], dict]:
    """Decode (half size), bring to `preview_size`, invert with the pipeline, check: (findings, metrics).

    The same stages as the daemon's preview path, for a command-line check of files on disk.
    """
    from station.pipeline.convert import ConvertOptions, invert_decoded, resize_long_side
    from station.pipeline.decode import decode
    from station.pipeline.invert import get_inverter

    options = options or ConvertOptions(half_size=True, inverter=get_inverter("classic"))
    dec = decode(path, half_size=options.half_size)
    if preview_size:
        dec.rgb = resize_long_side(dec.rgb, preview_size)
    pos, base, _ = invert_decoded(dec, options)
    m = metrics_for_decoded(dec, pos, base)
    findings = history.check(m, roll) if history is not None else findings_for(m)
    return findings, m


def summary(findings: list[dict]) -> str:
    """One line for a log, the status page or a hook's STATION_REASON."""
    return "; ".join(f"{f['check']}: {f['message']}" for f in findings)


CHECKS_KEYS = {"enabled": bool}


def validate_checks_config(obj) -> list[str]:
    """`checks:` config: enabled, and any CheckParams field."""
    from station.settle import _config_errors

    return _config_errors("checks", obj, CheckParams, CHECKS_KEYS)


def checks_from_config(obj) -> tuple[bool, CheckParams]:
    obj = dict(obj or {})
    enabled = bool(obj.pop("enabled", True))
    return enabled, CheckParams(**obj)


# -- the daemon plug-in ----------------------------------------------------------------------

class CheckService:
    """A boundary.Service named "checks": checks every frame the daemon inverts, on a
    thread of its own, in shooting order.

    Subscribed to the app's events: after each preview, a {"type": "metrics", "path",
    "roll", "frame", "metrics"} event carries the metrics the worker computed from the
    frame it decoded (sent after the preview's result, see `metrics_for_decoded` and
    station/daemon/worker.py); this service only adds the roll's context (focus median,
    the previous frame) — it never decodes a RAW, so the daemon's process never loads
    LibRaw.  A frame without metrics (its preview existed already) is counted
    `unchecked`; the first metrics of a frame count (a re-render's are not re-judged).  Findings go to the
    event bus ({"type": "checks", "path", "roll", "findings"}: the App stores them in
    the frame's journal row), to the `frame_flagged` hook and to `snapshot()` (the
    `checks` command).
    """

    def __init__(self, incoming, params: CheckParams | None = None, hooks=None, publish=None,
                 preview_size: int = 1024, keep: int = 200):
        import queue as _queue

        self.incoming = incoming
        self.p = params or CheckParams()
        self.hooks = hooks
        self.publish = publish or (lambda ev: None)
        self.preview_size = preview_size
        self.roll_checks = RollChecks(self.p)
        self._q: _queue.Queue = _queue.Queue(maxsize=1000)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._results: dict[str, list[dict]] = {}
        self._order: deque = deque(maxlen=keep)
        self._seen: set = set()
        self.counts = {"checked": 0, "flagged": 0, "errors": 0, "unchecked": 0}

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="frame-checks", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self._q.put(None)
            self._thread.join(timeout)
            self._thread = None

    def on_app_event(self, ev: dict) -> None:
        if ev.get("type") != "metrics":
            return
        path = ev.get("path")
        fr = dict(ev.get("frame") or {}, path=path, roll=ev.get("roll"))
        if not path:
            return
        with self._lock:
            if path in self._seen:
                return
            self._seen.add(path)
        if ev.get("metrics") is None:
            with self._lock:
                self.counts["unchecked"] += 1
            return
        try:
            self._q.put_nowait(dict(fr, metrics=ev["metrics"]))
        except Exception:
            import logging

            logging.getLogger("station.checks").warning("frame checks: backlog full, %s not checked", path)

    def _run(self) -> None:
        import logging
        import os

        log = logging.getLogger("station.checks")
        while True:
            fr = self._q.get()
            if fr is None:
                return
            rel = fr["path"]
            raw = rel if os.path.isabs(rel) else os.path.join(str(self.incoming), rel)
            try:
                findings = self.roll_checks.check(fr["metrics"], fr.get("roll"))
            except Exception as exc:
                self.counts["errors"] += 1
                log.warning("frame checks: %s: %s", rel, exc)
                continue
            with self._lock:
                self.counts["checked"] += 1
                self.counts["flagged"] += 1 if findings else 0
                self._results[rel] = findings
                self._order.append(rel)
                while len(self._results) > self._order.maxlen:
                    self._results.pop(next(iter(self._results)))
            self.publish({"type": "checks", "path": rel, "roll": fr.get("roll"), "findings": findings})
            if findings:
                log.warning("frame %s: %s", rel, summary(findings))
                if self.hooks is not None:
                    self.hooks.fire("frame_flagged", roll=fr.get("roll"), frame=os.path.basename(rel).split(".")[0],
                                    raw=raw, positive=fr.get("tiff") or fr.get("preview"), reason=summary(findings),
                                    checks=findings)

    name = "checks"

    def commands(self) -> dict:
        return {"checks": lambda path=None, **_: self.findings(path) if path else self.snapshot()}

    def findings(self, path: str) -> list[dict] | None:
        with self._lock:
            return self._results.get(path)

    def snapshot(self) -> dict:
        with self._lock:
            recent = [{"path": p, "findings": self._results[p]} for p in list(self._order)[-20:] if p in self._results]
            return {**self.counts, "pending": self._q.qsize(), "recent": recent}


def attach(app) -> CheckService | None:
    """The daemon plug-in: frame checks on every frame (config `checks:`; `enabled: false` turns
    them off).  Attach after station.hooks (for the `frame_flagged` hook)."""
    enabled, params = checks_from_config(app.cfg.get("checks"))
    if not enabled:
        return None
    svc = CheckService(app.cfg["paths"]["incoming"], params, hooks=app.service("hooks"), publish=app.publish)
    app.register_service(svc)
    app.subscribe(svc.on_app_event)
    return svc
