"""Flat field on real DNGs: a light with a 25 % radial corner fall-off is measured from a frame of
the bare light and divided out (blank frame flat to 1 %, a grey negative's corners the same colour
as its centre after `station invert --flatfield`); frames that are not a bare light are refused."""
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from negatives import LIGHT, expose, with_rebate, write_negative_dng
from station.model.metrics import ciede2000
from station.pipeline.convert import ConvertOptions, convert_file
from station.pipeline.decode import decode
from station.pipeline.flatfield import FlatField, NotAFlatError, apply_flat, load_flat, measure_flat

H, W = 400, 600
FALL = 0.25  # the light is 25 % darker in the corners than in the centre


def falloff(h=H, w=W):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r2 = ((x - (w - 1) / 2) ** 2 + (y - (h - 1) / 2) ** 2) / (((w - 1) / 2) ** 2 + ((h - 1) / 2) ** 2)
    return (1.0 - FALL * r2)[..., None].astype(np.float32)


def station(*args):
    return subprocess.run([sys.executable, "-m", "station", *map(str, args)], capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    d = tmp_path_factory.mktemp("flat")
    light = np.broadcast_to(LIGHT.astype(np.float32), (H, W, 3))
    write_negative_dng(d / "light.dng", light * falloff(), seed=1)  # the bare light, uneven
    grey = np.full((H - 48, W - 48, 3), 0.18, np.float32)  # with its 24 px rebate: H x W
    # a step wedge away from the corners and the centre: the frame has a range of tones to invert
    grey[60:290, 80:180] = np.repeat(np.geomspace(0.01, 0.9, 10), 23)[:, None, None]
    write_negative_dng(d / "grey.dng", with_rebate(expose(grey), border=24) * falloff(), seed=2)
    write_negative_dng(d / "clipped.dng", np.minimum(light * falloff() * 1.25, 1.0), seed=3)
    scene = np.clip(np.random.default_rng(4).random((H // 20, W // 20, 1)).repeat(20, 0).repeat(20, 1), 0.05, 1)
    write_negative_dng(d / "slide.dng", light * falloff() * scene, seed=5)  # a neutral picture (a slide)
    return d


def _patch(img, where, n=8):
    h, w = img.shape[:2]
    y = {"top": 0, "mid": h // 2 - n // 2, "bottom": h - n}[where[0]]
    x = {"left": 0, "mid": w // 2 - n // 2, "right": w - n}[where[1]]
    return img[y:y + n, x:x + n].reshape(-1, 3).mean(axis=0)


CORNERS = [("top", "left"), ("top", "right"), ("bottom", "left"), ("bottom", "right")]


def test_a_blank_frame_under_a_25_percent_fall_off_is_flat_to_1_percent(frames):
    flat = load_flat(frames / "light.dng")
    assert 0.2 < flat.corner_falloff < 0.3, flat.corner_falloff  # it saw the fall-off
    rgb = decode(frames / "light.dng").rgb  # full size: the flat (from a half-size decode) resampled
    before = [np.abs(_patch(rgb, c) / _patch(rgb, ("mid", "mid")) - 1).max() for c in CORNERS]
    assert min(before) > 0.2, before  # the uncorrected corners are ~25 % dark
    out = apply_flat(rgb, flat)
    after = [np.abs(_patch(out, c) / _patch(out, ("mid", "mid")) - 1).max() for c in CORNERS]
    assert max(after) <= 0.01, after


def test_a_flat_field_file_round_trips_without_pickle(frames, tmp_path):
    flat = load_flat(frames / "light.dng")
    path = flat.save(tmp_path / "flat.npz")
    back = FlatField.load(path)
    assert back.id == flat.id and np.array_equal(back.grid, flat.grid) and back.source == "light.dng"
    with np.load(path, allow_pickle=False) as z:  # plain arrays only
        assert set(z.files) >= {"grid", "id"}
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a flat field"):
        FlatField.load(tmp_path / "bad.npz")


def _corner_de(pos, border=24):
    """Worst CIEDE2000 between a corner of the picture (just inside the rebate) and its centre."""
    pic = pos[border + 4: pos.shape[0] - border - 4, border + 4: pos.shape[1] - border - 4]
    n = 32 * pos.shape[0] // H  # 32 x 32 px at full size: the film's blue is dark and noisy
    centre = _patch(pic, ("mid", "mid"), n)
    return max(float(ciede2000(_patch(pic, c, n), centre)) for c in CORNERS)


def test_station_invert_flatfield_removes_the_grey_frames_corner_shift(frames, tmp_path):
    r = station("invert", frames / "grey.dng", "--out", tmp_path / "plain", "--format", "tiff")
    assert r.returncode == 0, r.stderr
    r = station("invert", frames / "grey.dng", "--out", tmp_path / "flat", "--format", "tiff",
                "--flatfield", frames / "light.dng")
    assert r.returncode == 0, r.stderr
    plain = tifffile.imread(tmp_path / "plain" / "grey.tif").astype(np.float64) / 65535
    flat = tifffile.imread(tmp_path / "flat" / "grey.tif").astype(np.float64) / 65535
    de_plain, de_flat = _corner_de(plain), _corner_de(flat)
    print(f"grey frame corner-to-centre dE00: {de_plain:.2f} without, {de_flat:.2f} with the flat field")
    assert de_plain > 5, de_plain  # the fall-off shows without the correction
    assert de_flat <= 1.0, de_flat
    with tifffile.TiffFile(tmp_path / "flat" / "grey.tif") as tif:
        assert load_flat(frames / "light.dng").id in tif.pages[0].description


@pytest.mark.parametrize("path", ["preview", "plain"])
def test_every_conversion_path_applies_the_flat_field(frames, tmp_path, path):
    from PIL import Image

    flat = load_flat(frames / "light.dng")
    out = {"preview": tmp_path / "p.jpg"} if path == "preview" else {"tiff": tmp_path / "p.tif"}
    opts = dict(half_size=True, preview_size=W) if path == "preview" else dict(compiled=False)
    res = {}
    for name, ff in (("without", None), ("with", flat)):
        o = {k: v.with_name(f"{name}-{v.name}") for k, v in out.items()}
        convert_file(frames / "grey.dng", o, ConvertOptions(flatfield=ff, **opts))
        p = next(iter(o.values()))
        img = (np.asarray(Image.open(p), np.float64) / 255 if path == "preview"
               else tifffile.imread(p).astype(np.float64) / 65535)
        border = 24 * img.shape[0] // H
        res[name] = _corner_de(img, border)
    assert res["without"] > 5 and res["with"] <= 1.5, res  # the preview is 8-bit and half size


def test_a_frame_with_film_in_it_is_refused_with_the_reason(frames, tmp_path):
    with pytest.raises(NotAFlatError, match="film in it"):
        load_flat(frames / "grey.dng")  # an orange negative
    with pytest.raises(NotAFlatError, match="film in it: structure"):
        load_flat(frames / "slide.dng")  # a neutral picture
    r = station("invert", frames / "grey.dng", "--out", tmp_path / "o", "--flatfield", frames / "slide.dng")
    assert r.returncode == 2 and "--flatfield" in r.stderr and "film in it" in r.stderr, r.stderr
    assert not list((tmp_path / "o").glob("*.tif"))


def test_a_clipped_or_dark_frame_is_refused(frames):
    with pytest.raises(NotAFlatError, match="clipped"):
        load_flat(frames / "clipped.dng")
    with pytest.raises(NotAFlatError, match="too dark"):
        measure_flat(decode(frames / "light.dng", half_size=True).rgb * 0.02)
