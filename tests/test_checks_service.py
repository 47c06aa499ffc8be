"""CheckService (the daemon plug-in of the frame checks) on generated DNGs and a stand-in event bus."""
from __future__ import annotations

import json

from helpers import PluginHost, wait_for
from negatives import write_negative_dng
from test_checks_frames import expose, good_frame, rebate_frame, textured_scene

from station.checks import CheckService, attach, check_file
from station.hooks import HookRunner




def test_service_checks_frames_in_order_and_flags_through_the_hook(tmp_path):
    inc = tmp_path / "in"
    (inc / "r1").mkdir(parents=True)
    frames = {"01": good_frame(1), "02": good_frame(1), "03": good_frame(3)}  # 02: film not advanced
    for name, lin in frames.items():
        write_negative_dng(inc / "r1" / f"{name}.dng", lin, seed=int(name))
    out = tmp_path / "flag.json"
    hooks = HookRunner({"frame_flagged": f'printf "%s\\n%s\\n" "$STATION_FRAME" "$STATION_CHECKS" > "{out}"'})
    events = []
    svc = CheckService(inc, hooks=hooks, publish=events.append)
    svc.start()
    try:
        for name in frames:
            # the metrics as a worker sends them: from the frame it decoded at preview size
            _, m = check_file(inc / "r1" / f"{name}.dng", preview_size=1024)
            ev = {"type": "metrics", "path": f"r1/{name}.dng", "roll": "r1", "metrics": m,
                  "frame": {"path": f"r1/{name}.dng", "roll": "r1", "state": "preview_written",
                            "preview": f"/o/r1/{name}.preview.jpg"}}
            svc.on_app_event(ev)
            svc.on_app_event(ev)  # the same transition twice: checked once
        # a preview event without metrics (the preview existed already): not checked, nothing decoded
        svc.on_app_event({"type": "metrics", "path": "r1/04.dng", "roll": "r1", "metrics": None, "frame": None})
        svc.on_app_event({"type": "frame", "frame": {"path": "r1/01.dng", "state": "master_written"}})  # ignored
        assert wait_for(lambda: svc.snapshot()["checked"] == 3)
    finally:
        svc.stop()
        hooks.stop(timeout=30)
    assert svc.findings("r1/01.dng") == [] and svc.findings("r1/03.dng") == []
    assert [f["check"] for f in svc.findings("r1/02.dng")] == ["duplicate"]
    assert [e["path"] for e in events] == ["r1/01.dng", "r1/02.dng", "r1/03.dng"]
    frame, checks = out.read_text().splitlines()
    assert frame == "02" and json.loads(checks)[0]["check"] == "duplicate"
    snap = svc.snapshot()
    assert snap["flagged"] == 1 and snap["errors"] == 0 and snap["unchecked"] == 1


def test_service_uses_worker_metrics_when_the_event_has_them(tmp_path):
    from station.checks import frame_metrics
    from test_checks_frames import positive

    ev = 1.6
    pos, D, lin = positive(rebate_frame(expose(textured_scene(8), scan_ev=ev), scan_ev=ev))
    m = json.loads(json.dumps(frame_metrics(pos, D, lin)))
    svc = CheckService(tmp_path)  # no RAW on disk: the metrics must come from the event
    svc.start()
    try:
        svc.on_app_event({"type": "metrics", "path": "x.dng", "roll": None, "metrics": m, "frame": {}})
        assert wait_for(lambda: svc.snapshot()["checked"] == 1)
    finally:
        svc.stop()
    assert [f["check"] for f in svc.findings("x.dng")] == ["clipping"]


def test_attach_and_disable(tmp_path):
    App = PluginHost  # tests/helpers.py

    paths = {"incoming": str(tmp_path)}
    assert attach(App({"paths": paths, "checks": {"enabled": False}})) is None
    app = App({"paths": paths, "checks": {"focus_ratio": 0.3}})
    svc = attach(app)
    assert app.services["checks"] is svc and svc.p.focus_ratio == 0.3 and app.subs == [svc.on_app_event]
    assert app.commands["checks"]()["checked"] == 0
