"""Config validators and builders of the hands-free features (autoroll, liveview, checks)."""
from __future__ import annotations

from concurrent.futures import Future

from helpers import PluginHost

from station.autoroll import AUTOROLL_DEFAULTS, from_config, validate_autoroll_config
from station.checks import CheckParams, checks_from_config, validate_checks_config
from station.hooks import HookRunner, register
from station.settle import SettleParams, liveview_from_config, validate_liveview_config


def test_autoroll_config():
    assert validate_autoroll_config(None) == []
    assert validate_autoroll_config(dict(AUTOROLL_DEFAULTS)) == []
    assert validate_autoroll_config({"settle": 0}) == []
    errs = validate_autoroll_config({"frames": 0, "settle": -1, "advance_timeout": 0, "speed": 2})
    assert [e.split(":")[0] for e in errs] == ["autoroll.frames", "autoroll.settle", "autoroll.advance_timeout",
                                               "autoroll.speed"]
    assert validate_autoroll_config({"frames": True})[0].startswith("autoroll.frames")
    assert validate_autoroll_config([1])[0].startswith("autoroll: must be a mapping")

    def capture():
        f = Future()
        f.set_result([])
        return f

    ar = from_config(capture, HookRunner({"advance": "true"}), {"frames": 2, "settle": 0})
    assert ar.start()["frames"] == 2  # the configured default count
    assert ar.wait(30) and ar.snapshot()["frame"] == 2


def test_liveview_and_checks_config():
    assert validate_liveview_config(None) == []
    assert validate_liveview_config({"enabled": True, "still_s": 0.8, "interval": 0.1, "shift": 3}) == []
    errs = validate_liveview_config({"enabled": "yes", "still_s": "long", "shift": 1.5, "nope": 1})
    assert [e.split(":")[0] for e in errs] == ["liveview.enabled", "liveview.still_s", "liveview.shift",
                                               "liveview.nope"]
    on, params, interval = liveview_from_config({"enabled": True, "still_s": 0.8, "interval": 0.1})
    assert on and interval == 0.1 and params == SettleParams(still_s=0.8)
    assert validate_checks_config({"enabled": False, "focus_ratio": 0.4}) == []
    assert validate_checks_config({"focus_ratio": -1})[0].startswith("checks.focus_ratio")
    on, cp = checks_from_config({"enabled": False, "focus_ratio": 0.4})
    assert not on and cp == CheckParams(focus_ratio=0.4)


def test_hooks_register_with_an_app(tmp_path):
    app = PluginHost({})
    out = tmp_path / "p.txt"
    runner = register(app, HookRunner({"positive_ready": f'echo "$STATION_POSITIVE" > "{out}"'}))
    assert app.services == {"hooks": runner}
    app.subs[0]({"type": "frame", "frame": {"path": "a/01.dng", "state": "master_written", "tiff": "/o/01.tif"}})
    runner.stop(timeout=30)
    assert out.read_text().strip() == "/o/01.tif"
    assert app.commands["hooks"]()["events"]["positive_ready"]["runs"] == 1
