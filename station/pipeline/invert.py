"""One interface for every inversion method.

An inverter is a callable `inverter(D) -> positive`: D is HxWx3 float32
density above the film base (normalise.density), the positive is HxWx3
float32 sRGB-encoded in [0, 1].  `get_inverter(method, model_path)` builds
one: `classic` (no model) or `mlp` (a model file; the shipped default when
no path is given).
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from station.errors import ModelError

METHODS = ("mlp", "classic")


class Inverter(Protocol):
    name: str

    def __call__(self, D: np.ndarray) -> np.ndarray: ...


def default_model_path() -> Path | None:
    p = Path(__file__).resolve().parent.parent / "model" / "data" / "default.npz"
    return p if p.exists() else None


def default_method() -> str:
    """`mlp` when a default model ships with the package, else `classic`."""
    return "mlp" if default_model_path() else "classic"


def get_inverter(method: str | None = None, model_path: str | Path | None = None) -> Inverter:
    method = method or ("mlp" if model_path else default_method())
    if method == "classic":
        from station.pipeline.classic import ClassicInverter

        return ClassicInverter()
    if method == "mlp":
        path = Path(model_path) if model_path else default_model_path()
        if path is None:
            raise ModelError(None, "method 'mlp' needs --model FILE (no default model is installed)")
        try:
            from station.model import load_model
        except ImportError as exc:
            raise ModelError(path, f"the learned model code is not available ({exc})") from None
        if not path.exists():
            raise ModelError(path, "model file not found")
        try:
            model = load_model(path)
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(path, f"not a usable model file ({exc})") from None
        if not getattr(model, "name", None):
            model.name = "mlp"
        return model
    raise ModelError(None, f"unknown method {method!r} (choose from {', '.join(METHODS)})")
