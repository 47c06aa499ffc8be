"""A roll's calibrated film base (state/rolls/<roll>/manifest.json) reaches every frame the daemon inverts."""
import json

import numpy as np
import tifffile

from negatives import BASE_DENSITY, LIGHT, expose, grey_ramp, write_negative_dng

TRUE_BASE = (LIGHT * 10.0 ** -BASE_DENSITY).tolist()


def _base_used(tif) -> tuple[list, str]:
    desc = json.loads(tifffile.TiffFile(tif).pages[0].description)
    return desc["station_base"], desc["station_base_source"]


def test_daemon_inverts_a_roll_with_its_calibrated_base(daemon_factory):
    d = daemon_factory()
    roll = d.state / "rolls" / "r1"
    roll.mkdir(parents=True)
    (roll / "manifest.json").write_text(json.dumps({"name": "r1", "base": {"rgb": TRUE_BASE}}))
    (d.incoming / "r1").mkdir(parents=True)
    (d.incoming / "loose").mkdir(parents=True)
    d.start()
    # a tight crop with no rebate: only the calibration knows the real base
    scan = expose(grey_ramp(120, 180))
    write_negative_dng(d.incoming / "r1" / "01.dng", scan)
    write_negative_dng(d.incoming / "loose" / "02.dng", scan)  # a folder without a calibrated roll
    d.wait_for(lambda: d.done(["r1/01.dng", "loose/02.dng"]), what="both masters")
    base, _ = _base_used(d.output / "r1" / "01.tif")
    np.testing.assert_allclose(base, TRUE_BASE, rtol=1e-4)
    base2, _ = _base_used(d.output / "loose" / "02.tif")
    assert np.all(np.asarray(base2) < np.asarray(TRUE_BASE) * 0.9)  # the estimate lands on image density
