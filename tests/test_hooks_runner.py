"""Event hooks: variables, shell and argv forms, timeouts that kill the process group, no blocking."""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import pytest

from station.hooks import EVENTS, VARIABLES, HookRunner, parse_hooks, validate_hooks_config

PY = sys.executable
DUMP_ENV = (
    "import json, os, sys; "
    "p = sys.argv[1]; "
    "open(p + '.tmp', 'w').write(json.dumps({k: v for k, v in os.environ.items() if k.startswith('STATION_')})); "
    "os.replace(p + '.tmp', p)"
)


def wait_for(pred, deadline_s=20.0, step=0.02):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); look at its state
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        return state != "Z"
    except OSError:
        return False


def test_fire_runs_once_with_documented_variables(tmp_path):
    out = tmp_path / "env.json"
    runner = HookRunner({"frame_captured": [PY, "-c", DUMP_ENV, str(out)]})
    fut = runner.fire("frame_captured", roll="portra-01", frame="07", raw="/in/portra-01/07.CR3")
    res = fut.result(timeout=30)
    assert res.ok and res.returncode == 0
    env = json.loads(out.read_text())
    assert set(VARIABLES) <= set(env)
    assert env["STATION_EVENT"] == "frame_captured"
    assert env["STATION_ROLL"] == "portra-01"
    assert env["STATION_FRAME"] == "07"
    assert env["STATION_RAW"] == "/in/portra-01/07.CR3"
    assert env["STATION_POSITIVE"] == "" and env["STATION_REASON"] == ""
    runner.stop()
    snap = runner.snapshot()
    assert snap["events"]["frame_captured"]["runs"] == 1
    assert snap["events"]["frame_captured"]["failures"] == 0


def test_shell_string_sees_variables(tmp_path):
    out = tmp_path / "shell.txt"
    runner = HookRunner({"positive_ready": f'printf "%s|%s" "$STATION_EVENT" "$STATION_POSITIVE" > "{out}"'})
    res = runner.fire("positive_ready", positive="/out/r/01.tif").result(timeout=30)
    assert res.ok
    assert out.read_text() == "positive_ready|/out/r/01.tif"
    runner.stop()


def test_unconfigured_event_is_a_no_op_and_unknown_event_is_refused():
    runner = HookRunner({})
    assert runner.fire("roll_started", roll="x") is None
    assert runner.run_sync("advance") is None
    with pytest.raises(ValueError):
        runner.fire("no_such_event")


def test_failing_hook_is_logged_and_counted_and_the_next_one_still_runs(tmp_path, caplog):
    out = tmp_path / "second.txt"
    runner = HookRunner({"error": 'echo "boom on $STATION_REASON" >&2; exit 4',
                         "roll_complete": f'echo done > "{out}"'})
    with caplog.at_level(logging.ERROR, logger="station.hooks"):
        res = runner.fire("error", reason="frame 3").result(timeout=30)
    assert res.returncode == 4 and not res.ok
    assert "boom on frame 3" in res.output
    assert any("exited with status 4" in r.getMessage() and "boom on frame 3" in r.getMessage() for r in caplog.records)
    assert runner.fire("roll_complete").result(timeout=30).ok
    assert out.read_text().strip() == "done"
    snap = runner.snapshot()
    assert snap["events"]["error"]["failures"] == 1
    assert snap["recent_failures"][0]["returncode"] == 4
    runner.stop()


def test_command_that_cannot_start_reports_127(tmp_path):
    runner = HookRunner({"roll_started": [str(tmp_path / "missing-script")]})
    res = runner.fire("roll_started").result(timeout=30)
    assert res.returncode == 127 and not res.ok
    runner.stop()


def test_hanging_hook_is_killed_with_its_children_and_blocks_nothing(tmp_path):
    pidfile = tmp_path / "child.pid"
    marker = tmp_path / "captured.txt"
    hang = f'sleep 300 & echo $! > "{pidfile}"; wait'
    results = []
    runner = HookRunner({"positive_ready": {"command": hang, "timeout": 1.5},
                         "frame_captured": f'echo "$STATION_FRAME" >> "{marker}"'},
                        on_result=results.append, grace=0.5)
    hung = runner.fire("positive_ready", frame="01")
    assert hung is not None
    assert wait_for(pidfile.exists)
    child = int(pidfile.read_text().strip() or 0)
    assert child > 0
    # While that hook hangs, the next frame's hook runs: the hanging one blocks nothing.
    runner.fire("frame_captured", frame="02")
    assert wait_for(lambda: marker.exists() and marker.read_text().strip() == "02")
    assert not hung.done(), "the hanging hook should still be running when the other event's hook finished"
    res = hung.result(timeout=30)
    assert res.timed_out and res.returncode is None and not res.ok
    assert wait_for(lambda: not pid_alive(child)), "the hook's child process outlived the timeout kill"
    assert runner.snapshot()["events"]["positive_ready"]["timeouts"] == 1
    assert any(r.timed_out for r in results)
    runner.stop()


def test_hooks_of_one_event_run_in_order(tmp_path):
    out = tmp_path / "order.txt"
    runner = HookRunner({"frame_captured": f'echo "$STATION_FRAME" >> "{out}"'})
    futs = [runner.fire("frame_captured", frame=f"{i:02d}") for i in range(1, 9)]
    for f in futs:
        assert f.result(timeout=30).ok
    assert out.read_text().split() == [f"{i:02d}" for i in range(1, 9)]
    runner.stop()


