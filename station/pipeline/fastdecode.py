"""Fast RAW decode for previews: bin the Bayer mosaic instead of demosaicking.

LibRaw's `half_size` output is, per 2x2 Bayer block, (R, mean(G1, G2), B)
scaled from [black, white] to [0, 65535].  The same numbers come straight from
`raw_image_visible` (LibRaw's unpacked sensor data, no processing) with one
pass here: subtract each site's black level, average the two greens, scale by
1/(white - black).  With `factor` k > 1 a (2k)x(2k) block is averaged per
output pixel (1/(2k) of the size per side), for a preview that is then resized
to its final long side in *linear* light, before inversion (cheaper and the
physically right place to average light).

Reading: an uncompressed 16-bit Bayer DNG (what station.io.dng writes, and
many converters) is memory-mapped straight from the file, skipping LibRaw's
unpack (~0.1-0.2 s of a 24 MP preview's budget); everything else is read by
LibRaw (`raw_image_visible`).  Both give the same mosaic (tested).

The binning kernel is numba-compiled (parallel over rows, releases the GIL)
when numba is available, else numpy strided sums.  Sensors that are not 2x2
Bayer (X-Trans, Foveon, linear DNG) fall back to LibRaw's half-size decode.

Output: `station.pipeline.readers.Decoded` (float32 HxWx3 linear camera RGB,
1.0 = sensor white, no white balance), like `decode()`.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from station.errors import DecodeError
from station.pipeline.readers import Decoded, check_file, decode_raw, open_raw, raw_meta, read_image, sniff, validated

try:
    import numba as _nb
except Exception:  # pragma: no cover
    _nb = None
HAVE_NUMBA = _nb is not None and os.environ.get("STATION_NO_NUMBA", "") in ("", "0")
CLIPPED = 65000.0 / 65535.0  # as readers.decode_raw: a channel at or above this is clipped


@dataclass
class Bayer:
    cfa: np.ndarray  # HxW uint16 sensor data (visible area), H and W even
    chan: np.ndarray  # (2, 2) int: RGB channel (0, 1, 2) of each site of the 2x2 tile
    black: np.ndarray  # (2, 2) float32 black level of each site
    white: float
    meta: dict
    reader: str = "libraw"  # or "dng-direct" (uncompressed DNG mapped from the file)


if _nb is not None:

    @_nb.njit(parallel=True, cache=True, nogil=True, fastmath=True)
    def _bin_nb(cfa, k, chan, black, inv, out):  # pragma: no cover - compiled
        ho, wo = out.shape[0], out.shape[1]
        c00, c01, c10, c11 = chan[0, 0], chan[0, 1], chan[1, 0], chan[1, 1]
        b00, b01, b10, b11 = black[0, 0], black[0, 1], black[1, 0], black[1, 1]
        kk = k * k
        for y in _nb.prange(ho):
            acc = np.zeros((wo, 3), np.float32)
            for j in range(k):
                r0 = cfa[2 * (k * y + j)]
                r1 = cfa[2 * (k * y + j) + 1]
                for x in range(wo):
                    for i in range(k):
                        q = 2 * (k * x + i)
                        acc[x, c00] += r0[q]
                        acc[x, c01] += r0[q + 1]
                        acc[x, c10] += r1[q]
                        acc[x, c11] += r1[q + 1]
            for x in range(wo):
                acc[x, c00] -= b00 * kk
                acc[x, c01] -= b01 * kk
                acc[x, c10] -= b10 * kk
                acc[x, c11] -= b11 * kk
                for c in range(3):
                    v = acc[x, c] * inv[c]
                    out[y, x, c] = v if v > 0.0 else 0.0

    @_nb.njit(parallel=True, cache=True, nogil=True, fastmath=True)
    def _resize_rows_nb(src, idx, w, out):  # pragma: no cover - compiled
        """out[y, x] = sum_j w[x, j] * src[y, idx[x, j]] (a 1-D filter along axis 1)."""
        for y in _nb.prange(src.shape[0]):
            for x in range(out.shape[1]):
                a0 = 0.0
                a1 = 0.0
                a2 = 0.0
                for j in range(idx.shape[1]):
                    q = idx[x, j]
                    wj = w[x, j]
                    a0 += wj * src[y, q, 0]
                    a1 += wj * src[y, q, 1]
                    a2 += wj * src[y, q, 2]
                out[y, x, 0] = a0
                out[y, x, 1] = a1
                out[y, x, 2] = a2


if _nb is not None:

    @_nb.njit(parallel=True, cache=True, nogil=True, fastmath=True)
    def _resize_vert_nb(src, idx, w, out):  # pragma: no cover - compiled
        """out[y] = sum_j w[y, j] * src[idx[y, j]] on rows flattened to (H, W*3)."""
        n = out.shape[1]
        for y in _nb.prange(out.shape[0]):
            o = out[y]
            for x in range(n):
                o[x] = 0.0
            for j in range(idx.shape[1]):
                wj = w[y, j]
                if wj == 0.0:
                    continue
                r = src[idx[y, j]]
                for x in range(n):
                    o[x] += wj * r[x]


if _nb is not None:

    @_nb.njit(parallel=True, cache=True, nogil=True, fastmath=True)
    def _bin_vert_nb(cfa, k, chan, black, inv, iy, wy, out):  # pragma: no cover - compiled
        """Bin 2k x 2k Bayer blocks and area-resize vertically in one pass (no binned copy).

        out[y, x] = sum_j wy[y, j] * binned[iy[y, j], x], binned as in _bin_nb."""
        wo = out.shape[1]
        c00, c01, c10, c11 = chan[0, 0], chan[0, 1], chan[1, 0], chan[1, 1]
        kk = k * k
        bsum = np.zeros(3, np.float32)
        bsum[c00] += black[0, 0] * kk
        bsum[c01] += black[0, 1] * kk
        bsum[c10] += black[1, 0] * kk
        bsum[c11] += black[1, 1] * kk
        for y in _nb.prange(out.shape[0]):
            a = np.zeros((4, wo), np.float32)  # one accumulator per Bayer site: contiguous, vectorisable
            wsum = 0.0
            for t in range(iy.shape[1]):
                wt = wy[y, t]
                if wt == 0.0:
                    continue
                wsum += wt
                r = iy[y, t]
                for j in range(k):
                    r0 = cfa[2 * (k * r + j)]
                    r1 = cfa[2 * (k * r + j) + 1]
                    if k == 1:
                        for x in range(wo):
                            a[0, x] += wt * r0[2 * x]
                            a[1, x] += wt * r0[2 * x + 1]
                            a[2, x] += wt * r1[2 * x]
                            a[3, x] += wt * r1[2 * x + 1]
                    else:
                        for x in range(wo):
                            for i in range(k):
                                q = 2 * (k * x + i)
                                a[0, x] += wt * r0[q]
                                a[1, x] += wt * r0[q + 1]
                                a[2, x] += wt * r1[q]
                                a[3, x] += wt * r1[q + 1]
            for x in range(wo):
                v = np.zeros(3, np.float32)
                v[c00] += a[0, x]
                v[c01] += a[1, x]
                v[c10] += a[2, x]
                v[c11] += a[3, x]
                for c in range(3):
                    q = (v[c] - wsum * bsum[c]) * inv[c]
                    out[y, x, c] = q if q > 0.0 else 0.0


def _area_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Box (area-average) weights from n_in samples to n_out: (idx, w), each (n_out, taps)."""
    s = n_in / n_out
    taps = int(np.ceil(s)) + 1
    lo = np.arange(n_out) * s
    hi = lo + s
    first = np.floor(lo).astype(np.int64)
    idx = first[:, None] + np.arange(taps)[None, :]
    left = np.maximum(idx, lo[:, None])
    right = np.minimum(idx + 1, hi[:, None])
    w = np.clip(right - left, 0.0, None) / s
    idx = np.minimum(idx, n_in - 1)
    return idx, w.astype(np.float32)


