"""The live view -> linear mapping of the live positive (station.capture.live): `ToneMap`, learnt
from (live-view frame, captured RAW) pairs, `frame_level` (a live-view frame's exposure, read
on its film base), and the decoders both sides of a pair go through.

A live-view JPEG carries the camera's white balance, tone curve and picture style.  `ToneMap`
maps each channel's 8-bit code to linear camera RGB with a 256-entry table per channel.
Before the first pair the table is the inverse sRGB curve (the documented default; scale 1).
Every captured RAW and the live-view frame just before it are a pair: both are reduced to
8x8-px blocks, flat blocks (small spread in the live view) give (code, linear) samples.

**The live view's exposure is not the RAW's.**  A live view wobbles in level from frame to
frame (mains flicker of the light, the camera's exposure simulation): on the emulator's strip
by up to +-10 %.  Learnt as if it were not, each pair's level is baked into the table (its
shape off by 0.075 in ln on four pairs at +-10 %, tests/test_live_tone.py), and a frame shown
at another level than its RAW's is 3-5 ΔE00 off even with a perfect table.  So:

* learning fits the table *and* each pair's level together: `_fit` alternates the per-channel
  table (per 4-code bin, the median over the pairs of level x linear, made monotone; see
  `_table` for the ends) and each pair's level (the median ratio table(code) / linear over its
  bins), the levels' geometric mean held at 1;
* each frame is read at its own level: `frame_level` measures the film base in the frame's
  border band (the rebate and the gaps between pictures, the least dense thing on film, the
  same in every frame of a roll) against the base the conversion uses, and the live positive
  scales that base by it, as `base.reconcile` does for a RAW whose scan exposure changed.

A pair that disagrees with the others (a live-view frame of another position of the strip, a
misread RAW) is left out: once `CHECK_AFTER` pairs are learnt, a new pair whose samples depart
from the table by more than `PAIR_REJECT` (median |ln| after its own level) is rejected and
counted; `RESTART_AFTER` rejected in a row that agree with each other mean the camera's
rendering changed (another picture style), and the table starts again from them.  Clipped light
(a block at 245 or more in every channel: JPEG pulls a camera's clipped 255 down a little) is
learnt as code 255, and above the codes the pairs saw the table goes on with its own log slope
(the camera's highlight curve), not the default's shape.  The last `MAX_PAIRS` (24) pairs are
kept, each as a binned summary the fit runs on.  `_raw_linear` runs in a worker process
(untrusted files are parsed there).
"""
from __future__ import annotations

import io
from collections import deque

import numpy as np

MAX_PAIRS = 24
BLOCK = 8
BIN = 4  # codes per bin of the table's fit


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def default_table() -> np.ndarray:
    """3 x 256: the inverse sRGB curve per channel (before the first pair)."""
    return np.repeat(srgb_to_linear(np.arange(256) / 255.0)[None], 3, axis=0)


