"""Training the learned inverter: data from the film generator and/or user pairs,
frame-level train/validation/test split, MSE + L2 penalty (weight decay, as in
the paper), early stopping on validation loss, a report on the held-out frames.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from station.model.io import MLPInverter
from station.model.mlp import MLPConfig, make_module
from station.model.normalise import Normaliser

log = logging.getLogger(__name__)
IMAGE_EXT = {".tif", ".tiff", ".png", ".jpg", ".jpeg"}


class TrainingError(ValueError):
    """Training cannot proceed (bad data, NaN loss...)."""


@dataclass
class Frame:
    """One training image: densities above base, target sRGB, valid-pixel mask."""
    D: np.ndarray                  # HxWx3 float32
    positive: np.ndarray           # HxWx3 float32 sRGB [0,1]
    mask: np.ndarray | None = None  # HxW bool
    name: str = ""


@dataclass
class TrainConfig:
    mlp: MLPConfig = field(default_factory=MLPConfig)
    normaliser: Normaliser = field(default_factory=Normaliser)
    epochs: int = 40
    lr: float = 2e-3
    weight_decay: float = 1e-6
    batch: int = 4096
    patience: int = 5
    pixels_per_frame: int = 8000
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0
    device: str | None = None      # None: cuda if available
    max_minutes: float | None = None
    init: MLPInverter | None = None   # fine-tuning: start from this model's weights (its architecture and normaliser)
    init_pull: float = 1e-2           # fine-tuning: L2 penalty towards the initial weights (L2-SP)


# ----------------------------------------------------------------------------- data
def generated_frames(n: int, seed: int = 0, size: int = 160, stocks=None, base_jitter: float = 0.01,
                     stock_jitter: float = 1.0, wide: float = 0.0) -> list[Frame]:
    """n generated frames; densities use the simulated base times a small random error
    (a base estimate is never exact)."""
    from station.model import film
    rng = np.random.default_rng(seed + 7919)
    out = []
    for i, s in enumerate(film.generate_pairs(n, seed=seed, size=size, stocks=stocks, jitter=stock_jitter,
                                                       wide=wide)):
        base = s.base_rgb * (1.0 + rng.normal(size=3) * base_jitter)
        D = -np.log10(np.maximum(s.camera_rgb, 1e-6) / base).astype(np.float32)
        out.append(Frame(D, s.positive, None, f"gen{i:04d}:{s.params.stock}"))
    return out


def read_image(path: Path) -> tuple[np.ndarray, int]:
    """Read an 8/16-bit image -> (HxWx3 float32 in [0,1], bits)."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile
            a = tifffile.imread(path)
        else:
            from PIL import Image
            with Image.open(path) as im:
                a = np.asarray(im.convert("RGB") if im.mode not in ("RGB", "I;16", "I;16B") else im)
    except Exception as exc:  # noqa: BLE001 - any decoder error is a bad file
        raise TrainingError(f"{path}: cannot read image ({exc})") from None
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, 2)
    if a.ndim != 3 or a.shape[2] < 3:
        raise TrainingError(f"{path}: not an RGB image (shape {a.shape})")
    a = a[..., :3]
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0, 8
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0, 16
    if a.dtype.kind == "f":
        return np.clip(a.astype(np.float32), 0, None), 32
    raise TrainingError(f"{path}: unsupported pixel type {a.dtype}")


def find_pairs(folder: Path) -> list[tuple[Path, Path]]:
    """Match negative/positive files by name (stem) in `Original_resized/`+`Inverted_resized/`
    or `negatives/`+`positives/`."""
    folder = Path(folder)
    for neg_dir, pos_dir in (("Original_resized", "Inverted_resized"), ("negatives", "positives")):
        nd, pd = folder / neg_dir, folder / pos_dir
        if nd.is_dir() and pd.is_dir():
            break
    else:
        raise TrainingError(f"{folder}: expected sub-folders Original_resized/ + Inverted_resized/ or negatives/ + positives/")
    negs = {p.stem: p for p in sorted(nd.iterdir()) if p.suffix.lower() in IMAGE_EXT}
    poss = {p.stem: p for p in sorted(pd.iterdir()) if p.suffix.lower() in IMAGE_EXT}
    if len(negs) != len(poss) or set(negs) != set(poss):
        only_n = sorted(set(negs) - set(poss))[:5]
        only_p = sorted(set(poss) - set(negs))[:5]
        raise TrainingError(f"{folder}: {len(negs)} negatives but {len(poss)} positives with matching names "
                            f"(only negative: {only_n}, only positive: {only_p})")
    if len(negs) < 2:
        raise TrainingError(f"{folder}: need at least 2 pairs, found {len(negs)}")
    return [(negs[k], poss[k]) for k in sorted(negs)]


def estimate_base_simple(rgb: np.ndarray) -> np.ndarray:
    """Film base estimate without the pipeline: the per-channel 99.5th percentile of the
    negative (the least dense film).  The commands pass the pipeline's `estimate_base`
    instead (`pair_frames(base_fn=...)`); the model package never imports the pipeline."""
    flat = rgb.reshape(-1, 3)
    return np.maximum(np.percentile(flat, 99.5, axis=0), 1e-4).astype(np.float32)


