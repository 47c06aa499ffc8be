"""Config is read with a safe YAML loader (a python tag is refused with exit status 2 and never
executed); model files are loaded without pickle (a pickle-bearing .npz is refused and its
payload never runs)."""
import os

import numpy as np
import pytest

from helpers import run_station_config



def test_python_yaml_tag_refused_with_exit_2_and_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    for d in ("in", "out", "st"):
        (tmp_path / d).mkdir()
    cfg = tmp_path / "evil.yaml"
    cfg.write_text(
        f"paths:\n  incoming: {tmp_path / 'in'}\n  output: {tmp_path / 'out'}\n  state: {tmp_path / 'st'}\n"
        f"hooks: !!python/object/apply:os.system ['touch {marker}']\n"
        f"web: !!python/object:argparse.Namespace {{address: off}}\n")
    r = run_station_config(cfg, "--web", "off")
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("station: config"), r.stderr
    assert not marker.exists(), "the YAML payload ran"
    assert not (tmp_path / "st" / "journal.sqlite").exists()


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_bearing_model_refused(tmp_path):
    from station.errors import StationError
    from station.pipeline.invert import get_inverter

    marker = tmp_path / "pwned"
    model = tmp_path / "evil.npz"
    arr = np.empty(1, dtype=object)
    arr[0] = _Payload(marker)
    np.savez(model, weights=arr, meta=np.array('{"arch": "mlp"}'))
    with np.load(model, allow_pickle=True) as z:  # the file really carries a pickle
        assert z.files == ["weights", "meta"]
    assert not marker.exists()
    with pytest.raises(StationError) as ei:
        get_inverter("mlp", model)
    assert ei.value.reason or str(ei.value)
    assert not marker.exists(), "the model's pickle payload ran"
    try:
        from station.model import load_model
    except ImportError:
        return  # the learned-model loader is not in this tree: get_inverter refused above
    with pytest.raises(Exception):
        load_model(model)
    assert not marker.exists(), "load_model ran the pickle payload"
