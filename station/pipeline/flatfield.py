"""Flat field: the unevenness of the light source and the lens (fall-off to the corners),
measured once from a frame of the bare light (no film) and divided out of every frame of the
roll before the film base and the inversion.

`measure_flat(rgb) -> FlatField`: linear camera RGB (1.0 = sensor white) of the bare light.
Block means on a coarse grid (GRID = 32 x 48, the long side along the frame's long side),
the smooth fall-off (a degree-4 polynomial in log) plus the 3x3-smoothed rest (the light's
coarse unevenness), normalised to 1 at the centre per channel.  Refused (`NotAFlatError`,
a ValueError with a one-line reason) when the frame is not a bare light:
  - too dark: the brightest channel's median under FLAT_MIN_LEVEL of sensor white;
  - clipped: more than FLAT_MAX_CLIPPED of the pixels at sensor white (the fall-off is
    flattened where it clips);
  - film in it: orange (blue under FLAT_MIN_BLUE of red/green, a film base) or structure —
    after removing the smooth fall-off (a degree-4 polynomial fitted to the log block means),
    the blocks still vary by more than FLAT_MAX_DETAIL (picture content, an edge, sprocket
    holes, a holder).
`apply_flat(rgb, flat)`: rgb / gain, the gain resampled bilinearly to the frame's size (any
size: half-size previews and full masters use the same flat).  `apply_flat_u16` does the same
on LibRaw's uint16 data (the fast master), in row bands of float32.

A FlatField is saved as a small .npz (no pickle): the grid, its id (a hash of the grid) and
where it came from.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

GRID = (32, 48)  # blocks along the frame's short and long side
FLAT_MIN_LEVEL = 0.05  # the brightest channel's median must be at least this (of sensor white)
FLAT_CLIP = 0.995  # a pixel with a channel at or above this is at sensor white
FLAT_MAX_CLIPPED = 0.01  # at most this fraction of the pixels clipped
FLAT_MIN_BLUE = 0.30  # blue under this fraction of red/green: an orange film base, not a light
FLAT_MAX_DETAIL = 0.03  # log10 units (~7 %): P99.5 of |block - smooth fall-off| above this = structure


class NotAFlatError(ValueError):
    """The frame is not a bare light (film in it, clipped, too dark): the one-line reason."""


@dataclass(frozen=True)
class FlatField:
    grid: np.ndarray  # (gh, gw, 3) float32 gain, 1 at the centre; gh <= gw unless the frame was portrait
    source: str = ""

    @property
    def id(self) -> str:
        g = np.ascontiguousarray(self.grid, dtype=np.float32)
        return hashlib.sha256(g.tobytes() + str(g.shape).encode()).hexdigest()[:12]

    @property
    def corner_falloff(self) -> float:
        """How much darker the darkest corner block is than the centre (0.25 = 25 %)."""
        g = self.grid.mean(axis=2)
        return float(1.0 - min(g[0, 0], g[0, -1], g[-1, 0], g[-1, -1]))

    def save(self, path: str | Path) -> Path:
        """Write the .npz atomically (temp + rename); returns the path."""
        import os
        import tempfile

        path = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=".flat-", suffix=".npz", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, grid=np.asarray(self.grid, np.float32), id=np.array(self.id),
                         source=np.array(self.source), version=np.array(1))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | Path) -> "FlatField":
        """Read a saved flat field; ValueError naming what is wrong."""
        try:
            with np.load(path, allow_pickle=False) as z:
                grid = np.asarray(z["grid"], np.float32)
                source = str(z["source"]) if "source" in z else ""
                saved_id = str(z["id"]) if "id" in z else None
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"not a flat field file ({exc.__class__.__name__}: {exc})") from None
        if grid.ndim != 3 or grid.shape[2] != 3 or min(grid.shape[:2]) < 2 or not np.all(np.isfinite(grid)) \
                or grid.min() <= 0:
            raise ValueError(f"not a flat field file (grid of shape {grid.shape} or with non-positive gains)")
        flat = cls(grid=grid, source=source)
        if saved_id is not None and saved_id != flat.id:
            raise ValueError(f"damaged flat field file (id {saved_id} does not match its grid {flat.id})")
        return flat


def _block_means(rgb: np.ndarray, gh: int, gw: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    ys = np.linspace(0, h, gh + 1).astype(int)
    xs = np.linspace(0, w, gw + 1).astype(int)
    rows = np.add.reduceat(rgb.astype(np.float64), ys[:-1], axis=0) / np.diff(ys)[:, None, None]
    return np.add.reduceat(rows, xs[:-1], axis=1) / np.diff(xs)[None, :, None]


def _smooth3(g: np.ndarray) -> np.ndarray:
    """3x3 box mean with edge replication."""
    p = np.pad(g, ((1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = g.shape[:2]
    return sum(p[i:i + h, j:j + w] for i in range(3) for j in range(3)) / 9.0


def _poly_fit(logb: np.ndarray, degree: int = 4) -> np.ndarray:
    """A 2-D polynomial fitted per channel to the log block means (the smooth fall-off)."""
    gh, gw = logb.shape[:2]
    y, x = np.meshgrid(np.linspace(-1, 1, gh), np.linspace(-1, 1, gw), indexing="ij")
    terms = [x ** i * y ** j for i in range(degree + 1) for j in range(degree + 1 - i)]
    M = np.stack([t.ravel() for t in terms], axis=1)
    Y = logb.reshape(-1, 3)
    coef, *_ = np.linalg.lstsq(M, Y, rcond=None)
    return (M @ coef).reshape(logb.shape)


def measure_flat(rgb: np.ndarray, source: str = "") -> FlatField:
    """The flat field of a frame of the bare light source; NotAFlatError when it is not one."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 64:
        raise NotAFlatError(f"the frame is too small for a flat field ({rgb.shape[1]}x{rgb.shape[0]})"
                            if rgb.ndim == 3 else "not an RGB frame")
    h, w = rgb.shape[:2]
    step = max(1, int(np.ceil(max(h, w) / 1536)))  # block means need no more than ~1.5k px
    small = np.asarray(rgb[::step, ::step], np.float32)
    level = np.median(small.reshape(-1, 3), axis=0)
    if level.max() < FLAT_MIN_LEVEL:
        raise NotAFlatError(f"too dark for a flat field: the light is at {100 * level.max():.1f}% of sensor white "
                            f"(at least {100 * FLAT_MIN_LEVEL:.0f}% needed; expose longer)")
    # film before clipping: a negative's sprocket holes clip, and it is the film that is wrong
    top = max(level[0], level[1])
    if level[2] < FLAT_MIN_BLUE * top:
        raise NotAFlatError(f"film in it: the frame is orange like a film base (blue at {level[2] / top:.2f} of "
                            f"red/green; a bare light's is over {FLAT_MIN_BLUE}); take the film out")
    clipped = float(np.mean(np.any(small >= FLAT_CLIP, axis=2)))
    if clipped > FLAT_MAX_CLIPPED:
        raise NotAFlatError(f"clipped: {100 * clipped:.1f}% of the pixels are at sensor white (at most "
                            f"{100 * FLAT_MAX_CLIPPED:.0f}% allowed; expose shorter)")
    gh, gw = GRID if w >= h else GRID[::-1]
    blocks = _block_means(small, gh, gw)
    if blocks.min() <= 1e-4:
        raise NotAFlatError("film or the holder in it: parts of the frame are black")
    logb = np.log10(blocks)
    smooth = _poly_fit(logb)
    detail = np.abs(logb - smooth)
    worst = float(np.percentile(detail, 99.5))
    if worst > FLAT_MAX_DETAIL:
        raise NotAFlatError(f"film in it: structure of {100 * (10 ** worst - 1):.0f}% beyond the light's smooth "
                            f"fall-off (at most {100 * (10 ** FLAT_MAX_DETAIL - 1):.0f}%; picture, edges or "
                            "holder in the frame); take the film out")
    g = 10.0 ** (smooth + _smooth3(logb - smooth))  # the fall-off, plus the light's own coarse unevenness
    cy, cx = gh // 2, gw // 2
    centre = g[cy - 1:cy + 1, cx - 1:cx + 1].reshape(-1, 3).mean(axis=0)
    return FlatField(grid=(g / centre).astype(np.float32), source=source)