def pair_frames(folder: Path, negative_encoding: str = "auto", register: bool = True,
                base_fn=None) -> list[Frame]:
    """Load, linearise, register a folder of pairs -> Frames (masks mark registered overlap).

    base_fn(linear negative HxWx3) -> film base (3,): the pipeline's estimator, passed in by
    the caller (default: `estimate_base_simple`)."""
    base_fn = base_fn or estimate_base_simple
    from station.model.film import srgb_decode
    from station.model.register import RegistrationError, register_pair
    frames = []
    for neg_p, pos_p in find_pairs(folder):
        neg, bits = read_image(neg_p)
        pos, _ = read_image(pos_p)
        pos = np.clip(pos, 0, 1)
        enc = negative_encoding if negative_encoding != "auto" else ("srgb" if bits == 8 else "linear")
        if enc == "srgb":
            neg = srgb_decode(neg).astype(np.float32)
        mask = None
        if register:
            try:
                reg = register_pair(neg, pos)
            except RegistrationError as exc:
                raise TrainingError(f"{neg_p.name} / {pos_p.name}: cannot register the pair ({exc})") from None
            pos, mask = reg.positive, reg.mask
            log.info("registered %s: %s, rotation %.2f deg, scale %.3f, %d inliers, correlation %.3f",
                     neg_p.stem, reg.method, reg.rotation_deg, reg.scale, reg.inliers, reg.ncc)
        elif pos.shape != neg.shape:
            raise TrainingError(f"{neg_p.name} / {pos_p.name}: sizes differ and registration is off")
        base = np.asarray(base_fn(neg), np.float32)
        D = -np.log10(np.maximum(neg, 1e-6) / base).astype(np.float32)
        frames.append(Frame(D, pos.astype(np.float32), mask, neg_p.stem))
    return frames


def split_frames(frames: list[Frame], cfg: TrainConfig):
    """Frame-level split -> (train, val, test); at least one frame in each when possible."""
    n = len(frames)
    if n < 2:
        raise TrainingError(f"need at least 2 images to train, got {n}")
    idx = np.random.default_rng(cfg.seed).permutation(n)
    n_test = max(1, int(round(n * cfg.test_fraction))) if n >= 3 else 0
    n_val = max(1, int(round(n * cfg.val_fraction)))
    if n - n_test - n_val < 1:
        n_test = 0
    val = [frames[i] for i in idx[:n_val]]
    test = [frames[i] for i in idx[n_val:n_val + n_test]]
    train = [frames[i] for i in idx[n_val + n_test:]]
    return train, val, test


def sample_pixels(frames: list[Frame], norm: Normaliser, per_frame: int, rng) -> tuple[np.ndarray, np.ndarray]:
    zs, ys = [], []
    for f in frames:
        z = norm(f.D).reshape(-1, 3)
        y = f.positive.reshape(-1, 3)
        ok = np.all(np.isfinite(f.D.reshape(-1, 3)), 1)
        if f.mask is not None:
            ok &= f.mask.reshape(-1)
        idx = np.flatnonzero(ok)
        if len(idx) == 0:
            continue
        pick = rng.choice(idx, size=min(per_frame, len(idx)), replace=False)
        zs.append(z[pick])
        ys.append(y[pick])
    if not zs:
        raise TrainingError("no valid pixels to train on")
    return np.concatenate(zs).astype(np.float32), np.concatenate(ys).astype(np.float32)


def _tqdm(total, desc):
    try:
        from tqdm import tqdm
        return tqdm(total=total, desc=desc, unit="epoch", leave=False)
    except ImportError:  # tqdm missing: a minimal stand-in
        class _P:
            def update(self, n=1): pass
            def set_postfix(self, **kw): log.info("%s %s", desc, kw)
            def close(self): pass
        return _P()


