"""`.cube` export: the file format and a round trip (parse back, apply, compare)."""
from __future__ import annotations

import numpy as np
import pytest

from station.cli import main
from station.model import lut as L
from station.pipeline.classic import ClassicInverter


def _data_lines(path):
    return [ln for ln in path.read_text().splitlines()
            if ln and not ln.startswith("#") and ln.split()[0][0] in "-0123456789."]


def test_export_lut_cli_round_trip(tmp_path, capsys):
    out = tmp_path / "classic.cube"
    assert main(["export-lut", "--method", "classic", "--size", "17", str(out)]) == 0
    text = out.read_text()
    assert "LUT_3D_SIZE 17" in text and "DOMAIN_MIN 0.0 0.0 0.0" in text and "DOMAIN_MAX 1.0 1.0 1.0" in text
    assert len(_data_lines(out)) == 17 ** 3
    cube = L.read_cube(out)
    inv = ClassicInverter()
    ref = L.bake(inv.pixel_fn, inv.z_range, 17)
    np.testing.assert_allclose(cube.lo, ref.lo, atol=1e-6)
    np.testing.assert_allclose(cube.table, np.clip(ref.table, 0, 1), atol=1e-6)  # 6 decimals written
    # applied to normalised densities, the parsed cube matches the direct classic curve
    z = L.dense_sample(*inv.z_range, 50_000, seed=7)
    de = L.delta_e2000(inv.pixel_fn(z), cube.apply(z))
    assert de.max() <= 1.0  # 17^3 grid; the 65^3 default is tested in test_lut_error
    # and as a plain [0,1]-domain cube (what Resolve/ffmpeg see): x = (z - lo) / (hi - lo)
    plain = L.Lut3D(cube.table, 0.0, 1.0)
    np.testing.assert_allclose(plain.apply(L.cube_input(z, cube)), cube.apply(z), atol=1e-5)
    assert main(["export-lut", "--method", "classic", "--size", "17", str(out)]) == 2  # no silent overwrite


def test_cube_is_red_fastest(tmp_path):
    n = 3
    table = np.zeros((n, n, n, 3), np.float32)
    for r in range(n):
        for g in range(n):
            for b in range(n):
                table[r, g, b] = (r / 2, g / 2, b / 2)  # identity
    p = L.write_cube(tmp_path / "id.cube", L.Lut3D(table, 0.0, 1.0))
    rows = [tuple(float(v) for v in ln.split()) for ln in _data_lines(p)]
    assert rows[0] == (0.0, 0.0, 0.0)
    assert rows[1] == (0.5, 0.0, 0.0)  # red moves first
    assert rows[n] == (0.0, 0.5, 0.0)
    assert rows[n * n] == (0.0, 0.0, 0.5)
    back = L.read_cube(p)
    x = np.random.default_rng(0).random((1000, 3)).astype(np.float32)
    np.testing.assert_allclose(back.apply(x), x, atol=1e-5)  # identity cube is exact under interpolation


def test_read_cube_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.cube"
    bad.write_text("LUT_3D_SIZE 2\n0 0 0\n1 1 1\n")
    with pytest.raises(ValueError, match="entries"):
        L.read_cube(bad)
    bad.write_text("LUT_1D_SIZE 2\n0 0 0\n1 1 1\n")
    with pytest.raises(ValueError):
        L.read_cube(bad)


def test_export_calibrated_on_a_frame(tmp_path):
    """--frame bakes the roll's base and normaliser in: the cube then reads density / 3."""
    from station.commands.bench import synth_negative_cfa
    from station.commands.export_lut import DMAX, build
    from station.io.dng import write_bayer_dng
    from station.pipeline.base import estimate_base
    from station.pipeline.fastdecode import decode_fast
    from station.pipeline.lutinvert import sample_frame
    from station.pipeline.normalise import density
    from test_lut_error import RandomMLP

    dng = write_bayer_dng(tmp_path / "f.dng", synth_negative_cfa(600, 400, seed=2))
    out = tmp_path / "roll.cube"
    assert main(["export-lut", "--method", "classic", "--size", "65", "--frame", str(dng), str(out)]) == 0
    assert "calibrated on f.dng" in out.read_text()
    dec = decode_fast(dng, long_side=1600)
    D = density(dec.rgb, estimate_base(dec.rgb).rgb)  # HxWx3: the normalisers meter the frame's centre
    x = np.clip(D / DMAX, 0, 1).reshape(-1, 3)
    for inv, limit in ((RandomMLP(gain=2.0), 0.5), (ClassicInverter(), 2.0)):
        # classic: its white-clip kink is on a grid node in z, not in this frame's density grid
        cube = L.read_cube(out) if isinstance(inv, ClassicInverter) else build(inv, 65, str(dng))[0]
        ref = inv.pixel_fn(inv.normaliser(D, inv.frame_affine(sample_frame(D))).reshape(-1, 3))
        assert L.delta_e2000(ref, cube.apply(x)).max() <= limit


@pytest.mark.skipif(__import__("shutil").which("ffmpeg") is None, reason="ffmpeg not installed")
def test_ffmpeg_reads_the_cube(tmp_path):
    """A third-party parser (ffmpeg's lut3d filter) gives the same colours as our own apply."""
    import subprocess

    import tifffile

    out = tmp_path / "c.cube"
    assert main(["export-lut", "--method", "classic", "--size", "33", str(out)]) == 0
    cube = L.read_cube(out)
    rng = np.random.default_rng(0)
    x = rng.random((64, 64, 3)).astype(np.float32)
    src, dst = tmp_path / "in.tif", tmp_path / "out.tif"
    tifffile.imwrite(src, (x * 65535 + 0.5).astype(np.uint16), photometric="rgb")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-vf", f"lut3d=file={out}:interp=tetrahedral",
                    "-pix_fmt", "rgb48le", str(dst)], check=True, timeout=60)
    got = tifffile.imread(dst).astype(np.float64)[..., :3] / 65535
    ref = L.Lut3D(cube.table, 0.0, 1.0).apply(((x * 65535 + 0.5).astype(np.uint16) / 65535).astype(np.float32))
    assert np.abs(got - ref).max() <= 2e-3
    assert L.delta_e2000(ref, got).max() <= 0.3