def test_run_sync_returns_exit_codes_and_none_on_timeout(tmp_path):
    runner = HookRunner({"advance": 'exit "$ADV_CODE"'}, grace=0.2)
    assert runner.run_sync("advance", env={"ADV_CODE": "0"}) == 0
    assert runner.run_sync("advance", env={"ADV_CODE": "3"}) == 3
    assert runner.run_sync("advance", env={"ADV_CODE": "7"}) == 7
    slow = HookRunner({"advance": "sleep 300"}, grace=0.2)
    res = slow.run_sync_result("advance", timeout=0.5)
    assert res.timed_out and res.returncode is None
    assert slow.run_sync("advance", timeout=0.5) is None


def test_app_event_adapter_fires_positive_ready_once_per_frame(tmp_path):
    out = tmp_path / "pos.txt"
    runner = HookRunner({"positive_ready": f'echo "$STATION_FRAME $STATION_RAW $STATION_POSITIVE" >> "{out}"',
                         "error": f'echo "ERR $STATION_FRAME $STATION_REASON" >> "{out}"'}, raw_root="/in")
    frame = {"path": "r1/05.dng", "roll": "r1", "state": "preview_written", "preview": "/o/r1/05.preview.jpg",
             "tiff": None, "jpeg": None, "reason": None}
    runner.on_app_event({"type": "frame", "frame": frame})  # preview only: nothing
    done = dict(frame, state="master_written", tiff="/o/r1/05.tif", jpeg="/o/r1/05.jpg")
    runner.on_app_event({"type": "frame", "frame": done})
    runner.on_app_event({"type": "frame", "frame": done})  # the same transition again: once only
    runner.on_app_event({"type": "queue", "queue": {}})
    runner.on_app_event({"type": "frame", "frame": dict(frame, path="r1/06.dng", state="failed", reason="truncated")})
    runner.stop(timeout=30)
    lines = sorted(out.read_text().splitlines())
    assert lines == ["05 /in/r1/05.dng /o/r1/05.tif", "ERR 06 truncated"]


def test_validate_hooks_config():
    assert validate_hooks_config(None) == []
    assert validate_hooks_config({}) == []
    good = {"positive_ready": "cp \"$STATION_POSITIVE\" /tmp", "advance": ["adv", "--one"],
            "error": {"command": "true", "timeout": 5}}
    assert validate_hooks_config(good) == []
    assert set(parse_hooks(good)) == {"positive_ready", "advance", "error"}
    assert parse_hooks(good)["error"].timeout == 5
    assert parse_hooks(good)["advance"].timeout == 60  # its own default
    errs = validate_hooks_config({"frame_capture": "x"})
    assert len(errs) == 1 and errs[0].startswith("hooks.frame_capture: unknown event")
    assert validate_hooks_config({"advance": 3})[0].startswith("hooks.advance: must be a string")
    assert validate_hooks_config({"advance": []})[0].startswith("hooks.advance: empty")
    assert validate_hooks_config({"advance": ["a", 1]})[0].startswith("hooks.advance: every argument")
    assert validate_hooks_config({"error": {"command": "x", "timeout": 0}})[0].startswith("hooks.error.timeout")
    assert validate_hooks_config({"error": {"timeout": 3}})[0] == "hooks.error.command: missing"
    assert validate_hooks_config({"error": {"command": "x", "retries": 3}})[0].startswith("hooks.error: unknown key")
    assert validate_hooks_config(["x"])[0].startswith("hooks: must be a mapping")
    assert "advance" in EVENTS and "positive_ready" in EVENTS


def test_frame_flagged_gets_the_findings_as_json(tmp_path):
    from station.checks import summary

    out = tmp_path / "flag.json"
    runner = HookRunner({"frame_flagged": [PY, "-c", DUMP_ENV, str(out)]})
    findings = [{"check": "focus", "message": "soft: sharpness 40 % of the roll's median", "value": 0.4}]
    assert runner.fire("frame_flagged", roll="r", frame="12", reason=summary(findings), checks=findings).result(30).ok
    env = json.loads(out.read_text())
    assert json.loads(env["STATION_CHECKS"]) == findings
    assert env["STATION_REASON"] == "focus: soft: sharpness 40 % of the roll's median"
    runner.stop()


def test_camera_file_events_fire_frame_captured_once_per_raw(tmp_path):
    out = tmp_path / "cap.txt"
    runner = HookRunner({"frame_captured": f'echo "$STATION_ROLL|$STATION_FRAME|$STATION_RAW" >> "{out}"'},
                        raw_root="/in")
    runner.on_app_event({"type": "camera", "event": "file", "path": "/in/r2/07.nef", "kind": "raw"})
    runner.on_app_event({"type": "camera", "event": "file", "path": "/in/r2/07.jpg", "kind": "jpeg"})  # its JPEG
    runner.on_app_event({"type": "camera", "state": "connected"})
    runner.on_app_event({"type": "camera", "event": "file", "path": "/in/IMG_0001.CR3", "kind": "raw"})  # no roll
    runner.stop(timeout=30)
    assert out.read_text().splitlines() == ["r2|07|/in/r2/07.nef", "|IMG_0001|/in/IMG_0001.CR3"]