def _blocks(img: np.ndarray, k: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    h, w = (img.shape[0] // k) * k, (img.shape[1] // k) * k
    b = img[:h, :w].reshape(h // k, k, w // k, k, 3).astype(np.float32)
    return b.mean(axis=(1, 3)), b.std(axis=(1, 3))


FIT_ROUNDS = 60  # at most this many table <-> per-pair level alternations (~1 ms each)
RELAX = 1.5  # each round moves the levels 1.5 x the way the round's fit says: pairs whose pictures
# use different codes share little of the table to pull them into line, and plain alternation creeps
CHECK_AFTER = 2  # pairs learnt before a new pair is checked against them
PAIR_REJECT = 0.05  # median |ln(table(code) / (level x linear))| above which a pair is left out
# (the emulator's strip: 0.009-0.015 for a pair of one moment; 0.06-0.63 for a live-view frame of
# the next picture or of the strip mid-slide; a shift by 13 px, 0.010-0.017)
REJECT_FACTOR = 3.0  # ... or more than 3 x what the accepted pairs departed (see reject_limit)
RESTART_AFTER = 3  # this many pairs rejected in a row agree with each other, not with the table:
# the camera's rendering changed (another picture style, white balance); learn again from them
CLIPPED_LIGHT = 245  # a block at or above this code in every channel is clipped light
TOP_SPAN = 16  # codes: the table's top is carried on with its log slope over this many codes
LEVEL_STEP = 4  # frame_level reads every 4th pixel of the live view
LEVEL_BORDER = 0.12  # the border band (fraction of each side) where the rebate is
LEVEL_SPAN = 0.2  # log10: levels farther than this from the base are not looked for
LEVEL_NEUTRAL = 0.05  # log10: a film-base pixel differs from the base by the same factor in R, G, B
LEVEL_MIN = 100  # film-base pixels needed to read the level
LEVEL_SHARE = 0.1  # ... and at least this share of the border band (the strip: ~half of it)


def _weighted_medians(groups: np.ndarray, vals: np.ndarray, weights: np.ndarray):
    """Per group (ascending): (group, the weighted median of its values, its total weight)."""
    o = np.lexsort((vals, groups))
    g, v, w = groups[o], vals[o], weights[o].astype(np.float64)
    uniq, start, count = np.unique(g, return_index=True, return_counts=True)
    cw = np.cumsum(w)
    before = np.where(start > 0, cw[np.maximum(start - 1, 0)], 0.0)
    total = cw[start + count - 1] - before
    idx = np.minimum(np.searchsorted(cw, before + total / 2), start + count - 1)
    return uniq, v[idx], total


def _summary(sample) -> list:
    """A pair's samples per channel, binned by code (BIN codes a bin): (bin code medians, bin
    linear medians, counts) of the unclipped ones, and (linear median, count) of the clipped."""
    out = []
    for code, lin in sample:
        clipped = code >= 254.5
        u = ~clipped
        bins, med_lin, n = _weighted_medians((code[u] // BIN).astype(int), lin[u], np.ones(int(u.sum())))
        _, med_code, _ = _weighted_medians((code[u] // BIN).astype(int), code[u], np.ones(int(u.sum())))
        keep = n >= 3  # a bin of one or two blocks is an edge as often as a flat picture
        out.append((med_code[keep], med_lin[keep], n[keep], float(np.median(lin[clipped])) if clipped.any() else 0.0,
                    int(clipped.sum())))
    return out


class ToneMap:
    """Live-view code -> linear camera RGB, learned from (live view, RAW) pairs."""

    def __init__(self):
        self.table = default_table()
        self.pairs = 0
        self.rejected = 0
        self._samples: deque = deque(maxlen=MAX_PAIRS)
        self.levels = np.ones(0)  # per kept pair: its live view's level against the table (1 = the table's)
        self.last: dict | None = None  # the last pair: blocks, level, residual, accepted
        self._odd: deque = deque(maxlen=RESTART_AFTER)  # the pairs rejected in a row
        self._sums: deque = deque(maxlen=MAX_PAIRS)  # the kept pairs' binned summaries (_summary)
        self._resids: deque = deque(maxlen=MAX_PAIRS)  # how far each accepted pair departed from the table

    def to_linear(self, img: np.ndarray) -> np.ndarray:
        out = np.empty(img.shape, np.float32)
        for c in range(3):
            np.take(self.table[c], img[..., c], out=out[..., c])
        return out

    def learn(self, lv: np.ndarray, raw_lin: np.ndarray) -> int:
        """One pair: live-view frame (HxWx3 uint8) and the RAW's linear RGB at the same size
        and framing.  Returns the flat blocks used (0: nothing learnt, see `last`)."""
        from station.pipeline.fastdecode import area_resize

        code, spread = _blocks(lv)  # the same field of view on both: reduce both to the blocks' grid
        lin = area_resize(np.ascontiguousarray(raw_lin, np.float32), (code.shape[1], code.shape[0]))
        # light the camera clipped (white in every channel: a sprocket hole) comes out of the JPEG
        # at 245-255; it is the clipped code's, not a bright film's
        code[code.min(axis=2) >= CLIPPED_LIGHT] = 255.0
        # per channel, the flat blocks; clipped ones (255) included: what a clipped live-view
        # pixel is on this roll (the sprocket holes, mostly) is learnt like any other code
        flat = (spread < 4.0) & (code > 1)
        if (flat & (code < 254.5)).sum(axis=(0, 1)).min() < 20:
            self.last = {"blocks": 0, "accepted": False, "reason": "too little unclipped, flat picture"}
            return 0
        sample = [(code[..., c][flat[..., c]], lin[..., c][flat[..., c]]) for c in range(3)]
        n = int(flat.all(axis=2).sum())
        if self.pairs >= CHECK_AFTER:
            level, resid = _pair_fit(self.table, sample)
            self.last = {"blocks": n, "level": round(level, 4), "residual": round(resid, 4), "accepted": True}
            limit = self.reject_limit()
            if resid > limit:  # not the picture the table was learnt on: another position, a bad RAW
                self._odd.append(sample)
                self.last.update(accepted=False, reason=f"departs from the table by {resid:.3f} (ln), > {limit:.3f}")
                if len(self._odd) < RESTART_AFTER or not _consistent(list(self._odd), limit):
                    self.rejected += 1
                    return 0
                self._samples.clear()  # the table is the odd one now: start again from these pairs
                self._sums.clear()
                self._resids.clear()
                for odd in list(self._odd)[:-1]:
                    self._keep(odd)
                self.last.update(accepted=True, reason="restarted from the last pairs (the camera's rendering changed)")
            else:
                self._resids.append(resid)
        else:
            self.last = {"blocks": n, "accepted": True}
        self._odd.clear()
        self._keep(sample)
        self.pairs += 1
        self._fit()
        return n

    def reject_limit(self) -> float:
        """How far a new pair may depart from the table: PAIR_REJECT, or REJECT_FACTOR x the
        pairs accepted so far departed (median), whichever is larger -- a camera whose live view
        mixes its channels (a colour matrix the per-channel table cannot follow) departs a little
        on every pair, and those are pairs to learn from, not to leave out."""
        if not self._resids:
            return PAIR_REJECT
        return max(PAIR_REJECT, REJECT_FACTOR * float(np.median(self._resids)))

    def fit_only(self, samples: list) -> "ToneMap":
        """This (new) table fitted to these pairs' samples alone; returns self."""
        for sample in samples:
            self._keep(sample)
        self._fit()
        return self

    def _keep(self, sample) -> None:
        self._samples.append(sample)
        self._sums.append(_summary(sample))

    def _fit(self) -> None:
        """Table and levels together, on the pairs' binned summaries (a few hundred numbers a
        pair: a refit of 24 pairs takes milliseconds, off the live positive's thread)."""
        sums = list(self._sums)
        levels = np.ones(len(sums))
        table = self.table
        for _ in range(FIT_ROUNDS):
            table = self._table(sums, levels)
            if len(sums) < 2:
                break
            got = np.array([_summary_level(table, sm) for sm in sums])
            got = levels * (got / levels) ** RELAX  # over-relaxed: the alternation creeps otherwise
            got /= np.exp(np.median(np.log(got)))  # the levels' (geometric) middle is the table's scale
            done = np.max(np.abs(np.log(got / levels))) < 2e-4
            levels = got
            if done:
                break
        self.table, self.levels = table, levels

    def _table(self, sums: list, levels: np.ndarray) -> np.ndarray:
        """The per-channel tables from the pairs' summaries, each pair's linear values x its level.

        Between the samples: per bin, the median over the pairs (weighted by their samples),
        interpolated.  Below them: the default's shape, scaled to meet the fit.  Above them: the
        fit's own log slope over its top TOP_SPAN codes carried on (the camera's highlight curve,
        which the default's shape is not: a frame a little brighter than the pairs, its film
        base above the codes they saw, would read wrong).  Code 255 (clipped): what the clipped
        samples were (the sprocket holes' light), if any."""
        default = default_table()[0]
        table = np.empty((3, 256), np.float32)
        grid = np.arange(256, dtype=np.float32)
        for c in range(3):
            codes = np.concatenate([sm[c][0] for sm in sums])
            lins = np.concatenate([sm[c][1] * g for sm, g in zip(sums, levels)])
            n = np.concatenate([sm[c][2] for sm in sums])
            bins = (codes // BIN).astype(int)
            uniq, ys, total = _weighted_medians(bins, lins, n)
            xs = np.bincount(bins, weights=codes * n)[uniq] / np.bincount(bins, weights=n)[uniq]
            keep = total >= 3
            xs, ys = xs[keep], ys[keep]
            if len(xs) < 2:
                table[c] = self.table[c]
                continue
            ys = np.maximum.accumulate(np.maximum(ys, 1e-6))
            t = np.interp(grid, xs, ys)
            lo, hi = int(np.ceil(xs[0])), int(np.floor(xs[-1]))
            t[:lo] = default[:lo] * (ys[0] / max(default[lo], 1e-6))
            if hi < 255:
                top = xs >= xs[-1] - TOP_SPAN
                slope = 0.0
                if top.sum() >= 2 and xs[-1] - xs[top][0] >= 4:
                    slope = max(0.0, float(np.polyfit(xs[top], np.log(ys[top]), 1)[0]))
                t[hi + 1:] = ys[-1] * np.exp(slope * (grid[hi + 1:] - xs[-1]))
            clip_n = np.array([sm[c][4] for sm in sums], np.float64)
            if clip_n.sum() >= 3:
                clip_v = np.array([sm[c][3] * g for sm, g in zip(sums, levels)])
                t[255] = max(t[254], float(_weighted_medians(np.zeros(len(sums), int), clip_v, np.maximum(clip_n, 1e-9))[1][0]))
            table[c] = np.maximum.accumulate(t)
        return table

    def snapshot(self) -> dict:
        return {"pairs": self.pairs, "rejected": self.rejected,
                "source": "learned" if self.pairs else "default (inverse sRGB)"}


def _summary_level(table: np.ndarray, summary: list) -> float:
    """A pair's level against a table, from its summary: the weighted median of table(code) /
    linear over its bins, all channels."""
    grid = np.arange(256, dtype=np.float32)
    r = np.concatenate([np.log(np.maximum(np.interp(sm[0], grid, table[c]), 1e-6)) - np.log(np.maximum(sm[1], 1e-6))
                        for c, sm in enumerate(summary)])
    w = np.concatenate([sm[2] for sm in summary])
    if not len(r):
        return 1.0
    return float(np.exp(_weighted_medians(np.zeros(len(r), int), r, w)[1][0]))


def _pair_fit(table: np.ndarray, sample) -> tuple[float, float]:
    """A pair against a table: (its level: the median of table(code) / linear over its unclipped
    samples, all channels; the median |ln| left after that level)."""
    grid = np.arange(256, dtype=np.float32)
    r = []
    for c in range(3):
        code, lin = sample[c]
        ok = (code < 254.5) & (lin > 1e-4)
        r.append(np.log(np.maximum(np.interp(code[ok], grid, table[c]), 1e-6)) - np.log(lin[ok]))
    r = np.concatenate(r)
    if not len(r):
        return 1.0, 0.0
    m = float(np.median(r))
    return float(np.exp(m)), float(np.median(np.abs(r - m)))


def _consistent(samples: list, limit: float = PAIR_REJECT) -> bool:
    """Do these pairs agree with each other (the first against a table fitted to the others)?"""
    return _pair_fit(ToneMap().fit_only(samples[1:]).table, samples[0])[1] <= limit


def frame_level(lv: np.ndarray, table: np.ndarray, base) -> float | None:
    """log10 of a live-view frame's level against `base` (linear RGB, the table's scale), read
    on its film base: the pixels of its border band that differ from the base by one factor in
    R, G and B (within LEVEL_NEUTRAL; the picture's dyes and bare light through a sprocket hole
    do not) and by at most LEVEL_SPAN; the mode of their factors, refined by the median around
    it.  None when fewer than LEVEL_MIN such pixels, or than LEVEL_SHARE of the band (no rebate
    in view: a picture's thinnest shadows are near-neutral too, and would read as the base)."""
    s = lv[::LEVEL_STEP, ::LEVEL_STEP]
    h, w = s.shape[:2]
    by, bx = max(1, int(h * LEVEL_BORDER)), max(1, int(w * LEVEL_BORDER))
    px = np.concatenate([s[:by].reshape(-1, 3), s[h - by:].reshape(-1, 3),
                         s[by:h - by, :bx].reshape(-1, 3), s[by:h - by, w - bx:].reshape(-1, 3)])
    px = px[np.all((px > 2) & (px < 253), axis=1)]
    if len(px) < LEVEL_MIN:
        return None
    d = np.stack([np.log10(np.maximum(table[c][px[:, c]], 1e-6)) for c in range(3)], axis=1)
    d -= np.log10(np.maximum(np.asarray(base, np.float32), 1e-6))
    m = d.mean(axis=1)
    m = m[(np.ptp(d, axis=1) < LEVEL_NEUTRAL) & (np.abs(m) < LEVEL_SPAN)]
    if len(m) < max(LEVEL_MIN, LEVEL_SHARE * len(d)):
        return None
    hist, edges = np.histogram(m, bins=np.arange(-LEVEL_SPAN, LEVEL_SPAN + 1e-6, 0.005))
    mode = edges[int(np.argmax(hist))] + 0.0025
    return float(np.median(m[np.abs(m - mode) < 0.02]))


def decode_jpeg(data: bytes, long_side: int | None = None) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        if long_side:
            im.draft("RGB", (long_side, long_side))
        return np.asarray(im.convert("RGB"))


def _raw_linear(path: str, size: tuple[int, int]) -> np.ndarray:
    """Worker process: a RAW's linear RGB, binned down towards size (w, h) (never up)."""
    from station.pipeline.fastdecode import decode_fast

    return decode_fast(path, long_side=max(size)).rgb
