"""The print through `station invert` on real DNGs: flags, the fast paths, metadata, bad values."""
import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from PIL import Image

from negatives import expose, grey_ramp, with_rebate, write_negative_dng
from station.pipeline.printing import PrintSettings, srgb_to_linear


def station(*args):
    return subprocess.run([sys.executable, "-m", "station", *map(str, args)], capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def neg(tmp_path_factory):
    d = tmp_path_factory.mktemp("negs")
    scene = np.clip(grey_ramp(160, 240) * np.array([0.95, 0.9, 0.85]), 0.01, 1).astype(np.float32)
    write_negative_dng(d / "frame.dng", with_rebate(expose(scene), border=24), seed=1)
    return d / "frame.dng"


def _lin(path):
    return srgb_to_linear(tifffile.imread(path).astype(np.float64) / 65535.0)


def _run(neg, out, *flags, method="mlp"):
    r = station("invert", neg, "--out", out, "--method", method, *flags)
    assert r.returncode == 0, r.stderr
    return r


@pytest.mark.parametrize("method", ["mlp", "classic"])
def test_exposure_and_white_balance_flags_change_the_positive(neg, tmp_path, method):
    _run(neg, tmp_path / "plain", method=method)
    r = _run(neg, tmp_path / "up", "--exposure", "1", method=method)
    assert "print: exposure +1.00 EV" in r.stderr
    _run(neg, tmp_path / "cool", "--wb", "4000", method=method)
    plain, up, cool = (_lin(tmp_path / d / "frame.tif") for d in ("plain", "up", "cool"))
    # +1 EV doubles the linear light wherever it is not clipped
    ok = (plain > 0.02) & (plain < 0.4)
    assert ok.sum() > 1000
    ratio = up[ok] / plain[ok]
    assert abs(np.median(ratio) - 2.0) < 0.02 and np.percentile(np.abs(ratio - 2.0), 95) < 0.08, np.percentile(ratio, [5, 50, 95])
    # corrected for 4000 K light: a cooler picture (more blue, less red), same luminance
    m_plain, m_cool = plain[24:-24, 24:-24].reshape(-1, 3).mean(0), cool[24:-24, 24:-24].reshape(-1, 3).mean(0)
    assert m_cool[2] / m_cool[0] > 1.3 * m_plain[2] / m_plain[0], (m_plain, m_cool)
    luma = np.array([0.2126, 0.7152, 0.0722])
    assert abs(luma @ m_cool - luma @ m_plain) < 0.03 * (luma @ m_plain)


def test_the_print_is_recorded_in_the_outputs_metadata(neg, tmp_path):
    out = tmp_path / "out"
    _run(neg, out, "--exposure", "-0.5", "--wb", "5200,8", "--contrast", "1.2", "--black", "0.02", "--white", "0.98")
    want = {"exposure": -0.5, "temperature": 5200.0, "tint": 8.0, "contrast": 1.2, "black": 0.02, "white": 0.98}
    with tifffile.TiffFile(out / "frame.tif") as tif:
        desc = json.loads(tif.pages[0].description)
    assert desc["station_print"] == want
    with Image.open(out / "frame.jpg") as im:
        assert json.loads(im.getexif()[270])["station_print"] == want
    plain = tmp_path / "plain"
    _run(neg, plain)
    with tifffile.TiffFile(plain / "frame.tif") as tif:
        assert "station_print" not in json.loads(tif.pages[0].description)


def test_identity_flags_give_the_same_pixels(neg, tmp_path):
    _run(neg, tmp_path / "a")
    _run(neg, tmp_path / "b", "--exposure", "0", "--wb", "6500,0", "--contrast", "1", "--black", "0", "--white", "1")
    assert np.array_equal(tifffile.imread(tmp_path / "a" / "frame.tif"), tifffile.imread(tmp_path / "b" / "frame.tif"))


@pytest.mark.parametrize("flags, line", [
    (("--exposure", "9"), "station invert: --exposure: must be between -5 and 5, got 9"),
    (("--wb", "warm"), "station invert: --wb: must be TEMPERATURE or TEMPERATURE,TINT"),
    (("--wb", "1000"), "station invert: --wb: must be between 2500 and 25000, got 1000"),
    (("--black", "0.6"), "station invert: --black: must be between 0 and 0.5, got 0.6"),
    (("--contrast", "0"), "station invert: --contrast: must be between 0.25 and 4, got 0"),
])
def test_bad_print_flags_are_usage_errors(neg, tmp_path, flags, line):
    out = tmp_path / "out"
    r = station("invert", neg, "--out", out, *flags)
    assert r.returncode == 2
    assert line in r.stderr, r.stderr
    assert not out.exists() or not list(out.iterdir())


def test_all_paths_apply_the_same_print(neg, tmp_path):
    """Fast master (uint16 LUT), float LUT path and the unbaked inverter agree on a printed frame."""
    from station.pipeline.convert import ConvertOptions, convert_file
    from station.pipeline.invert import get_inverter

    s = PrintSettings(exposure=0.6, temperature=4800, tint=-10, contrast=1.4, black=0.03, white=0.95)
    inv = get_inverter("mlp")
    outs = {}
    for name, kw in (("fast", {}), ("float", {"crop": "none", "half_size": False}), ("direct", {"compiled": False})):
        opts = ConvertOptions(inverter=inv, print=s, **kw)
        if name == "float":  # the plain path with the LUT: no fast master for a TIFF-less call
            from station.pipeline.convert import invert_decoded
            from station.pipeline.decode import decode

            pos, _, _ = invert_decoded(decode(neg), opts)
            outs[name] = pos
            continue
        res = convert_file(neg, {"tiff": tmp_path / f"{name}.tif"}, opts)
        assert res.outputs
        outs[name] = tifffile.imread(tmp_path / f"{name}.tif").astype(np.float32) / 65535.0
    inner = slice(30, -30)
    a, b, c = (outs[k][inner, inner] for k in ("fast", "float", "direct"))
    assert np.abs(a - b).max() < 2e-3
    # the direct (unbaked) model differs from its LUT by the bake's own error (ΔE <= 0.5)
    assert np.abs(a - c).mean() < 4e-3 and np.abs(a - c).max() < 0.03
    plain = convert_file(neg, {"tiff": tmp_path / "plain.tif"}, ConvertOptions(inverter=inv))
    assert plain.outputs
    assert np.abs(tifffile.imread(tmp_path / "plain.tif")[inner, inner] / 65535.0 - a).mean() > 0.02


def test_a_preview_remade_with_another_print_is_not_decoded_again(neg, tmp_path, monkeypatch):
    import os

    import station.pipeline.fastdecode as fd
    from station.pipeline.convert import ConvertOptions, convert_file

    calls = []
    real = fd.decode_fast
    monkeypatch.setattr(fd, "decode_fast", lambda *a, **k: calls.append(a) or real(*a, **k))
    src = tmp_path / "f.dng"
    src.write_bytes(neg.read_bytes())
    outs = []
    for i, s in enumerate((None, PrintSettings(exposure=1.0), PrintSettings(temperature=4000))):
        out = tmp_path / f"p{i}.jpg"
        convert_file(src, {"preview": out}, ConvertOptions(half_size=True, print=s))
        outs.append(np.asarray(Image.open(out), np.float64))
    assert len(calls) == 1  # decoded once, printed three ways
    assert outs[1].mean() > outs[0].mean() + 20 and outs[2][..., 2].mean() > outs[0][..., 2].mean() + 5
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the file changed: decoded again
    convert_file(src, {"preview": tmp_path / "p3.jpg"}, ConvertOptions(half_size=True))
    assert len(calls) == 2
