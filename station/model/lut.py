"""Compiled inversion: bake a pixel-wise function into a 3-D LUT and apply it fast.

A learned (or classic) inverter has two parts (docs/ARCHITECTURE.md, "The
model contract"): a per-frame affine *normaliser* z = A*D + b and a
pixel-wise function f: z (3,) -> sRGB (3,).  Only f is baked here, over the
model's `z_range`, so one LUT serves every frame of every roll; the normaliser
stays outside and is folded into the LUT's input coordinates at apply time
(t_c = s_c * D_c + o_c, one multiply-add per channel), so nothing is re-baked
when the frame or the roll calibration changes.

Table layout: `table[i_r, i_g, i_b, :]` = f(lo + i * (hi - lo) / (N - 1)),
float32, N nodes per axis (node i_c at z_c = lo_c + i_c * step_c).

Interpolation: tetrahedral (4 corners, default; as accurate as trilinear on
smooth functions and cheaper) or trilinear (8 corners).  The kernels are
numba-compiled (parallel, no Python per pixel) when numba is importable, else
a chunked numpy version runs (about 5x slower, same results to float32
rounding).  Inputs outside the range are clamped to the table's faces.

`.cube` files (Adobe/Resolve "Cube LUT" 1.0): LUT_3D_SIZE N, DOMAIN_MIN 0 0 0,
DOMAIN_MAX 1 1 1, N^3 lines "r g b" with red varying fastest.  The cube's
input is the normalised density rescaled to [0,1]: x_c = (z_c - lo_c) /
(hi_c - lo_c); lo/hi are written in the header comments (and read back).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

try:  # numba is optional: the numpy fallback gives the same numbers, slower
    import numba as _nb

    HAVE_NUMBA = os.environ.get("STATION_NO_NUMBA", "") in ("", "0")
except Exception:  # pragma: no cover - exercised where numba is absent
    _nb = None
    HAVE_NUMBA = False

METHODS = ("tetrahedral", "trilinear")
DEFAULT_SIZE = 65  # 33 meets ΔE 0.5 for classic and smooth nets; 65 for wigglier ones (docs/PERFORMANCE.md)
CHUNK = 1 << 18  # pixels per numpy chunk (bounds temporaries to ~40 MB)


# --------------------------------------------------------------------------- kernels
if _nb is not None:

    @_nb.njit(inline="always", fastmath=True)
    def _lookup(table, n, t0, t1, t2, tetra):  # pragma: no cover - compiled
        """Interpolate the flat table at grid coordinates (t0, t1, t2), already clamped."""
        i0 = int(t0)
        i1 = int(t1)
        i2 = int(t2)
        fr = t0 - i0
        fg = t1 - i1
        fb = t2 - i2
        b = ((i0 * n + i1) * n + i2) * 3
        dr = n * n * 3
        dg = n * 3
        db = 3
        if tetra:
            if fr > fg:
                if fg > fb:
                    w0, w1, w2, w3 = 1.0 - fr, fr - fg, fg - fb, fb
                    a1, a2 = dr, dr + dg
                elif fr > fb:
                    w0, w1, w2, w3 = 1.0 - fr, fr - fb, fb - fg, fg
                    a1, a2 = dr, dr + db
                else:
                    w0, w1, w2, w3 = 1.0 - fb, fb - fr, fr - fg, fg
                    a1, a2 = db, dr + db
            else:
                if fb > fg:
                    w0, w1, w2, w3 = 1.0 - fb, fb - fg, fg - fr, fr
                    a1, a2 = db, dg + db
                elif fb > fr:
                    w0, w1, w2, w3 = 1.0 - fg, fg - fb, fb - fr, fr
                    a1, a2 = dg, dg + db
                else:
                    w0, w1, w2, w3 = 1.0 - fg, fg - fr, fr - fb, fb
                    a1, a2 = dg, dr + dg
            a3 = dr + dg + db
            r = w0 * table[b] + w1 * table[b + a1] + w2 * table[b + a2] + w3 * table[b + a3]
            g = w0 * table[b + 1] + w1 * table[b + a1 + 1] + w2 * table[b + a2 + 1] + w3 * table[b + a3 + 1]
            bl = w0 * table[b + 2] + w1 * table[b + a1 + 2] + w2 * table[b + a2 + 2] + w3 * table[b + a3 + 2]
            return r, g, bl
        gr = 1.0 - fr
        gg = 1.0 - fg
        gb = 1.0 - fb
        res = [0.0, 0.0, 0.0]
        for c in range(3):
            q = b + c
            res[c] = (gr * (gg * (gb * table[q] + fb * table[q + db])
                            + fg * (gb * table[q + dg] + fb * table[q + dg + db]))
                      + fr * (gg * (gb * table[q + dr] + fb * table[q + dr + db])
                              + fg * (gb * table[q + dr + dg] + fb * table[q + dr + dg + db])))
        return res[0], res[1], res[2]

    @_nb.njit(inline="always")
    def _clamp(t, top):  # pragma: no cover - compiled
        if not t > 0.0:  # NaN -> 0
            return 0.0
        return top if t > top else t

    @_nb.njit(parallel=True, fastmath=True, cache=True, nogil=True)
    def _apply_nb(src, table, n, scale, offset, tetra, out):  # pragma: no cover - compiled
        top = float(n - 1) - 1e-4
        for k in _nb.prange(src.shape[0]):
            t0 = _clamp(src[k, 0] * scale[0] + offset[0], top)
            t1 = _clamp(src[k, 1] * scale[1] + offset[1], top)
            t2 = _clamp(src[k, 2] * scale[2] + offset[2], top)
            r, g, b = _lookup(table, n, t0, t1, t2, tetra)
            out[k, 0] = r
            out[k, 1] = g
            out[k, 2] = b

    @_nb.njit(parallel=True, fastmath=True, cache=True, nogil=True)
    def apply_shaped_nb(src, shaper, table, n, tetra, top, out):  # pragma: no cover - compiled
        """Integer codes in -> per-channel 1-D shaper (code -> grid coordinate) -> 3-D LUT -> integer
        codes out, rounded and clipped to 0..top: uint16 (top 65535, the fast master) or uint8
        (top 255, the live positive: capture/livelut.py).  src (N, 3), shaper (3, codes), out (N, 3)."""
        itop = int(top)
        for k in _nb.prange(src.shape[0]):
            r, g, b = _lookup(table, n, shaper[0, src[k, 0]], shaper[1, src[k, 1]], shaper[2, src[k, 2]], tetra)
            r = r * top + 0.5
            g = g * top + 0.5
            b = b * top + 0.5
            out[k, 0] = 0 if not r > 0.0 else (itop if r >= top else int(r))
            out[k, 1] = 0 if not g > 0.0 else (itop if g >= top else int(g))
            out[k, 2] = 0 if not b > 0.0 else (itop if b >= top else int(b))


def _apply_np(src, table, n, scale, offset, tetra, out):
    """Chunked numpy version of _apply_nb (same maths)."""
    flat = table.reshape(-1)
    nn = n * n
    dr, dg, db = nn * 3, n * 3, 3
    top = np.float32(n - 1 - 1e-4)
    for s in range(0, src.shape[0], CHUNK):
        x = src[s:s + CHUNK]
        t = x * scale + offset
        np.nan_to_num(t, copy=False, nan=0.0)
        np.clip(t, 0.0, top, out=t)
        i = t.astype(np.int32)
        f = t - i
        base = ((i[:, 0] * n + i[:, 1]) * n + i[:, 2]) * 3
        fr, fg, fb = f[:, 0], f[:, 1], f[:, 2]
        o = out[s:s + CHUNK]
        if tetra:
            # Sort the fractions descending; the tetrahedron's vertices step along the axes in that order.
            order = np.argsort(-f, axis=1, kind="stable")
            fs = np.take_along_axis(f, order, axis=1)
            steps = np.array([dr, dg, db], np.int64)[order]
            w = np.stack([1.0 - fs[:, 0], fs[:, 0] - fs[:, 1], fs[:, 1] - fs[:, 2], fs[:, 2]], axis=1).astype(np.float32)
            v1 = base + steps[:, 0]
            v2 = v1 + steps[:, 1]
            v3 = v2 + steps[:, 2]
            for c in range(3):
                o[:, c] = (w[:, 0] * flat[base + c] + w[:, 1] * flat[v1 + c]
                           + w[:, 2] * flat[v2 + c] + w[:, 3] * flat[v3 + c])
        else:
            o[:] = 0.0
            for ar in (0, 1):
                wr = fr if ar else 1.0 - fr
                for ag in (0, 1):
                    wrg = wr * (fg if ag else 1.0 - fg)
                    for ab in (0, 1):
                        w = wrg * (fb if ab else 1.0 - fb)
                        idx = base + ar * dr + ag * dg + ab * db
                        for c in range(3):
                            o[:, c] += w * flat[idx + c]


# --------------------------------------------------------------------------- the LUT
def _range3(v) -> np.ndarray:
    a = np.asarray(v, np.float64).reshape(-1)
    if a.size == 1:
        a = np.repeat(a, 3)
    if a.size != 3:
        raise ValueError(f"a z range bound must be a scalar or 3 values, got {v!r}")
    return a


@dataclass
class Lut3D:
    """A baked pixel function: table (N,N,N,3) float32 over [lo, hi] per channel."""

    table: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.table = np.ascontiguousarray(self.table, np.float32)
        n = self.table.shape[0]
        if self.table.shape != (n, n, n, 3) or n < 2:
            raise ValueError(f"LUT table must be NxNxNx3 with N >= 2, got {self.table.shape}")
        self.lo = _range3(self.lo)
        self.hi = _range3(self.hi)
        if np.any(self.hi <= self.lo):
            raise ValueError(f"LUT range must have hi > lo, got lo={self.lo} hi={self.hi}")
        self._flat = self.table.reshape(-1)

    @property
    def size(self) -> int:
        return self.table.shape[0]

    def coords(self, A=None, b=None) -> tuple[np.ndarray, np.ndarray]:
        """(scale, offset) so that grid coordinate t = scale * x + offset.

        With A, b given, x is the density D and the normaliser z = A*D + b is
        folded in; without, x is z itself."""
        step = (self.size - 1) / (self.hi - self.lo)
        A = np.ones(3) if A is None else _range3(A)
        b = np.zeros(3) if b is None else _range3(b)
        return (A * step).astype(np.float32), ((b - self.lo) * step).astype(np.float32)

    def apply(self, x: np.ndarray, A=None, b=None, method: str = "tetrahedral", out: np.ndarray | None = None,
              backend: str | None = None) -> np.ndarray:
        """Interpolate the table at x (..., 3) float32; returns float32 of x's shape.

        x is z (normalised density), or D when the normaliser's (A, b) are
        given.  `backend`: "numba", "numpy" or None (numba when available)."""
        if method not in METHODS:
            raise ValueError(f"unknown interpolation {method!r} (choose from {', '.join(METHODS)})")
        shape = x.shape
        if shape[-1] != 3:
            raise ValueError(f"expected (..., 3) input, got {shape}")
        src = np.ascontiguousarray(x, np.float32).reshape(-1, 3)
        res = np.empty_like(src) if out is None else out.reshape(-1, 3)
        scale, offset = self.coords(A, b)
        use_nb = (backend or ("numba" if HAVE_NUMBA else "numpy")) == "numba"
        if use_nb and _nb is None:
            raise RuntimeError("numba is not installed")
        kernel = _apply_nb if use_nb else _apply_np
        kernel(src, self._flat, self.size, scale, offset, method == "tetrahedral", res)
        return res.reshape(shape)

    def apply_u16(self, rgb16: np.ndarray, shaper, method: str = "tetrahedral", out: np.ndarray | None = None,
                  backend: str | None = None) -> np.ndarray:
        """uint16 (..., 3) in, uint16 (..., 3) sRGB out (0..65535), in one pass.

        `shaper(v: float64 array of 0..65535) -> (65536, 3)` maps every possible
        input value to the LUT's input (z) per channel; it is tabulated once,
        so no logarithm is taken per pixel."""
        if rgb16.dtype != np.uint16 or rgb16.shape[-1] != 3:
            raise ValueError(f"expected (..., 3) uint16, got {rgb16.dtype} {rgb16.shape}")
        v = np.arange(65536, dtype=np.float64)
        z = np.asarray(shaper(v), np.float64).reshape(65536, 3)
        step = (self.size - 1) / (self.hi - self.lo)
        t = np.clip((z - self.lo) * step, 0.0, self.size - 1 - 1e-4)
        t = np.nan_to_num(t, nan=0.0).T.astype(np.float32).copy()  # (3, 65536)
        src = np.ascontiguousarray(rgb16).reshape(-1, 3)
        res = np.empty_like(src) if out is None else out.reshape(-1, 3)
        use_nb = (backend or ("numba" if HAVE_NUMBA else "numpy")) == "numba"
        if use_nb:
            apply_shaped_nb(src, t, self._flat, self.size, method == "tetrahedral", 65535.0, res)
        else:
            tmp = np.empty((min(CHUNK, len(src)), 3), np.float32)
            for s in range(0, len(src), CHUNK):
                x = src[s:s + CHUNK]
                coords = np.stack([t[c][x[:, c]] for c in range(3)], axis=1)
                o = tmp[:len(x)]
                _apply_np(coords, self.table, self.size, np.ones(3, np.float32), np.zeros(3, np.float32),
                          method == "tetrahedral", o)
                res[s:s + CHUNK] = np.clip(o * 65535.0 + 0.5, 0, 65535).astype(np.uint16)
        return res.reshape(rgb16.shape)

    def apply_torch(self, x, A=None, b=None):
        """Trilinear lookup of a torch tensor (..., 3) on its own device (GPU path).

        torch's grid_sample on the 3-D table; matches apply(method="trilinear")
        to float32 rounding."""
        import torch

        scale, offset = self.coords(A, b)
        dev = x.device
        n = self.size
        key = str(dev)
        cache = self.__dict__.setdefault("_torch_tables", {})
        if key not in cache:
            # grid_sample wants (1, C, D, H, W) with grid (x, y, z) -> (W, H, D): put r on D, g on H, b on W
            cache[key] = torch.from_numpy(np.ascontiguousarray(self.table.transpose(3, 0, 1, 2)))[None].to(dev)
        vol = cache[key]
        t = x.reshape(-1, 3).float() * torch.as_tensor(scale, device=dev) + torch.as_tensor(offset, device=dev)
        t = torch.nan_to_num(t, nan=0.0).clamp(0.0, n - 1.0)
        g = (t * (2.0 / (n - 1)) - 1.0)[:, [2, 1, 0]].reshape(1, 1, 1, -1, 3)
        out = torch.nn.functional.grid_sample(vol, g, mode="bilinear", padding_mode="border", align_corners=True)
        return out.reshape(3, -1).T.reshape(x.shape)

    def nodes(self) -> list[np.ndarray]:
        return [np.linspace(self.lo[c], self.hi[c], self.size) for c in range(3)]


def grid_points(lo, hi, size: int) -> np.ndarray:
    """All N^3 node coordinates, (N^3, 3) float32, in table order (blue fastest)."""
    lo, hi = _range3(lo), _range3(hi)
    axes = [np.linspace(lo[c], hi[c], size, dtype=np.float64) for c in range(3)]
    g = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    return g.reshape(-1, 3).astype(np.float32)


def bake(pixel_fn, z_range, size: int = DEFAULT_SIZE, batch: int = 1 << 16, meta: dict | None = None) -> Lut3D:
    """Evaluate pixel_fn ((M,3) z -> (M,3)) on an N^3 grid over z_range = (lo, hi)."""
    if size < 2 or size > 257:
        raise ValueError(f"LUT size must be in 2..257, got {size}")
    lo, hi = _range3(z_range[0]), _range3(z_range[1])
    pts = grid_points(lo, hi, size)
    out = np.empty_like(pts)
    for s in range(0, len(pts), batch):
        out[s:s + batch] = np.asarray(pixel_fn(pts[s:s + batch]), np.float32).reshape(-1, 3)
    return Lut3D(out.reshape(size, size, size, 3), lo, hi, dict(meta or {}))


# --------------------------------------------------------------------------- error
def delta_e2000(srgb_a: np.ndarray, srgb_b: np.ndarray) -> np.ndarray:
    """CIEDE2000 between two sets of sRGB-encoded colours in [0,1] (..., 3)."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    a = np.clip(np.asarray(srgb_a, np.float64), 0, 1).reshape(-1, 1, 3)
    b = np.clip(np.asarray(srgb_b, np.float64), 0, 1).reshape(-1, 1, 3)
    return deltaE_ciede2000(rgb2lab(a), rgb2lab(b)).reshape(-1)