# ----------------------------------------------------------------------------- training
def fit(train_frames: list[Frame], val_frames: list[Frame], cfg: TrainConfig, progress: bool = True) -> tuple[MLPInverter, dict]:
    """Train an MLP on the frames; returns the inverter and a history dict."""
    import torch
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if cfg.init is not None:   # fine-tuning: the initial model's architecture, normaliser and weights
        cfg.mlp, cfg.normaliser = cfg.init.config, cfg.init.norm
    zt, yt = sample_pixels(train_frames, cfg.normaliser, cfg.pixels_per_frame, rng)
    zv, yv = sample_pixels(val_frames, cfg.normaliser, max(2000, cfg.pixels_per_frame // 2), rng)
    z_range = np.percentile(zt, [0.05, 99.95], axis=0).astype(np.float32)
    if cfg.init is not None:   # the LUT range must still cover what the initial model was made for
        z0 = np.asarray(cfg.init.z_range, np.float32)
        z_range = np.stack([np.minimum(z0[0], z_range[0]), np.maximum(z0[1], z_range[1])])
    net = make_module(cfg.mlp).to(device)
    anchor = None
    if cfg.init is not None:
        net.load(cfg.init.weights)
        anchor = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.3, patience=max(1, cfg.patience // 2 - 1))
    Zt, Yt = torch.from_numpy(zt).to(device), torch.from_numpy(yt).to(device)
    Zv, Yv = torch.from_numpy(zv).to(device), torch.from_numpy(yv).to(device)
    best, best_state, bad, hist = math.inf, None, 0, {"train": [], "val": []}
    with torch.no_grad():
        hist["initial_val"] = float(torch.mean((net(Zv).clamp(0, 1) - Yv) ** 2))
    if cfg.init is not None:   # early stopping keeps the initial model unless training beats it on validation
        best, best_state = hist["initial_val"], {k: v.detach().clone() for k, v in net.state_dict().items()}
    t0 = time.time()
    bar = _tqdm(cfg.epochs, "train") if progress else None
    stop_reason = "epochs"
    for epoch in range(cfg.epochs):
        net.train()
        perm = torch.randperm(len(Zt), device=device)
        tot = 0.0
        for i in range(0, len(Zt), cfg.batch):
            b = perm[i:i + cfg.batch]
            opt.zero_grad(set_to_none=True)
            loss = torch.mean((net(Zt[b]) - Yt[b]) ** 2)
            if anchor is not None and cfg.init_pull > 0:
                loss = loss + cfg.init_pull * sum(torch.sum((p - a) ** 2) for p, a in zip(net.parameters(), anchor))
            if not torch.isfinite(loss):
                raise TrainingError(f"loss became {loss.item()} at epoch {epoch + 1}; try a lower --lr")
            loss.backward()
            opt.step()
            tot += loss.item() * len(b)
        net.eval()
        with torch.no_grad():
            vl = float(torch.mean((net(Zv).clamp(0, 1) - Yv) ** 2))
        if not math.isfinite(vl):
            raise TrainingError(f"validation loss became {vl} at epoch {epoch + 1}")
        hist["train"].append(tot / len(Zt))
        hist["val"].append(vl)
        sched.step(vl)
        if vl < best - 1e-7:
            best, bad = vl, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            bad += 1
        if bar:
            bar.update(1)
            bar.set_postfix(train=f"{hist['train'][-1]:.5f}", val=f"{vl:.5f}")
        if bad >= cfg.patience:
            stop_reason = f"early stop (no val improvement in {cfg.patience} epochs)"
            break
        if cfg.max_minutes and time.time() - t0 > 60 * cfg.max_minutes:
            stop_reason = f"time limit {cfg.max_minutes} min"
            break
    if bar:
        bar.close()
    net.load_state_dict(best_state)
    inv = MLPInverter(cfg.mlp, net.cpu().export(), cfg.normaliser, z_range)
    hist.update(best_val_mse=best, epochs_run=len(hist["val"]), stop=stop_reason, seconds=round(time.time() - t0, 1),
                train_pixels=int(len(zt)), device=device)
    return inv, hist


def frame_report(inv: MLPInverter, frames: list[Frame]) -> dict:
    """R^2, mean CIEDE2000 and PSNR of the inverter on whole frames (masked)."""
    from station.model.metrics import ciede2000, psnr, r2
    preds, tgts = [], []
    for f in frames:
        out = inv(f.D)
        m = np.ones(f.D.shape[:2], bool) if f.mask is None else f.mask
        preds.append(out[m])
        tgts.append(f.positive[m])
    if not preds:
        return {}
    p, t = np.concatenate(preds), np.concatenate(tgts)
    return {"frames": len(frames), "r2": round(r2(p, t), 4), "mean_de2000": round(float(ciede2000(p, t).mean()), 3),
            "psnr_db": round(psnr(p, t), 2)}


def train(frames: list[Frame], cfg: TrainConfig, progress: bool = True) -> tuple[MLPInverter, dict]:
    """Split, fit, report.  Returns (inverter, report) - the report goes into the model file."""
    tr, va, te = split_frames(frames, cfg)
    if cfg.normaliser.kind == "learned" and cfg.normaliser.weights is None:
        from station.model.normalise import fit_learned
        cfg.normaliser = fit_learned([f.D for f in tr], [f.positive for f in tr], [f.mask for f in tr])
    inv, hist = fit(tr, va, cfg, progress)
    report = {
        "architecture": cfg.mlp.to_dict(), "normaliser": cfg.normaliser.kind,
        "init": (cfg.init.path or "model") if cfg.init is not None else None,
        "split": {"train": len(tr), "val": len(va), "test": len(te)},
        "epochs_run": hist["epochs_run"], "stop": hist["stop"], "seconds": hist["seconds"],
        "initial_val_mse": round(hist["initial_val"], 6), "best_val_mse": round(hist["best_val_mse"], 6), "train_pixels": hist["train_pixels"],
        "device": hist["device"], "lr": cfg.lr, "weight_decay": cfg.weight_decay,
        "loss_curve_val": [round(v, 6) for v in hist["val"]],
        "test": frame_report(inv, te) if te else {},
        "val": frame_report(inv, va),
    }
    inv.meta = {"training": report}
    return inv, report
