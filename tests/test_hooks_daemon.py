"""Hooks on the real daemon (station.app.App, in this process): positive_ready once per frame with
the documented variables; a hanging hook is killed at its timeout and stalls no frame."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import helpers
from negatives import expose, grey_ramp, with_rebate, write_negative_dng

from station.hooks import HookRunner, register

app_mod = pytest.importorskip("station.app")
config = pytest.importorskip("station.config")

DEADLINE = 120.0


def wait_for(pred, deadline=DEADLINE):
    return helpers.wait_for(pred, deadline)


def drop(incoming: Path, name: str, seed: int) -> Path:
    """Like a tether: write a dot-file, then rename it in."""
    scan = with_rebate(expose(grey_ramp(120, 180) * (0.6 + 0.1 * seed)), border=20)
    tmp = write_negative_dng(incoming / f".{name}.tmp", scan, seed=seed)
    final = incoming / name
    os.replace(tmp, final)
    return final


def run_app(tmp_path: Path, hooks: dict, body) -> HookRunner:
    """Run the real App's main loop here (it installs signal handlers: main thread only) while
    `body(app, runner)` drops files from another thread; returns the runner."""
    for d in ("in", "out", "st"):
        (tmp_path / d).mkdir()
    cfg = config.validate({"paths": {"incoming": str(tmp_path / "in"), "output": str(tmp_path / "out"),
                                     "state": str(tmp_path / "st")},
                           "inversion": {"method": "classic"}, "web": {"address": "off"},
                           "workers": {"count": 1}})
    app = app_mod.App(cfg)
    runner = register(app, HookRunner(hooks, raw_root=tmp_path / "in", grace=0.5))
    errors = helpers.run_app(app, lambda: body(app, runner))
    if errors:
        raise errors[0]
    return runner


def lines(p: Path) -> list[str]:
    return p.read_text().splitlines() if p.exists() else []


def test_positive_ready_once_per_frame_on_the_daemon(tmp_path):
    log = tmp_path / "hook.log"
    hooks = {"positive_ready": f'echo "$STATION_EVENT|$STATION_FRAME|$STATION_RAW|$STATION_POSITIVE" >> "{log}"'}

    def body(app, runner):
        for i in range(3):
            drop(tmp_path / "in", f"f{i}.dng", i)
        assert wait_for(lambda: len(lines(log)) >= 3), lines(log)
        time.sleep(0.5)  # a late duplicate would show up now (not a timing assertion)

    run_app(tmp_path, hooks, body)
    got = sorted(lines(log))
    assert len(got) == 3, got
    for i, line in enumerate(got):
        event, frame, raw, positive = line.split("|")
        assert (event, frame) == ("positive_ready", f"f{i}")
        assert raw == str(tmp_path / "in" / f"f{i}.dng")
        assert positive.endswith(f"f{i}.tif") and Path(positive).is_file()


def test_a_hanging_hook_is_killed_and_stalls_no_frame(tmp_path):
    log = tmp_path / "hook.log"
    started = tmp_path / "hang.started"
    hang = (f'if [ "$STATION_FRAME" = f0 ]; then touch "{started}"; sleep 300; fi; '
            f'echo "$STATION_FRAME" >> "{log}"')
    hooks = {"positive_ready": {"command": hang, "timeout": 6}}  # ample for two small frames (~0.5 s)
    seen = {}

    def body(app, runner):
        drop(tmp_path / "in", "f0.dng", 0)
        assert wait_for(started.exists)
        for i in (1, 2):
            drop(tmp_path / "in", f"f{i}.dng", i)
        # the next frames are inverted while the first frame's hook still hangs
        assert wait_for(lambda: all((tmp_path / "out" / f"f{i}.tif").exists() for i in (1, 2)))
        seen["hook_pending"] = runner.snapshot()["events"]["positive_ready"]["timeouts"] == 0
        assert wait_for(lambda: sorted(lines(log)) == ["f1", "f2"]), lines(log)

    runner = run_app(tmp_path, hooks, body)
    assert seen["hook_pending"], "the first hook should still have been hanging when f1 and f2 were done"
    ev = runner.snapshot()["events"]["positive_ready"]
    assert ev["timeouts"] == 1 and ev["runs"] == 3