def dense_sample(lo, hi, n: int = 200_000, seed: int = 0) -> np.ndarray:
    """Uniform random z inside [lo, hi] (off the grid nodes), (n, 3) float32."""
    lo, hi = _range3(lo), _range3(hi)
    rng = np.random.default_rng(seed)
    return (lo + rng.random((n, 3)) * (hi - lo)).astype(np.float32)


def lut_error(lut: Lut3D, pixel_fn, z: np.ndarray, method: str = "tetrahedral") -> dict:
    """ΔE2000 of the LUT against the direct pixel_fn on z (M,3): max, p99, mean."""
    z = np.asarray(z, np.float32).reshape(-1, 3)
    ref = np.asarray(pixel_fn(z), np.float32).reshape(-1, 3)
    got = lut.apply(z, method=method)
    de = delta_e2000(ref, got)
    return {"max": float(de.max()), "p99": float(np.percentile(de, 99)), "mean": float(de.mean()), "n": int(len(de))}


# --------------------------------------------------------------------------- .cube
def write_cube(path, lut: Lut3D, title: str = "station inversion", comments: list[str] | None = None) -> Path:
    """Write `lut` as a .cube (domain [0,1], red fastest), atomically."""
    path = Path(path)
    n = lut.size
    lines = [f"# {c}" for c in (comments or [
        "station 3D LUT: input x_c = (z_c - lo_c) / (hi_c - lo_c), z = normalised density (docs/PERFORMANCE.md)"])]
    lines += [
        "# station-lo " + " ".join(f"{v:.9g}" for v in lut.lo),
        "# station-hi " + " ".join(f"{v:.9g}" for v in lut.hi),
        f'TITLE "{title}"',
        f"LUT_3D_SIZE {n}",
        "DOMAIN_MIN 0.0 0.0 0.0",
        "DOMAIN_MAX 1.0 1.0 1.0",
    ]
    # red fastest: iterate b (slowest), g, r (fastest) -> table[r, g, b] transposed to [b, g, r]
    data = np.clip(lut.table, 0.0, 1.0).transpose(2, 1, 0, 3).reshape(-1, 3)
    body = "\n".join(f"{r:.6f} {g:.6f} {b:.6f}" for r, g, b in data.tolist())
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="ascii") as fh:
        fh.write("\n".join(lines) + "\n" + body + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def read_cube(path) -> Lut3D:
    """Parse a 3-D .cube file.  The returned LUT's range is the cube's domain,
    or the station lo/hi from the header comments when present (so a station
    cube applies directly to z)."""
    path = Path(path)
    size = None
    dmin, dmax = np.zeros(3), np.ones(3)
    slo = shi = None
    rows: list[list[float]] = []
    with open(path, encoding="ascii", errors="replace") as fh:
        for line in fh:
            s = line.strip()
            if not s:
                continue
            if s.startswith("#"):
                parts = s[1:].split()
                if len(parts) == 4 and parts[0] == "station-lo":
                    slo = np.array([float(v) for v in parts[1:]])
                elif len(parts) == 4 and parts[0] == "station-hi":
                    shi = np.array([float(v) for v in parts[1:]])
                continue
            key = s.split()[0].upper()
            if key == "LUT_3D_SIZE":
                size = int(s.split()[1])
            elif key == "DOMAIN_MIN":
                dmin = np.array([float(v) for v in s.split()[1:4]])
            elif key == "DOMAIN_MAX":
                dmax = np.array([float(v) for v in s.split()[1:4]])
            elif key in ("TITLE", "LUT_1D_SIZE", "LUT_3D_INPUT_RANGE", "LUT_1D_INPUT_RANGE"):
                if key == "LUT_1D_SIZE":
                    raise ValueError(f"{path}: a 1-D LUT, not a 3-D one")
                continue
            else:
                rows.append([float(v) for v in s.split()[:3]])
    if size is None:
        raise ValueError(f"{path}: no LUT_3D_SIZE line")
    if len(rows) != size ** 3:
        raise ValueError(f"{path}: {len(rows)} entries, LUT_3D_SIZE {size} needs {size ** 3}")
    data = np.asarray(rows, np.float32).reshape(size, size, size, 3).transpose(2, 1, 0, 3)  # [b,g,r] -> [r,g,b]
    if slo is not None and shi is not None and np.allclose(dmin, 0) and np.allclose(dmax, 1):
        return Lut3D(data, slo, shi, {"source": str(path), "domain": "z"})
    return Lut3D(data, dmin, dmax, {"source": str(path), "domain": "cube"})


def cube_input(z: np.ndarray, lut: Lut3D) -> np.ndarray:
    """The encoding a station .cube expects: x = (z - lo) / (hi - lo), per channel."""
    return ((np.asarray(z, np.float64) - lut.lo) / (lut.hi - lut.lo)).astype(np.float32)


__all__ = [
    "HAVE_NUMBA", "METHODS", "DEFAULT_SIZE", "Lut3D", "bake", "grid_points", "delta_e2000", "dense_sample",
    "lut_error", "write_cube", "read_cube", "cube_input",
]