def area_resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-average resize of HxWx3 float32 to (width, height); numba when available."""
    h, w = rgb.shape[:2]
    wo, ho = size
    if not HAVE_NUMBA:
        from PIL import Image

        out = np.empty((ho, wo, 3), np.float32)
        for c in range(3):
            out[..., c] = np.asarray(Image.fromarray(np.ascontiguousarray(rgb[..., c]), "F").resize(size, Image.BOX))
        return out
    ix, wx = _area_weights(w, wo)
    iy, wy = _area_weights(h, ho)
    tmp = np.empty((ho, w * 3), np.float32)  # vertical first: contiguous rows, fewer of them after
    _resize_vert_nb(np.ascontiguousarray(rgb, np.float32).reshape(h, w * 3), iy, wy, tmp)
    out = np.empty((ho, wo, 3), np.float32)
    _resize_rows_nb(tmp.reshape(ho, w, 3), ix, wx, out)
    return out


def _bin_np(cfa, k, chan, black, inv, out):
    ho, wo = out.shape[:2]
    out[:] = 0.0
    for sy in (0, 1):
        for sx in (0, 1):
            plane = cfa[sy: 2 * k * ho: 2, sx: 2 * k * wo: 2]
            s = plane.reshape(ho, k, wo, k).sum(axis=(1, 3), dtype=np.float32) if k > 1 else plane.astype(np.float32)
            s -= black[sy, sx] * k * k
            out[..., chan[sy, sx]] += s
    out *= inv
    np.maximum(out, 0.0, out=out)


def _direct_dng(path: Path) -> Bayer | None:
    """An uncompressed 16-bit 2x2-Bayer DNG mapped straight from the file (no LibRaw unpack).

    Only the plain case is taken (what station.io.dng writes and many converters
    produce): DNG, CFA photometric, no compression, 16 bits, one sample, no
    ActiveArea margin, no linearisation table, scalar or 2x2 black levels.
    Anything else returns None and LibRaw reads it."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            tags0 = tf.pages[0].tags
            if 50706 not in tags0:  # DNGVersion
                return None
            pages = [tf.pages[0]] + [p for p in (tf.pages[0].pages or [])] if hasattr(tf.pages[0], "pages") else [tf.pages[0]]
            page = next((p for p in pages if p.photometric == 32803 and not (p.subfiletype & 1)), None)
            if page is None or page.compression != 1 or page.bitspersample != 16 or page.samplesperpixel != 1:
                return None
            t = page.tags
            if 50712 in t:  # LinearizationTable
                return None
            h, w = page.shape[:2]
            if 50829 in t and tuple(int(v) for v in t[50829].value) != (0, 0, h, w):  # ActiveArea
                return None
            dim = tuple(t[33421].value) if 33421 in t else None
            cfa_pat = tuple(t[33422].value) if 33422 in t else None
            if dim != (2, 2) or cfa_pat is None or sorted(cfa_pat) != [0, 1, 1, 2]:
                return None
            bl = t[50714].value if 50714 in t else 0
            bl = np.atleast_1d(np.asarray(bl, np.float64)).reshape(-1)
            rep = tuple(t[50713].value) if 50713 in t else (1, 1)
            if bl.size == 1:
                black = np.full((2, 2), bl[0], np.float32)
            elif rep == (2, 2) and bl.size == 4:
                black = bl.reshape(2, 2).astype(np.float32)
            else:
                return None
            white = float(np.atleast_1d(t[50717].value)[0]) if 50717 in t else 65535.0
            flip = int(tags0[274].value) if 274 in tags0 else 1
            offs, counts = list(page.dataoffsets), list(page.databytecounts)
            if not offs or any(offs[i + 1] != offs[i] + counts[i] for i in range(len(offs) - 1)):
                return None  # strips/tiles not one contiguous block
            offset, nbytes = int(offs[0]), int(sum(counts))
            if nbytes != h * w * 2 or offset + nbytes > os.path.getsize(path):
                raise DecodeError(path, "could not read the file (truncated: the image data runs past its end)")
            byteorder = tf.byteorder
        # read-only map (never tifffile.memmap: its default mode "r+" would extend a short file)
        data = np.memmap(path, dtype=np.dtype(byteorder + "u2"), mode="r", offset=offset, shape=(h, w))
    except DecodeError:
        raise
    except Exception:
        return None
    if data is None or data.ndim != 2:
        return None
    h2, w2 = (data.shape[0] // 2) * 2, (data.shape[1] // 2) * 2
    chan = np.array([[cfa_pat[0], cfa_pat[1]], [cfa_pat[2], cfa_pat[3]]], np.int64)
    meta = raw_meta(None, path)
    meta.setdefault("orientation", flip if flip in (1, 3, 6, 8) else 1)
    return Bayer(cfa=data[:h2, :w2], chan=chan, black=black, white=white, meta=meta, reader="dng-direct")


@contextmanager
def open_bayer(path: str | os.PathLike, copy: bool = False, direct: bool = True):
    """Context: the raw mosaic of a 2x2-Bayer RAW via LibRaw (None when not 2x2 Bayer).

    Without `copy`, `cfa` is a view of LibRaw's buffer, valid inside the block only."""
    path = Path(path)
    mapped = _direct_dng(path) if direct and path.suffix.lower() == ".dng" else None
    if mapped is not None:
        if copy:
            mapped.cfa = np.array(mapped.cfa, dtype=np.uint16, copy=True)
        yield mapped
        return
    raw = open_raw(path)
    with raw:
        try:
            pattern = raw.raw_pattern
            desc = raw.color_desc.decode("ascii", "replace")
            ok = pattern is not None and pattern.shape == (2, 2) and raw.num_colors == 3
            letters = [desc[int(c)] for c in pattern.reshape(-1)] if ok else []
            if not ok or sorted(letters) != ["B", "G", "G", "R"]:
                bayer = None
            else:
                cfa = raw.raw_image_visible
                h, w = (cfa.shape[0] // 2) * 2, (cfa.shape[1] // 2) * 2
                cfa = cfa[:h, :w]
                if copy:
                    cfa = np.array(cfa, dtype=np.uint16, copy=True)
                blacks = np.asarray(raw.black_level_per_channel, np.float32)
                black = np.array([[blacks[int(pattern[y, x])] for x in (0, 1)] for y in (0, 1)], np.float32)
                chan = np.array([["RGB".index(letters[2 * y + x]) for x in (0, 1)] for y in (0, 1)], np.int64)
                meta = raw_meta(raw, path)
                meta.setdefault("orientation", {0: 1, 3: 3, 5: 8, 6: 6}.get(raw.sizes.flip, 1))
                bayer = Bayer(cfa=cfa, chan=chan, black=black, white=float(raw.white_level), meta=meta)
        except DecodeError:
            raise
        except Exception as exc:
            raise DecodeError(path, f"LibRaw could not unpack it ({exc.__class__.__name__}: {exc})") from None
        yield bayer


def read_bayer(path: str | os.PathLike, direct: bool = True) -> Bayer | None:
    """The raw mosaic (a copy) of a 2x2-Bayer RAW, or None when it is not 2x2 Bayer."""
    with open_bayer(path, copy=True, direct=direct) as b:
        return b


def _bin_inv(b: Bayer, k: int) -> np.ndarray:
    """Per channel 1 / (sites per block * (white - black)): R, B have k*k sites, G 2*k*k."""
    span = np.maximum(b.white - b.black, 1.0)
    sites = np.zeros(3)
    rng = np.zeros(3)
    for y in (0, 1):
        for x in (0, 1):
            sites[b.chan[y, x]] += k * k
            rng[b.chan[y, x]] = span[y, x]
    return (1.0 / (sites * rng)).astype(np.float32)


def bin_bayer(b: Bayer, factor: int = 1, backend: str | None = None) -> np.ndarray:
    """(H/2k, W/2k, 3) float32 linear RGB, 1.0 = white: each output pixel averages a 2k x 2k block."""
    k = max(1, int(factor))
    h, w = b.cfa.shape
    ho, wo = h // (2 * k), w // (2 * k)
    if ho < 1 or wo < 1:
        raise ValueError(f"binning factor {k} too large for a {w}x{h} mosaic")
    inv = _bin_inv(b, k)
    out = np.empty((ho, wo, 3), np.float32)
    use_nb = (backend or ("numba" if HAVE_NUMBA else "numpy")) == "numba"
    (_bin_nb if use_nb else _bin_np)(b.cfa, k, b.chan, b.black.astype(np.float32), inv, out)
    return out


def preview_factor(h: int, w: int, long_side: int | None) -> int:
    """Largest binning factor k whose output long side max(h, w) / 2k stays >= long_side."""
    if not long_side:
        return 1
    return max(1, max(h, w) // (2 * int(long_side)))


def resize_linear(rgb: np.ndarray, long_side: int) -> np.ndarray:
    """Resize a linear float32 image so its long side is `long_side` (area average)."""
    h, w = rgb.shape[:2]
    if max(h, w) <= long_side:
        return rgb
    scale = long_side / max(h, w)
    return area_resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))))


