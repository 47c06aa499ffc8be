"""Settle detector on generated live-view sequences: a strip of frames slid by one frame pitch.

Run with `-rA` (or `-s`) to see the figures: frame changes, missed and double triggers,
triggers while moving.
"""
from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import zoom

from station.settle import LiveViewWatcher, SettleDetector, SettleParams, detect_settles, frame_distance

FPS = 15.0
H, W = 120, 200  # live-view preview size (the detector reduces it to ~64 px anyway)
PIC_W, GAP, REBATE = 160, 14, 12  # picture width, gap between pictures, rebate height (px)
PITCH = PIC_W + GAP


def scene(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A picture: smooth random shapes plus a few hard-edged blocks, in colour."""
    lo = rng.random((6, 9, 3))
    img = zoom(lo, (h / 6, w / 9, 1), order=1)[:h, :w]
    for _ in range(rng.integers(2, 6)):
        y, x = rng.integers(0, h - 10), rng.integers(0, w - 10)
        img[y:y + rng.integers(8, h // 2), x:x + rng.integers(8, w // 2)] = rng.random(3)
    contrast = rng.uniform(0.35, 1.0)  # some flat, foggy pictures
    img = 0.5 + (img - img.mean()) * contrast
    # as a negative looks on the light box: darker than the base, never brighter
    return np.clip(img, 0.03, 0.97) * np.array([0.5, 0.36, 0.25], np.float32)


def film_strip(rng: np.random.Generator, n_pictures: int) -> np.ndarray:
    """The strip as the camera sees it: pictures, gaps (base), rebate with sprocket holes, holder above/below."""
    pad = 8  # black holder rows, room for vertical shake
    sh = H + 2 * pad
    strip = np.zeros((sh, PITCH * n_pictures + W, 3), np.float32)
    base = np.array([0.55, 0.4, 0.28], np.float32)  # orange base, as the live view shows it
    strip[pad:pad + H] = base
    for k in range(n_pictures):
        x = k * PITCH + GAP // 2
        strip[pad + REBATE:pad + H - REBATE, x:x + PIC_W] = scene(rng, H - 2 * REBATE, PIC_W)
    for x in range(4, strip.shape[1] - 8, 16):  # sprocket holes: clear, bright
        strip[pad + 2:pad + REBATE - 2, x:x + 8] = 0.95
        strip[pad + H - REBATE + 2:pad + H - 2, x:x + 8] = 0.95
    return strip


@dataclass
class Sequence:
    frames: list = field(default_factory=list)
    times: list = field(default_factory=list)
    period: list = field(default_factory=list)  # still-period id per preview, -1 while the film moves


def generate(seed: int, changes: int, shake: float = 2.5, flicker: float = 0.12, noise: float = 0.02,
             hands: float = 0.12, still_range=(0.9, 2.2), move_range=(0.35, 1.4), first_still: float = 1.5) -> Sequence:
    """A live-view sequence of `changes` frame advances (with noise, flicker, shake, passing hands)."""
    rng = np.random.default_rng(seed)
    strip = film_strip(rng, changes + 2)
    pad = (strip.shape[0] - H) // 2
    seq = Sequence()
    t = 0.0
    gain = 1.0
    # a bank of noise fields, cropped at random offsets (cheaper than fresh noise per preview)
    bank = rng.standard_normal((8, H + 32, W + 32, 3), dtype=np.float32) * np.float32(noise)

    def emit(pos: float, period: int, hand=None):
        nonlocal t, gain
        # shake: the stand jitters by up to `shake` px each preview
        jx, jy = (rng.uniform(-shake, shake, 2)).round().astype(int)
        x0 = int(round(pos)) + jx + 4
        img = strip[pad + jy:pad + jy + H, x0:x0 + W].copy()
        if hand is not None:  # a hand (dark, soft-edged) over part of the view
            cy, cx, r = hand
            yy, xx = np.mgrid[0:H, 0:W]
            m = np.clip((r - np.hypot(yy - cy, xx - cx)) / 10, 0, 1)[..., None]
            img = img * (1 - m) + 0.08 * m
        # flicker / auto-exposure: a global gain that wobbles and sometimes jumps
        if rng.random() < 0.03:
            gain = float(np.clip(gain * rng.uniform(0.8, 1.25), 0.7, 1.4))
        g = gain * (1 + flicker * np.sin(2 * np.pi * 3.3 * t) + flicker / 2 * rng.standard_normal())
        ny, nx = rng.integers(0, 32, 2)
        img = img * np.float32(g) + bank[rng.integers(0, len(bank)), ny:ny + H, nx:nx + W]
        seq.frames.append(np.clip(img, 0, 1, out=img))
        seq.times.append(t)
        seq.period.append(period)
        t += 1 / FPS

    def still(pos: float, period: int, duration: float):
        n = int(duration * FPS)
        hand_at = rng.integers(n // 2, n) if rng.random() < hands else None
        for i in range(n):
            hand = None
            if hand_at is not None and hand_at <= i < hand_at + int(0.4 * FPS):
                k = i - hand_at
                hand = (H // 2, W - 10 - 12 * k, 45)
            emit(pos, period, hand)

    still(0.0, 0, first_still)
    for k in range(1, changes + 1):
        start, end = (k - 1) * PITCH, k * PITCH
        dur = rng.uniform(*move_range)
        n = max(2, int(dur * FPS))
        for i in range(1, n + 1):
            s = i / n
            pos = start + (end - start) * (3 * s * s - 2 * s * s * s)  # ease in, ease out
            emit(pos, k if round(pos) == end else -1)
        still(end, k, rng.uniform(*still_range))
    return seq


def score(seq: Sequence, triggers: list[int]) -> dict:
    changes = max(seq.period)
    per = np.zeros(changes + 1, int)
    moving = 0
    first = {}
    for i, p in enumerate(seq.period):
        first.setdefault(p, seq.times[i])
    delays = []
    for i in triggers:
        p = seq.period[i]
        if p < 0:
            moving += 1
        else:
            per[p] += 1
            delays.append(seq.times[i] - first[p])
    misses = int(np.sum(per[1:] == 0))
    doubles = int(np.sum(np.maximum(per[1:] - 1, 0)) + per[0])  # period 0: the frame already in place
    return {"changes": changes, "previews": len(seq.frames), "triggers": len(triggers), "misses": misses,
            "doubles": doubles, "while_moving": moving, "miss_rate": misses / max(changes, 1),
            "delay": float(np.median(delays)) if delays else None}


def report(name: str, s: dict) -> None:
    print(f"\n[settle] {name}: {s['changes']} frame changes, {s['previews']} previews, {s['triggers']} triggers; "
          f"missed {s['misses']} ({100 * s['miss_rate']:.1f} %), double {s['doubles']}, "
          f"while moving {s['while_moving']}; median delay after the film stopped "
          f"{s['delay'] if s['delay'] is None else round(s['delay'], 2)} s")


def test_strip_with_noise_flicker_shake_and_hands():
    seq = generate(seed=1, changes=120)
    s = score(seq, detect_settles(seq.frames, seq.times))
    report("120 advances, noise+flicker+shake+hands", s)
    assert s["changes"] >= 100
    assert s["doubles"] == 0
    assert s["while_moving"] == 0
    assert s["miss_rate"] <= 0.01


def test_short_stills_and_fast_moves():
    # The operator is quick: barely longer still than `still_s`, fast slides.
    seq = generate(seed=2, changes=60, still_range=(0.7, 1.0), move_range=(0.25, 0.6), hands=0.0)
    s = score(seq, detect_settles(seq.frames, seq.times))
    report("60 quick advances", s)
    assert s["doubles"] == 0 and s["while_moving"] == 0
    assert s["misses"] <= 1


def test_heavy_shake_and_flicker_on_a_still_frame_never_fire():
    seq = generate(seed=3, changes=0, shake=3.0, flicker=0.25, noise=0.04, hands=1.0, first_still=20.0)
    # stretch the one still period: 20 s of a frame in place, shaken, flickering, a hand passing
    frames, times = seq.frames, seq.times
    assert len(frames) > 200
    assert detect_settles(frames, times) == []


def test_moved_by_a_fraction_then_back_does_not_fire():
    # Someone nudges the carrier a little and it springs back: below a frame change.
    rng = np.random.default_rng(4)
    strip = film_strip(rng, 3)
    pad = (strip.shape[0] - H) // 2
    frames, times = [], []
    xs = [0] * 20 + [2, 4, 6, 4, 2] + [0] * 20
    for i, x in enumerate(xs):
        frames.append(strip[pad:pad + H, 4 + x:4 + x + W] + rng.normal(0, 0.02, (H, W, 3)))
        times.append(i / FPS)
    assert detect_settles(frames, times) == []


def test_distance_ignores_gain_and_small_shifts_but_not_a_new_frame():
    rng = np.random.default_rng(5)
    strip = film_strip(rng, 3)
    pad = (strip.shape[0] - H) // 2
    a = strip[pad:pad + H, 4:4 + W]
    shaken = strip[pad + 2:pad + 2 + H, 7:7 + W] * 1.4 + 0.05
    nxt = strip[pad:pad + H, 4 + PITCH:4 + PITCH + W]
    p = SettleParams()
    assert frame_distance(a, shaken) < p.still_thr
    assert frame_distance(a, nxt) > p.change_thr


def test_first_frame_and_empty_holder():
    rng = np.random.default_rng(6)
    strip = film_strip(rng, 3)
    pad = (strip.shape[0] - H) // 2
    pic = strip[pad:pad + H, 4:4 + W]
    empty = np.full((H, W, 3), 0.9, np.float32)
    t = np.arange(40) / FPS
    still_pic = [pic + rng.normal(0, 0.01, pic.shape) for _ in t]
    assert detect_settles(still_pic, t) == []  # the frame in place: not ours to shoot
    assert detect_settles(still_pic, t, SettleParams(trigger_first=True)) == [int(np.ceil(0.5 * FPS))]
    # empty holder, then a strip pushed in: one trigger, on the strip
    seq = [empty + rng.normal(0, 0.01, empty.shape) for _ in range(20)] + still_pic
    trig = detect_settles(seq, np.arange(len(seq)) / FPS)
    assert len(trig) <= 1 and all(i >= 20 for i in trig)
    det = SettleDetector()
    fired = [det.update(f, i / FPS) for i, f in enumerate(still_pic + [empty] * 20 + still_pic)]
    assert sum(fired) == 0  # pulled out and the same frame put back: no new frame
    assert det.state == "settled"


def test_live_view_watcher_fires_once_per_settled_frame():
    seq = generate(seed=7, changes=8, hands=0.0)
    clock = {"t": 0.0}
    frames = iter(enumerate(seq.frames))
    fired = []
    errors = {"n": 0}

    class Done(Exception):
        pass

    def grab():
        try:
            i, img = next(frames)
        except StopIteration:
            watcher._stop.set()
            raise Done("end of sequence")
        clock["t"] = seq.times[i]
        grab.index = i
        if i == 30:  # the camera is busy once: the watcher backs off and carries on
            errors["n"] += 1
            raise RuntimeError("busy (-110)")
        return img

    def on_settled():
        fired.append(grab.index)
        f = Future()
        f.set_result(["x.dng"])
        return f

    watcher = LiveViewWatcher(grab, on_settled, interval=0.0, clock=lambda: clock["t"])
    watcher.start()
    watcher._thread.join(60)
    assert not watcher.running
    s = score(seq, fired)
    report("live-view watcher, 8 advances", s)
    assert s["misses"] == 0 and s["doubles"] == 0 and s["while_moving"] == 0
    assert watcher.stats["triggers"] == 8 and watcher.stats["errors"] >= 1


def test_jpeg_previews_as_the_camera_sends_them():
    import io

    from PIL import Image

    from station.settle import decode_preview

    seq = generate(seed=8, changes=30)

    def jpeg(img):
        buf = io.BytesIO()
        Image.fromarray((img * 255).astype(np.uint8)).save(buf, "JPEG", quality=70)
        return buf.getvalue()

    frames = [decode_preview(jpeg(f)) for f in seq.frames]
    assert frames[0].dtype == np.uint8 and frames[0].shape == (H, W, 3)
    s = score(seq, detect_settles(frames, seq.times))
    report("30 advances as JPEG previews (quality 70)", s)
    assert s["misses"] == 0 and s["doubles"] == 0 and s["while_moving"] == 0


def test_slow_live_view_never_fires_while_moving():
    """A loaded machine: ~2 previews/s, fewer than still_s wants.  Each settled frame is still
    captured (the still window reaches back to min_frames frames; before, it never filled and
    nothing fired: 25 of 25 missed), none while the film moves, none double."""
    for seed in (31, 32, 33):
        seq = generate(seed, 25, still_range=(1.2, 2.5), move_range=(0.4, 0.9))
        keep = list(range(0, len(seq.frames), 7))  # 15/7 ≈ 2.1 previews per second
        sub = Sequence([seq.frames[i] for i in keep], [seq.times[i] for i in keep], [seq.period[i] for i in keep])
        s = score(sub, detect_settles(sub.frames, sub.times))
        report("slow live view (2 previews/s)", s)
        assert s["while_moving"] == 0 and s["doubles"] == 0 and s["misses"] <= 2
