"""Run any two-part inverter (normaliser + pixel function) through a baked 3-D LUT.

`compiled(inverter)` wraps an inverter that follows the model contract
(`normaliser`, `pixel_fn`, `z_range`; `frame_affine(D) -> (A, b)` when the
normaliser is a per-channel affine, which the classic inverter and the MLP
models provide) in a `LutInverter`; anything else is returned unchanged.

Per frame the cost is: (A, b) from a subsample of D (the normaliser's own
statistics), then one pass of the LUT kernel over D with z = A*D + b folded
into the lookup's coordinates.  The LUT itself depends only on the pixel
function, so it is baked once per model (a few ms for 33^3 points through a
small MLP) and cached in-process, keyed by the model's identity: its weights'
digest (or its parameters, for classic) and the grid size.  The grid size is
chosen per model by default (`size="auto"`: 33, 65 or 129 points per axis, the
smallest meeting max ΔE2000 <= 0.5 against the direct function), and a learned
model's range is widened by 10% each side (frames stray a little outside the
training range; classic's range is exact, it is constant beyond).  A new roll
calibration or a new frame never rebakes.  The direct (unbaked) inverter
stays available as `LutInverter.direct` and for `ConvertOptions(compiled=False)`.

The print (printing.py: exposure, white balance, contrast, points) is three
per-channel curves after the pixel function; `LutInverter(..., print=s)` composes
it into a copy of the baked table (`printed_lut`, ~0.2 s for 161^3, cached by
model LUT and settings), so a printed frame costs the same per pixel.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np

from station.model.lut import DEFAULT_SIZE, Lut3D, bake  # noqa: F401  (DEFAULT_SIZE re-exported)

_CACHE: dict[tuple, Lut3D] = {}
_LOCK = threading.Lock()


def model_key(inverter) -> tuple:
    """What the pixel function depends on: a stable identity for caching its LUT."""
    weights = getattr(inverter, "weights", None)
    if isinstance(weights, dict) and weights:
        h = hashlib.sha1()
        for k in sorted(weights):
            h.update(k.encode())
            h.update(np.ascontiguousarray(weights[k]).tobytes())
        cfg = getattr(inverter, "config", None)
        h.update(repr(getattr(cfg, "to_dict", lambda: cfg)()).encode())
        return (type(inverter).__name__, h.hexdigest())
    params = getattr(inverter, "params", None)
    if params is not None:
        try:
            hash(params)
            return (type(inverter).__name__, params)
        except TypeError:
            pass
    return (type(inverter).__name__, id(inverter))


SAMPLE = 262144


def sample_frame(a: np.ndarray, n: int = SAMPLE) -> np.ndarray:
    """A strided 2-D subsample of an HxWx3 frame, about n pixels: a[::s, ::s].

    Kept 2-D so a normaliser can still tell the picture's centre from its
    border; the same stride on the uint16 frame gives fastmaster the same pixels."""
    a = np.asarray(a)
    if a.ndim != 3:
        flat = a.reshape(-1, 3)
        return flat[::max(1, flat.shape[0] // n)].reshape(-1, 1, 3)
    s = sample_stride(a.shape[0], a.shape[1], n)
    return a[::s, ::s]


def sample_stride(h: int, w: int, n: int = SAMPLE) -> int:
    return max(1, int(np.ceil(np.sqrt(h * w / n))))


def supports_lut(inverter) -> bool:
    return all(hasattr(inverter, a) for a in ("pixel_fn", "z_range", "normaliser"))


SIZES = (33, 65, 129, 161)  # size="auto": the largest first, then the smallest that meets TARGET_DE
BAKE_VERSION = 4  # bump when baking changes: on-disk LUTs of another version are not used (3: z held in z_range;
                  # 4: a model that holds z is baked over exactly its hold cube)
TARGET_DE = 0.5  # max CIEDE2000 against the direct pixel function on a dense sample
PAD = 0.10  # fraction of the z span added on each side for learned models (frames stray outside training)


def bake_range(inverter, pad: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The z range a LUT covers: the model's z_range, widened by `pad` of its span on each side
    unless the inverter says its range is exact (classic: constant beyond it)."""
    hold = getattr(inverter, "z_hold", None)
    if hold is not None and pad is None:
        # the function holds z in this cube (constant beyond it): bake exactly over it, so the
        # hold's kink lies on the LUT's faces (the table clamps there too) instead of inside
        # cells, and no nodes are spent on the constant part
        return np.full(3, hold[0], np.float64), np.full(3, hold[1], np.float64)
    lo, hi = (np.asarray(v, np.float64).reshape(-1) * np.ones(3) for v in inverter.z_range)
    if pad is None:
        pad = 0.0 if getattr(inverter, "z_range_exact", False) else PAD
    span = hi - lo
    return lo - pad * span, hi + pad * span


