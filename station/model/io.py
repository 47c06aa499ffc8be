"""Model files: `.npz` (loaded with allow_pickle=False) holding the MLP weights as
float32 arrays and one JSON string `meta`:

    {"format": "station-mlp", "version": 1,
     "architecture": {"width", "depth", "skip", "activation"},
     "normaliser": {"kind", "lo", "hi"},
     "z_range": [[lo x3], [hi x3]],         # where training inputs lay (LUT baking)
     "training": {...report...}}

`load_model(path)` returns an `MLPInverter` implementing the Inverter protocol.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from station.model.mlp import MLPConfig, mlp_apply
from station.model.normalise import Normaliser

FORMAT = "station-mlp"
VERSION = 1
BATCH = 262144
DEFAULT_MODEL = Path(__file__).resolve().parent / "data" / "default.npz"


class MLPInverter:
    """A learned inverter: per-frame normaliser + pixel-wise MLP.

    `inv(D)`: D HxWx3 float32 densities above base -> HxWx3 float32 sRGB in [0,1].
    `inv.normaliser(D)` -> z (same shape); `inv.pixel_fn(z (N,3))` -> (N,3) in [0,1];
    `inv.z_range` = (lo (3,), hi (3,)) float32."""

    name = "mlp"

    def __init__(self, config: MLPConfig, weights: dict[str, np.ndarray], normaliser: Normaliser,
                 z_range=None, meta: dict | None = None, path: str | None = None):
        self.config = config
        self.weights = {k: np.ascontiguousarray(v, np.float32) for k, v in weights.items()}
        self.norm = normaliser
        zr = np.asarray(z_range if z_range is not None else [[-0.25] * 3, [1.25] * 3], np.float32)
        self.z_range = (zr[0].copy(), zr[1].copy())
        self.meta = meta or {}
        self.path = path
        self._module = None
        self._device = None

    def __getstate__(self):
        # pickled for batch workers (station/batch): the weights travel, not the torch module
        # (which may sit on this machine's GPU); a worker builds its own on first use
        state = dict(self.__dict__)
        state["_module"] = state["_device"] = None
        return state

    # -- the contract
    def normaliser(self, D: np.ndarray, affine=None) -> np.ndarray:
        return self.norm(D, affine)

    def frame_affine(self, D: np.ndarray):
        """(A, b) for this frame (to fix them for a whole roll, pass `affine=` to __call__)."""
        return self.norm.params(D)

    def _torch_module(self):
        if self._module is None:
            import torch
            from station.model.mlp import make_module
            self._device = "cuda" if torch.cuda.is_available() else "cpu"
            self._module = make_module(self.config).load(self.weights).to(self._device).eval()
        return self._module

    @property
    def z_hold(self) -> tuple[float, float]:
        """The range every channel of z is held in (the narrowest of `z_range`): beyond it
        `pixel_fn` is constant, so a LUT baked over exactly this cube is exact outside it."""
        return float(np.max(self.z_range[0])), float(np.min(self.z_range[1]))

    def pixel_fn(self, z: np.ndarray, use_torch: bool | None = None, clip: bool = True) -> np.ndarray:
        """(N,3) float32 normalised densities -> (N,3) float32 sRGB in [0,1] (z held
        within `z_range`, where the network was trained).

        clip=False returns the network's raw output: a LUT baked from the smooth,
        unclipped function and clipped after interpolation follows the gamut edge
        far more closely than one baked from the clipped function."""
        # Beyond the range the network saw in training it extrapolates (and its output turns
        # back down past the highlight: a frame 2 EV over its roll's rendering came out
        # solarised); held at the edge instead, so out-of-range tones clip.  One range for
        # all three channels (the narrowest), so a neutral input stays neutral when held.
        lo, hi = self.z_hold
        z = np.clip(np.asarray(z, np.float32).reshape(-1, 3), lo, hi)
        out = np.empty_like(z)
        try:
            import torch
        except ImportError:  # pragma: no cover
            torch = None
        if use_torch is False or torch is None:
            for i in range(0, len(z), BATCH):
                out[i:i + BATCH] = mlp_apply(z[i:i + BATCH], self.weights, self.config)
        else:
            mod = self._torch_module()
            with torch.inference_mode():
                for i in range(0, len(z), BATCH):
                    t = torch.from_numpy(z[i:i + BATCH]).to(self._device)
                    out[i:i + BATCH] = mod(t).float().cpu().numpy()
        return np.clip(out, 0.0, 1.0) if clip else out

    def __call__(self, D: np.ndarray, affine=None) -> np.ndarray:
        D = np.asarray(D, np.float32)
        if D.ndim != 3 or D.shape[2] != 3:
            raise ValueError(f"expected HxWx3 densities, got shape {D.shape}")
        z = self.normaliser(D, affine)
        return self.pixel_fn(z.reshape(-1, 3)).reshape(D.shape)

    @property
    def description(self) -> str:
        c = self.config
        prior = f", residual (±{c.bound:g}) on the classic inversion" if c.prior == "classic" else ""
        return (f"MLP 3x{'x'.join([str(c.width)] * c.depth)}x3 {c.activation}{' +skip' if c.skip else ''}{prior}, "
                f"normaliser {self.norm.kind}")


def save_model(path, inverter: MLPInverter, training: dict | None = None) -> Path:
    """Write the model atomically (temp file + rename); returns the path."""
    path = Path(path)
    meta = {
        "format": FORMAT, "version": VERSION,
        "architecture": inverter.config.to_dict(),
        "normaliser": inverter.norm.to_dict(),
        "z_range": [np.asarray(inverter.z_range[0]).tolist(), np.asarray(inverter.z_range[1]).tolist()],
        "training": training if training is not None else inverter.meta.get("training", {}),
    }
    arrays = {k: np.asarray(v, np.float32) for k, v in inverter.weights.items()}
    arrays["meta"] = np.array(json.dumps(meta))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name, suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a model file is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    inverter.meta = meta
    return path


def load_model(path=None) -> MLPInverter:
    """Load a model file (default: the shipped model).  Raises ValueError naming the
    file if it is unreadable, not a station model, or its weights do not match its
    declared architecture."""
    path = Path(path) if path is not None else DEFAULT_MODEL
    if not path.is_file():
        raise ValueError(f"model file {path}: not found")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ValueError(f"model file {path}: cannot be read ({exc.strerror})") from None
    if magic != b"PK\x03\x04":  # np.load would take anything else for a pickle and say so
        raise ValueError(f"model file {path}: not an .npz file (no zip signature; a station model is "
                         "written by `station train`)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise ValueError(f"model file {path}: not a readable .npz model ({exc})") from None
    if "meta" not in arrays:
        raise ValueError(f"model file {path}: no 'meta' entry; not a station model")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"model file {path}: metadata is not JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"model file {path}: format is {meta.get('format') if isinstance(meta, dict) else None!r}, expected {FORMAT!r}")
    if int(meta.get("version", 0)) > VERSION:
        raise ValueError(f"model file {path}: version {meta.get('version')} is newer than this station supports ({VERSION})")
    try:
        config = MLPConfig.from_dict(meta["architecture"])
        norm = Normaliser.from_dict(meta.get("normaliser", {}))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"model file {path}: bad architecture/normaliser metadata ({exc})") from None
    expected = dict(config.shapes())
    if set(arrays) != set(expected):
        raise ValueError(f"model file {path}: weights {sorted(arrays)} do not match the architecture {config.to_dict()} "
                         f"(expected {sorted(expected)})")
    for k, shp in expected.items():
        a = arrays[k]
        if tuple(a.shape) != tuple(shp):
            raise ValueError(f"model file {path}: weight {k} has shape {tuple(a.shape)}, architecture needs {shp}")
        if a.dtype.kind != "f" or not np.all(np.isfinite(a)):
            raise ValueError(f"model file {path}: weight {k} is not finite floating point")
    zr = meta.get("z_range")
    try:
        zr = np.asarray(zr, np.float32) if zr is not None else None
        if zr is not None and zr.shape != (2, 3):
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"model file {path}: z_range must be 2x3") from None
    return MLPInverter(config, arrays, norm, zr, meta, str(path))
