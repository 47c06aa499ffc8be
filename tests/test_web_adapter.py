"""The page's adapter over the real App: boundary.Snapshot in, the view model out;
and the page's buttons against the App's commands (a button without a command
cannot exist)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from station import config
from station.app import App
from station.boundary import CAMERA_STATES, FRAME_STATES
from station.web import adapter
from station.web.adapter import PAGE_COMMANDS, AppSource
from station_stub import Station

STATIC = Path(adapter.__file__).with_name("static")


@pytest.fixture
def st(tmp_path):
    s = Station(tmp_path)
    yield s
    s.close()


def _jpeg(p: Path) -> Path:
    from PIL import Image

    p.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (60, 40), (200, 120, 40)).save(p, "JPEG")
    return p


def test_view_of_the_real_snapshot(st, tmp_path):
    src = AppSource(st.app, st.output)
    old = st.add_frame()
    st.land_preview(old, _jpeg(tmp_path / "0.jpg"))
    st.land_master(old)
    st.app.command("roll_new", name="r2")
    a, b, c = st.add_frame(), st.add_frame(), st.add_frame()
    st.land_preview(a, _jpeg(tmp_path / "a.jpg"), latency=0.5)
    st.land_preview(b, _jpeg(tmp_path / "b.jpg"), latency=0.5)
    st.land_master(b, latency=3.2)
    st.fail(c, "decoder crashed")
    st.app.journal.update(b, checks=json.dumps([{"check": "focus", "message": "soft", "value": 0.4}]))
    st.camera.set_state("reconnecting", "USB unplugged; reconnecting")
    v = src.view()
    assert v["roll"] == "r2"  # the camera's roll: the strip is that roll, oldest first
    assert [f["key"] for f in v["frames"]] == [a, b, c] and [f["number"] for f in v["frames"]] == [1, 2, 3]
    assert [f["status"] for f in v["frames"]] == ["preview", "master", "failed"]
    assert v["frames"][2]["reason"] == "decoder crashed" and v["frames"][2]["url"] is None  # no file: no URL
    assert v["frames"][1]["latency"]["master"] == pytest.approx(3.2, abs=0.1)
    assert v["frames"][1]["checks"] == [{"check": "focus", "message": "soft", "value": 0.4}]
    assert v["frames"][0]["checks"] is None  # not checked
    updated = st.row(b)["updated"]
    assert v["frames"][1]["url"] == f"/img/r2/IMG_0003.preview.jpg?v={updated}"
    assert v["latest"]["key"] == b  # the last positive written
    assert v["queue"]["total"] == 1 and v["queue"]["detail"]["master"] == 1  # a's master waits
    assert v["camera"] == {"state": "reconnecting", "detail": "USB unplugged; reconnecting"}
    assert v["errors"] == [f"{c}: decoder crashed"]
    json.dumps(v)


def test_every_app_state_has_a_page_word(st):
    src = AppSource(st.app, st.output)
    assert set(adapter.STATUS) == set(FRAME_STATES) and set(adapter.CAMERA) == set(CAMERA_STATES)
    page_words = {"connected", "busy", "reconnecting", "connecting", "disconnected", "off"}
    for state in CAMERA_STATES:
        st.camera.state = state
        assert src.view()["camera"]["state"] in page_words
    st.camera.state = "ready"
    assert src.view()["camera"] == {"state": "connected", "detail": "Stub camera"}


def test_without_a_camera_the_strip_is_the_newest_frames_roll(tmp_path):
    s = Station(tmp_path, camera=False)
    try:
        src = AppSource(s.app, s.output)
        assert src.view()["camera"]["state"] == "off" and src.view()["roll"] is None
        p = s.incoming / "r9" / "a.dng"
        p.parent.mkdir(parents=True)
        p.write_bytes(b"x")
        s.app.processor.submit(p, 0.0)
        assert src.view()["roll"] == "r9"
    finally:
        s.close()


def test_urls_only_under_the_output_folder(st, tmp_path):
    out = st.output
    (out / "r").mkdir(parents=True)
    (out / "r" / "a b#?.preview.jpg").write_bytes(b"x")
    src = AppSource(st.app, out)
    assert src.url_for(out / "r" / "a b#?.preview.jpg", 7) == "/img/r/a%20b%23%3F.preview.jpg?v=7"
    assert src.url_for("r/a b#?.preview.jpg", 7).startswith("/img/r/")
    assert src.url_for(tmp_path / "elsewhere.jpg") is None
    assert src.url_for(str(out) + "/../out2/x.jpg") is None
    assert src.url_for(str(out) + "-evil/x.jpg") is None  # a sibling folder sharing the prefix
    assert src.url_for("/etc/passwd") is None


def test_commands_go_to_the_app_by_their_own_names(st):
    src = AppSource(st.app, st.output)
    assert src.command("roll_new", {"name": "portra-400"}) == {"name": "portra-400"}
    assert st.camera.calls == [("roll_new", {"name": "portra-400"})]
    with pytest.raises(KeyError):
        src.command("shutdown", {})
    with pytest.raises(KeyError):
        src.command("hooks", {})  # an App command, but not one the page sends


def _all_js() -> str:
    return "\n".join(p.read_text() for p in sorted(STATIC.glob("*.js")))  # app.js, live.js


def _page_commands() -> set[str]:
    js = _all_js()
    return set(re.findall(r'\bcommand\("(\w+)"', js)) | set(re.findall(r'"/api/command/(\w+)"', js))


def test_every_button_sends_a_command_the_real_app_answers(tmp_path):
    """The page's buttons ⇔ PAGE_COMMANDS ⇔ commands the real App (with every plug-in of
    station/plugins.py attached) answers — with and without a camera."""
    js = _all_js()
    html = (STATIC / "index.html").read_text()
    buttons = re.findall(r'<button[^>]*\bid="(btn-[\w-]+)"', html)
    assert buttons, "no buttons found on the page"
    for b in buttons:  # every button is wired to something in app.js
        assert f'$("{b}")' in js, f"button #{b} is not wired in the page's scripts"
    assert _page_commands() == set(PAGE_COMMANDS)
    from station.plugins import attach_all

    for port in ("off", "virtual"):
        root = tmp_path / port
        for sub in ("in", "out", "st"):
            (root / sub).mkdir(parents=True)
        cfg = config.validate({"paths": {"incoming": str(root / "in"), "output": str(root / "out"),
                                         "state": str(root / "st")}, "web": {"address": "off"},
                               "camera": {"port": port}})
        app = App(cfg)
        try:
            attach_all(app)
            missing = set(PAGE_COMMANDS) - set(app.commands())
            assert not missing, f"camera {port}: the page sends commands the App does not answer: {missing}"
        finally:
            app.journal.close()