def _bake_fn(inverter):
    """The function to bake: the unclipped one where the inverter offers it (the LUT's
    output is clipped after interpolation, so the gamut edge stays sharp)."""
    import inspect

    fn = inverter.pixel_fn
    try:
        if "clip" in inspect.signature(fn).parameters:
            return lambda z: fn(z, clip=False)
    except (TypeError, ValueError):
        pass
    return fn


def lut_for(inverter, size: int | str = DEFAULT_SIZE, pad: float | None = None) -> Lut3D:
    """The (cached) baked LUT of an inverter's pixel function.

    size="auto": the smallest of SIZES whose max ΔE2000 against the direct
    function (20k random points in range) is <= TARGET_DE, else the largest;
    the measured error is in `lut.meta["error"]`."""
    lo, hi = bake_range(inverter, pad)
    key = (model_key(inverter), size, tuple(np.round(lo, 7)), tuple(np.round(hi, 7)))
    with _LOCK:
        lut = _CACHE.get(key)
    if lut is None:
        lut = _disk_load(key)
    if lut is None:
        if size == "auto":
            from station.model.lut import dense_sample, lut_error

            z = dense_sample(lo, hi, 20_000, seed=1)

            def _baked(n):
                t = bake(_bake_fn(inverter), (lo, hi), n, meta={"key": repr(key[0])})
                t.meta["error"] = lut_error(t, inverter.pixel_fn, z)
                return t

            # The largest size first: when even it misses the target, no smaller one can
            # meet it, so it is the answer (one bake instead of all of them).
            lut = _baked(SIZES[-1])
            if lut.meta["error"]["max"] <= TARGET_DE:
                for n in SIZES[:-1]:
                    small = _baked(n)
                    if small.meta["error"]["max"] <= TARGET_DE:
                        lut = small
                        break
            if lut.meta["error"]["max"] > TARGET_DE:
                import logging

                logging.getLogger(__name__).warning(
                    "LUT %d^3 of %s: max ΔE2000 %.2f (p99 %.2f) against the direct model exceeds %.1f; "
                    "(a ReLU network bakes far worse than a smooth one such as SiLU)", lut.size,
                    getattr(inverter, "name", "model"), lut.meta["error"]["max"], lut.meta["error"]["p99"], TARGET_DE)
        else:
            lut = bake(_bake_fn(inverter), (lo, hi), int(size), meta={"key": repr(key[0])})
        _disk_save(key, lut)
    with _LOCK:
        if len(_CACHE) > 16:
            _CACHE.clear()
        _CACHE[key] = lut
    return lut


def _cache_file(key) -> Path | None:
    """Baked LUTs are kept on disk (a 161³ bake takes seconds): $STATION_CACHE_DIR, else
    $NUMBA_CACHE_DIR (the systemd unit's cache directory), else ~/.cache/station."""
    root = os.environ.get("STATION_CACHE_DIR") or os.environ.get("NUMBA_CACHE_DIR")
    root = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "station"
    digest = hashlib.sha256(repr((BAKE_VERSION, key)).encode()).hexdigest()[:24]
    return root / f"lut-{digest}.npz"


def _disk_load(key):
    path = _cache_file(key)
    try:
        with np.load(path, allow_pickle=False) as z:
            lut = Lut3D(table=z["table"], lo=z["lo"], hi=z["hi"], meta=json.loads(str(z["meta"])))
        return lut if lut.meta.get("key") == repr(key[0]) else None
    except (OSError, KeyError, ValueError):
        return None


def _disk_save(key, lut) -> None:
    path = _cache_file(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, table=lut.table, lo=lut.lo, hi=lut.hi, meta=np.asarray(json.dumps(lut.meta, default=str)))
        os.replace(tmp, path)
    except OSError:  # a read-only home: bake each time
        pass


def printed_lut(lut: Lut3D, print_settings) -> Lut3D:
    """`lut` with the print (printing.PrintSettings) composed after its pixel function: the
    table's (unclipped) values go through the print's per-channel curves.  Cached in-process,
    keyed by the model LUT and the settings; identity settings return `lut` itself."""
    if print_settings is None or print_settings.identity:
        return lut
    from station.pipeline.printing import printed_table

    key = ("print", id(lut), print_settings.key())
    with _LOCK:
        hit = _PRINTED.get(key)
    if hit is not None and hit[0] is lut:
        return hit[1]
    out = Lut3D(table=printed_table(lut.table, print_settings), lo=lut.lo, hi=lut.hi,
                meta={**lut.meta, "print": print_settings.to_dict()})
    with _LOCK:
        while len(_PRINTED) >= 2:  # a 161^3 table is 50 MB: keep the last two (a frame's master follows its preview)
            _PRINTED.pop(next(iter(_PRINTED)))
        _PRINTED[key] = (lut, out)
    return out


