"""The pixel-wise MLP f: z (3,) -> sRGB (3,).

Pure function first (`mlp_apply`, numpy), thin `torch.nn.Module` second
(`PixelMLP`), which exports to / imports from the same list of arrays.

Architecture (`MLPConfig`): ``depth`` hidden layers of ``width`` units with
activation ``relu`` (the paper's, sklearn's default) or ``silu``; optional
``skip``: a linear 3->3 path from the input added to the output (the network
then only learns the non-linear remainder).  The paper's 3x64x64x64 is
``MLPConfig(width=64, depth=3, skip=False, activation="relu")``.

``prior="classic"`` makes the model a *bounded residual* on the classic density
inversion: output = classic(z) + ``bound`` * tanh(network(z)), where classic(z)
is the classic print curve on base-anchored z (z = 0 the film base, 1 the frame's
highlight: linear y = HEADROOM * 10**(prior_range * (z - 1)), sRGB, a mild
S-curve).  However far from its training data a frame lies, the output stays
within ``bound`` (sRGB units, per channel) of the classic inversion.

Output is unbounded in training (apart from the residual's bound); inference clips to [0, 1].
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

ACTIVATIONS = ("relu", "silu", "tanh")
PRIORS = ("none", "classic")
PRIOR_HEADROOM = 0.92
PRIOR_CONTRAST = 0.25


@dataclass(frozen=True)
class MLPConfig:
    width: int = 64
    depth: int = 3
    skip: bool = False
    activation: str = "relu"
    prior: str = "none"         # "classic": output = classic(z) + bound * tanh(net(z))
    bound: float = 0.2          # the residual's bound (sRGB units) with a prior
    prior_range: float = 2.2    # log10 exposure range of the prior from the highlight (z=1) to the base (z=0)
    neutral: float = 0.0        # > 0: the residual's colour (its part beyond the channels' mean) fades out
                                # as the input's channel spread max(z)-min(z) falls below this: a neutral
                                # input gives a neutral output (the prior is the same curve per channel)

    def __post_init__(self):
        if not (1 <= int(self.width) <= 4096 and 1 <= int(self.depth) <= 16):
            raise ValueError(f"bad MLP size width={self.width} depth={self.depth}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r} (known: {', '.join(ACTIVATIONS)})")
        if self.prior not in PRIORS:
            raise ValueError(f"unknown prior {self.prior!r} (known: {', '.join(PRIORS)})")
        if not (0.0 < float(self.bound) <= 1.0 and 0.5 <= float(self.prior_range) <= 6.0):
            raise ValueError(f"bad residual bound {self.bound} or prior range {self.prior_range}")
        if not (0.0 <= float(self.neutral) <= 1.0):
            raise ValueError(f"bad neutral width {self.neutral}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "MLPConfig":
        return cls(int(d["width"]), int(d["depth"]), bool(d.get("skip", False)), str(d.get("activation", "relu")),
                   str(d.get("prior", "none")), float(d.get("bound", 0.2)), float(d.get("prior_range", 2.2)),
                   float(d.get("neutral", 0.0)))

    def shapes(self) -> list[tuple[str, tuple]]:
        """Names and shapes of the weight arrays, in order (W is out x in, as torch)."""
        dims = [3] + [self.width] * self.depth + [3]
        out = []
        for i in range(len(dims) - 1):
            out += [(f"W{i}", (dims[i + 1], dims[i])), (f"b{i}", (dims[i + 1],))]
        if self.skip:
            out += [("skipW", (3, 3)), ("skipb", (3,))]
        return out

    def n_params(self) -> int:
        return int(sum(np.prod(s) for _, s in self.shapes()))


def _act(name: str, x: np.ndarray) -> np.ndarray:
    if name == "relu":
        return np.maximum(x, 0)
    if name == "silu":
        return x / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))
    return np.tanh(x)


def prior_apply(z: np.ndarray, config: MLPConfig) -> np.ndarray:
    """The classic print curve on base-anchored z (numpy, (N,3) -> (N,3) sRGB in [0,1])."""
    z = np.asarray(z, np.float32)
    y = np.clip(PRIOR_HEADROOM * np.power(10.0, np.minimum(config.prior_range * (z - 1.0), 0.2)), 0.0, 1.0)
    v = np.where(y <= 0.0031308, 12.92 * y, 1.055 * np.power(np.maximum(y, 0.0031308), 1 / 2.4) - 0.055)
    return (v + PRIOR_CONTRAST * (v - 0.5) * (1.0 - np.abs(2.0 * v - 1.0))).astype(np.float32)


def mlp_apply(z: np.ndarray, weights: dict[str, np.ndarray], config: MLPConfig) -> np.ndarray:
    """Evaluate the MLP on a batch.

    z: (N, 3) float32 normalised densities.  weights: name -> array as `config.shapes()`.
    Returns (N, 3) float32, unclipped."""
    z = np.asarray(z, np.float32)
    h = z
    n = config.depth + 1
    for i in range(n):
        h = h @ weights[f"W{i}"].T + weights[f"b{i}"]
        if i < n - 1:
            h = _act(config.activation, h)
    if config.skip:
        h = h + z @ weights["skipW"].T + weights["skipb"]
    if config.prior == "classic":
        r = config.bound * np.tanh(h)
        if config.neutral > 0:
            r = neutral_fade(z, r, config.neutral)
        h = prior_apply(z, config) + r
    return h.astype(np.float32)


def neutral_fade(z, r, width: float):
    """The residual r (N,3) with its colour (r minus its channel mean) scaled by
    w = smoothstep(spread / width), spread = max(z) - min(z) per pixel: 0 for a neutral
    input, 1 from `width` on.  Works on numpy arrays and torch tensors alike."""
    if hasattr(z, "amax"):  # torch
        spread = z.amax(dim=1, keepdim=True) - z.amin(dim=1, keepdim=True)
        t = (spread / width).clamp(0.0, 1.0)
        m = r.mean(dim=1, keepdim=True)
    else:
        spread = z.max(axis=1, keepdims=True) - z.min(axis=1, keepdims=True)
        t = np.clip(spread / width, 0.0, 1.0)
        m = r.mean(axis=1, keepdims=True)
    w = t * t * (3.0 - 2.0 * t)
    return m + w * (r - m)


def _torch():
    import torch
    return torch


def make_module(config: MLPConfig):
    """A torch.nn.Module computing `mlp_apply` (input (N,3) -> output (N,3))."""
    torch = _torch()
    nn = torch.nn

    class PixelMLP(nn.Module):
        def __init__(self, cfg: MLPConfig):
            super().__init__()
            self.cfg = cfg
            dims = [3] + [cfg.width] * cfg.depth + [3]
            self.layers = nn.ModuleList(nn.Linear(dims[i], dims[i + 1]) for i in range(len(dims) - 1))
            self.skip = nn.Linear(3, 3) if cfg.skip else None
            self.act = {"relu": nn.ReLU(), "silu": nn.SiLU(), "tanh": nn.Tanh()}[cfg.activation]

        def forward(self, z):
            h = z
            for i, layer in enumerate(self.layers):
                h = layer(h)
                if i < len(self.layers) - 1:
                    h = self.act(h)
            if self.skip is not None:
                h = h + self.skip(z)
            if self.cfg.prior == "classic":
                r = self.cfg.bound * torch.tanh(h)
                if self.cfg.neutral > 0:
                    r = neutral_fade(z, r, self.cfg.neutral)
                h = self.prior(z) + r
            return h

        def prior(self, z):
            c = self.cfg
            y = (PRIOR_HEADROOM * torch.pow(10.0, torch.clamp(c.prior_range * (z - 1.0), max=0.2))).clamp(0.0, 1.0)
            v = torch.where(y <= 0.0031308, 12.92 * y, 1.055 * torch.pow(y.clamp(min=0.0031308), 1 / 2.4) - 0.055)
            return v + PRIOR_CONTRAST * (v - 0.5) * (1.0 - torch.abs(2.0 * v - 1.0))

        def export(self) -> dict[str, np.ndarray]:
            out = {}
            for i, layer in enumerate(self.layers):
                out[f"W{i}"] = layer.weight.detach().cpu().numpy().astype(np.float32)
                out[f"b{i}"] = layer.bias.detach().cpu().numpy().astype(np.float32)
            if self.skip is not None:
                out["skipW"] = self.skip.weight.detach().cpu().numpy().astype(np.float32)
                out["skipb"] = self.skip.bias.detach().cpu().numpy().astype(np.float32)
            return out

        def load(self, weights: dict[str, np.ndarray]):
            with torch.no_grad():
                for i, layer in enumerate(self.layers):
                    layer.weight.copy_(torch.from_numpy(np.asarray(weights[f"W{i}"], np.float32)))
                    layer.bias.copy_(torch.from_numpy(np.asarray(weights[f"b{i}"], np.float32)))
                if self.skip is not None:
                    self.skip.weight.copy_(torch.from_numpy(np.asarray(weights["skipW"], np.float32)))
                    self.skip.bias.copy_(torch.from_numpy(np.asarray(weights["skipb"], np.float32)))
            return self

    return PixelMLP(config)