def bin_to_size(bayer: Bayer, long_side: int | None, backend: str | None = None) -> np.ndarray:
    """Bin the mosaic (factor from preview_factor) and area-resize to `long_side` (None: half size)."""
    h, w = bayer.cfa.shape
    k = preview_factor(h, w, long_side)
    hk, wk = h // (2 * k), w // (2 * k)
    use_nb = (backend or ("numba" if HAVE_NUMBA else "numpy")) == "numba"
    if long_side and max(hk, wk) > long_side and use_nb:
        # bin + vertical resize fused (no full binned copy), then the horizontal resize
        scale = long_side / max(hk, wk)
        wo, ho = max(1, round(wk * scale)), max(1, round(hk * scale))
        iy, wy = _area_weights(hk, ho)
        tmp = np.empty((ho, wk, 3), np.float32)
        _bin_vert_nb(bayer.cfa, k, bayer.chan, bayer.black.astype(np.float32), _bin_inv(bayer, k), iy, wy, tmp)
        ix, wx = _area_weights(wk, wo)
        rgb = np.empty((ho, wo, 3), np.float32)
        _resize_rows_nb(tmp, ix, wx, rgb)
        return rgb
    rgb = bin_bayer(bayer, k, backend)
    return resize_linear(rgb, long_side) if long_side else rgb


