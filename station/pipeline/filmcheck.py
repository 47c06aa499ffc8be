"""The film types' figures on generated film: `station evaluate --film bw|slide`.

For each scene (film.procedural_scene with film.scene_with_charts' ColorChecker and 12-step grey
ramp) a negative or slide of the special stock is generated (model/specialfilm.py), framed by
its rebate, sprocket holes and holder, written as a Bayer DNG and converted by the real engine
(`convert_file`, the fused master plan for a DNG) with the film type asked for.  From the
16-bit TIFF it reads back, per grey-ramp patch (centre boxes), CIELAB L* and C*; the figures:

* `grey_cmax`: the largest C* over the ramp (a B&W positive: 0; the target is <= 1);
* `order_kept`: L* rises strictly along the ramp (tonal order);
* `film`: the type the conversion reports (`ConvertResult.film`: for "auto", the detected one);
* `ramp_dL`: mean |L* - L* of the ground truth| over the ramp (how far the tones are).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

STOCK_FOR = {"bw": "silver_bw_400", "slide": "e6_slide_100"}


def ramp_lab(tiff: Path, boxes, offset: tuple[int, int]) -> np.ndarray:
    """(12, 3) mean CIELAB of each ramp patch of a 16-bit sRGB TIFF."""
    import tifffile
    from skimage.color import rgb2lab

    pos = tifffile.imread(tiff).astype(np.float64) / 65535.0
    dy, dx = offset
    return np.array([rgb2lab(pos[y0 + dy:y1 + dy, x0 + dx:x1 + dx]).reshape(-1, 3).mean(0) for y0, y1, x0, x1 in boxes])


def check(stock: str, film: str, seed: int = 0, size: int = 240, folder: Path | None = None, **sim) -> dict:
    """One generated frame of `stock` converted with `film`: the figures of the module docstring."""
    from skimage.color import rgb2lab

    from station.model import film as filmsim
    from station.model import specialfilm as sf
    from station.pipeline.convert import ConvertOptions, convert_file

    scene, boxes = filmsim.scene_with_charts(filmsim.procedural_scene(size, seed=seed))
    scan = sf.simulate(stock, scene, seed=seed, **sim)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(folder or tmp)
        src = folder / f"{stock}-{seed}.dng"
        filmsim.write_dng(src, sf.with_rebate(scan))
        out = folder / f"{stock}-{seed}.{film}.tif"
        res = convert_file(src, {"tiff": out}, ConvertOptions(film=film, overwrite=True))
        lab = ramp_lab(out, boxes["ramp"], sf.rebate_offset(scene.shape))
    truth = np.array([rgb2lab(scan.positive[y0:y1, x0:x1].astype(np.float64)).reshape(-1, 3).mean(0)
                      for y0, y1, x0, x1 in boxes["ramp"]])
    C = np.hypot(lab[:, 1], lab[:, 2])
    return {"stock": stock, "film_asked": film, "film": res.film, "seed": seed, "size": size,
            "grey_cmax": float(C.max()), "grey_cmean": float(C.mean()),
            "order_kept": bool(np.all(np.diff(lab[:, 0]) > 0)),
            "ramp_L": [round(float(v), 1) for v in lab[:, 0]],
            "ramp_dL": float(np.mean(np.abs(lab[:, 0] - truth[:, 0]))), "warnings": list(res.warnings)}


def evaluate(film: str, seeds=(0, 1, 2), modes=None, **sim) -> list[dict]:
    """`check` for the stock of `film` ("bw" or "slide") over seeds, with --film <film>, auto and
    (for comparison) colour, the path every input took before film types."""
    stock = STOCK_FOR[film]
    return [check(stock, mode, seed, **sim) for mode in (modes or (film, "auto", "colour")) for seed in seeds]