_PRINTED: dict[tuple, tuple] = {}


class LutInverter:
    """Inverter protocol: `inv(D) -> sRGB`, via the inner inverter's baked pixel function
    (with the print composed after it when `print` is given and not identity)."""

    def __init__(self, inverter, size: int | str = "auto", method: str = "tetrahedral", pad: float | None = None,
                 print=None):
        if not supports_lut(inverter):
            raise TypeError(f"{type(inverter).__name__} has no normaliser/pixel_fn/z_range to bake")
        self.direct = inverter
        self.method = method
        self.name = getattr(inverter, "name", "model")
        self.model_lut = lut_for(inverter, size, pad)
        self.print = print if print is not None and not print.identity else None
        self.lut = printed_lut(self.model_lut, self.print)
        self.size = self.lut.size
        self.z_range = inverter.z_range

    # the two-part contract passes through, so a LutInverter can be baked/exported again
    def normaliser(self, D, affine=None):
        return self.direct.normaliser(D, affine) if affine is not None else self.direct.normaliser(D)

    def pixel_fn(self, z):
        out = self.lut.apply(np.asarray(z, np.float32).reshape(-1, 3), method=self.method)
        return np.clip(out, 0.0, 1.0, out=out)

    def frame_affine(self, D):
        """The inner normaliser's (A, b), from a fixed ~262k-pixel 2-D strided sample of D
        (the same pixels fastmaster samples, so both paths agree exactly)."""
        fa = getattr(self.direct, "frame_affine", None)
        return fa(sample_frame(D)) if fa is not None else None

    def __call__(self, D: np.ndarray, affine=None) -> np.ndarray:
        D = np.asarray(D, np.float32)
        if affine is None:
            affine = self.frame_affine(D)
        if affine is not None:
            A, b = affine
            out = self.lut.apply(D, A=A, b=b, method=self.method)
        else:
            out = self.lut.apply(self.direct.normaliser(D), method=self.method)
        return np.clip(out, 0.0, 1.0, out=out)


def compiled(inverter, size: int | str = "auto", method: str = "tetrahedral", print=None):
    """`LutInverter(inverter, print=print)` when it can be baked, else `inverter` itself
    (the caller then applies the print after it: `printing.apply_srgb`)."""
    if isinstance(inverter, LutInverter):
        want = print if print is not None and not print.identity else None
        if want == inverter.print:
            return inverter
        import copy

        out = copy.copy(inverter)  # same model LUT, another print composed after it
        out.print = want
        out.lut = printed_lut(inverter.model_lut, want)
        return out
    if not supports_lut(inverter):
        return inverter
    return LutInverter(inverter, size, method, print=print)


def warm_up(inverter=None) -> float:
    """Compile (or load from numba's cache) every fast-path kernel and bake the LUT, on tiny
    inputs; returns the seconds it took.  Call once at daemon start so frame 1 is not slower."""
    import time

    from station.pipeline import fastdecode

    t0 = time.perf_counter()
    if inverter is None:
        from station.pipeline.classic import ClassicInverter

        inverter = ClassicInverter()
    inv = compiled(inverter)
    if isinstance(inv, LutInverter):
        D = np.linspace(0.0, 2.0, 8 * 8 * 3, dtype=np.float32).reshape(8, 8, 3)
        inv(D)
        inv.lut.apply_u16(np.zeros((4, 3), np.uint16), lambda v: np.zeros((len(v), 3)))
        from station.pipeline.printing import PrintSettings, printed_table

        printed_table(np.zeros((2, 2, 2, 3), np.float32), PrintSettings(exposure=0.5))  # the print's table kernel
    cfa = np.zeros((16, 16), np.uint16)
    b = fastdecode.Bayer(cfa=cfa, chan=np.array([[0, 1], [1, 2]]), black=np.zeros((2, 2), np.float32),
                         white=65535.0, meta={})
    fastdecode.resize_linear(fastdecode.bin_bayer(b, 1), 4)
    fastdecode.bin_to_size(b, 5)  # the fused bin + resize kernels
    fastdecode.bin_to_size(b, 3)
    return time.perf_counter() - t0
