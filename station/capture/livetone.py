"""The live view -> linear mapping of the live positive (station.capture.live): `ToneMap`, learnt
from (live-view frame, captured RAW) pairs, and the decoders both sides of a pair go through.

A live-view JPEG carries the camera's white balance, tone curve and picture style.  `ToneMap`
maps each channel's 8-bit code to linear camera RGB with a 256-entry table per channel.
Before the first pair the table is the inverse sRGB curve (the documented default; scale 1).
Every captured RAW and the live-view frame just before it are a pair: both are reduced to
8x8-px blocks, flat blocks (small spread in the live view) give (code, linear) samples, each
channel's samples are binned by code and their medians, made monotone, become the table (ends
extended along the default's shape).  The samples of the last `MAX_PAIRS` (24) pairs are kept,
so flicker and shake average out and the table covers the codes of more pictures (with 6, a
frame of an unusual colour met the table's extrapolated ends: in `station demo --live` median
ΔE00 ~5 after three pairs, outliers to 24; with 24, 3.6).  `_raw_linear` runs in a worker
process (untrusted files are parsed there).
"""
from __future__ import annotations

import io
from collections import deque

import numpy as np

MAX_PAIRS = 24
BLOCK = 8


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


class ToneMap:
    """Live-view code -> linear camera RGB, learned from (live view, RAW) pairs."""

    def __init__(self):
        self.table = default_table()
        self.pairs = 0
        self._samples: deque = deque(maxlen=MAX_PAIRS)

    def to_linear(self, img: np.ndarray) -> np.ndarray:
        out = np.empty(img.shape, np.float32)
        for c in range(3):
            np.take(self.table[c], img[..., c], out=out[..., c])
        return out

    def learn(self, lv: np.ndarray, raw_lin: np.ndarray) -> int:
        """One pair: live-view frame (HxWx3 uint8) and the RAW's linear RGB at the same size
        and framing.  Returns the flat blocks used."""
        from station.pipeline.fastdecode import area_resize

        code, spread = _blocks(lv)  # the same field of view on both: reduce both to the blocks' grid
        lin = area_resize(np.ascontiguousarray(raw_lin, np.float32), (code.shape[1], code.shape[0]))
        # per channel, the flat blocks; clipped ones (255) included: what a clipped live-view
        # pixel is on this roll (the sprocket holes, mostly) is learnt like any other code
        flat = (spread < 4.0) & (code > 1)
        if (flat & (code < 254.5)).sum(axis=(0, 1)).min() < 20:
            return 0  # too little unclipped, flat picture to learn from
        self._samples.append([(code[..., c][flat[..., c]], lin[..., c][flat[..., c]]) for c in range(3)])
        self.pairs += 1
        self._fit()
        return int(flat.all(axis=2).sum())

    def _fit(self) -> None:
        default = default_table()[0]
        table = np.empty((3, 256), np.float32)
        grid = np.arange(256, dtype=np.float32)
        for c in range(3):
            codes = np.concatenate([s[c][0] for s in self._samples])
            lins = np.concatenate([s[c][1] for s in self._samples])
            bins = np.clip(codes // 4, 0, 63).astype(int)
            bins[codes >= 254.5] = 64  # clipped: a bin of its own
            xs, ys = [], []
            for b in np.unique(bins):
                m = bins == b
                if m.sum() >= 3:
                    xs.append(255.0 if b == 64 else float(np.median(codes[m])))
                    ys.append(float(np.median(lins[m])))
            if len(xs) < 2:
                table[c] = self.table[c]
                continue
            xs, ys = np.array(xs), np.maximum.accumulate(np.maximum(np.array(ys), 1e-6))
            t = np.interp(grid, xs, ys)
            lo, hi = int(np.ceil(xs[0])), int(np.floor(xs[-1]))
            # beyond the samples: the default's shape, scaled to meet the fit
            t[:lo] = default[:lo] * (ys[0] / max(default[lo], 1e-6))
            if hi < 255:
                t[hi + 1:] = default[hi + 1:] * (ys[-1] / max(default[hi], 1e-6))
            table[c] = np.maximum.accumulate(t)
        self.table = table

    def snapshot(self) -> dict:
        return {"pairs": self.pairs, "source": "learned" if self.pairs else "default (inverse sRGB)"}


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