def _axis_weights(n_out: int, n_grid: int):
    """Bilinear weights from grid-cell centres to pixel centres along one axis; the half cell
    outside the outermost centres is extrapolated linearly (the fall-off goes on to the edge)."""
    pos = (np.arange(n_out) + 0.5) * (n_grid / n_out) - 0.5
    i0 = np.clip(np.floor(pos).astype(int), 0, n_grid - 2) if n_grid > 1 else np.zeros(n_out, int)
    f = (pos - i0).astype(np.float32)
    return i0, f


def _grid_for(flat: FlatField, h: int, w: int) -> np.ndarray:
    g = np.asarray(flat.grid, np.float32)
    if (g.shape[0] > g.shape[1]) != (h > w) and g.shape[0] != g.shape[1]:
        g = np.rot90(g)  # a portrait frame of a landscape flat (or back): the same light, turned
    return g


def gain_rows(flat: FlatField, h: int, w: int):
    """A function (r0, r1) -> the (r1-r0, w, 3) float32 gain of those rows of an h x w frame."""
    g = _grid_for(flat, h, w)
    gh, gw = g.shape[:2]
    xi, xf = _axis_weights(w, gw)
    # along x first, for every grid row: (gh, w, 3)
    T = g[:, xi] * (1 - xf)[None, :, None] + g[:, np.minimum(xi + 1, gw - 1)] * xf[None, :, None]
    yi, yf = _axis_weights(h, gh)
    yi1 = np.minimum(yi + 1, gh - 1)

    def rows(r0: int, r1: int) -> np.ndarray:
        f = yf[r0:r1, None, None]
        return T[yi[r0:r1]] * (1 - f) + T[yi1[r0:r1]] * f

    return rows


def gain_map(flat: FlatField, h: int, w: int) -> np.ndarray:
    return gain_rows(flat, h, w)(0, h)


def apply_flat(rgb: np.ndarray, flat: FlatField | None) -> np.ndarray:
    """Linear RGB divided by the flat field's gain (a new float32 array); rgb itself when flat is None."""
    if flat is None:
        return rgb
    h, w = rgb.shape[:2]
    return (np.asarray(rgb, np.float32) / gain_map(flat, h, w)).astype(np.float32)


def apply_flat_u16(rgb16: np.ndarray, flat: FlatField | None, band: int = 256) -> np.ndarray:
    """The same on HxWx3 uint16 linear data, in place, in row bands (float32 per band)."""
    if flat is None:
        return rgb16
    h, w = rgb16.shape[:2]
    rows = gain_rows(flat, h, w)
    for r0 in range(0, h, band):
        r1 = min(h, r0 + band)
        v = rgb16[r0:r1].astype(np.float32) / rows(r0, r1)
        np.clip(v + 0.5, 0, 65535, out=v)
        rgb16[r0:r1] = v.astype(np.uint16)
    return rgb16


def load_flat(path: str | Path) -> FlatField:
    """A flat field from a saved .npz, or measured from a frame of the bare light (a RAW or image)."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        return FlatField.load(path)
    from station.pipeline.decode import decode

    return measure_flat(decode(path, half_size=True).rgb, source=path.name)