def decode_fast(path: str | os.PathLike, long_side: int | None = None, backend: str | None = None) -> Decoded:
    """Half-size (or smaller) decode for previews.

    `long_side=None`: exactly LibRaw half-size (one RGB pixel per 2x2 block).
    `long_side=L`: bin to the smallest size whose long side is still >= L, then
    resize in linear light to exactly L.  Non-RAW inputs and non-Bayer RAWs go
    through the readers at half size (then the resize)."""
    path = Path(path)
    check_file(path)
    kind = sniff(path)
    if kind == "raw":
        with open_bayer(path) as bayer:
            if bayer is not None:
                h, w = bayer.cfa.shape
                if h < 16 or w < 16:
                    raise DecodeError(path, f"image too small ({w}x{h})")
                k = preview_factor(h, w, long_side)
                rgb = bin_to_size(bayer, long_side, backend)
                meta = dict(bayer.meta)
                reader = bayer.reader
        if bayer is not None:
            # clipped: a pixel whose brightest channel reached the white (approximate after binning)
            clipped = float(np.mean(rgb.max(axis=2) >= CLIPPED))
            meta["decode"] = f"bayer-bin {2 * k}x{2 * k} ({reader})"
            return Decoded(rgb=rgb, meta=meta, clipped=clipped)
        dec = validated(decode_raw(path, True), path)
    else:  # a scan or an sRGB image (anything else is refused there, with the reason)
        dec = validated(read_image(path, kind, half_size=True), path)
    if long_side:
        dec.rgb = resize_linear(dec.rgb, long_side)
    return dec
