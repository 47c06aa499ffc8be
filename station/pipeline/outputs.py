"""What both ways to a positive share: the result, its metadata, the preview's resize.

Both plans of the pipeline (stages.PLAIN: decode → invert as float; fastmaster.master_plan: one
uint16 pass for full-size masters) use these (the outputs themselves are written by the Write
stage through `write.write_positive`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from station.pipeline.base import NEGATIVE_BLUE_MAX, BaseEstimate  # noqa: F401 (NEGATIVE_BLUE_MAX: re-exported)


@dataclass
class ConvertResult:
    src: Path
    outputs: dict[str, Path]
    base: BaseEstimate
    timings: dict[str, float]
    positive_shape: tuple[int, int]
    warnings: list[str] = field(default_factory=list)  # one line each, e.g. "looks like a positive"
    sample: object | None = None  # roll.FrameSample when ConvertOptions(sample=True)
    rendering: str | None = None  # the id of the roll's rendering used, None for a per-frame one
    film: str | None = None  # the film type rendered: "colour" | "bw" | "slide" (ConvertOptions.film, or detected)




def positive_warning(base) -> str | None:
    """A colour negative's film base (its brightest tone) is orange: blue far below red and
    green.  A photo of a scene has no such base; say so (it is still inverted).  The shared
    scene RAWs give 0.52-1.26, the test negatives stay under the limit (docs/PIPELINE.md)."""
    rgb = np.asarray(base.rgb, np.float64).reshape(3)
    top = max(rgb[0], rgb[1])
    if top <= 0:
        return None
    ratio = rgb[2] / top
    if ratio <= NEGATIVE_BLUE_MAX:
        return None
    return (f"looks like a positive, not a colour negative: no orange film base (its brightest tone has "
            f"blue at {ratio:.2f} of red/green; a colour negative's is under {NEGATIVE_BLUE_MAX}); inverted anyway")


def resize_long_side(img: np.ndarray, long_side: int) -> np.ndarray:
    h, w = img.shape[:2]
    if max(h, w) <= long_side:
        return img
    from PIL import Image

    scale = long_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    chans = [Image.fromarray(img[..., c].astype(np.float32), "F").resize(size, Image.BILINEAR, reducing_gap=2.0) for c in range(3)]
    return np.stack([np.asarray(c) for c in chans], axis=2)


def output_meta(source_meta: dict, base: BaseEstimate, options, src: Path) -> dict:
    """What the outputs carry: the RAW's metadata plus how the station made the positive, the
    film's story (options.extra_meta: film_stock, film_type, roll, frame, shot_date; the type a
    frame was rendered as is station_film, set by the Write stage) and the output settings
    (station_colour_space, ...).  Field list: docs/METADATA.md."""
    from station.pipeline.metadata import model_id

    meta = dict(source_meta)
    meta.update(options.extra_meta)
    meta["station_base"] = [round(float(v), 6) for v in base.rgb]
    meta["station_base_source"] = base.source
    meta["station_method"] = getattr(options.inverter, "name", "default")
    mid = model_id(options.inverter)
    if mid:
        meta["station_model"] = mid
    meta["station_source"] = Path(src).name
    ps = options.print
    if ps is not None and not ps.identity:
        meta["station_print"] = ps.to_dict()
    rendering = getattr(options, "rendering", None)
    if rendering is not None:
        meta["station_rendering"] = rendering.id
    flat = getattr(options, "flatfield", None)
    if flat is not None:
        meta["station_flatfield"] = flat.id
    return meta
