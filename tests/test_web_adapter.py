"""The adapter from the daemon App's snapshot to the page's view model."""
from __future__ import annotations

import os

from station.web.adapter import AppSource


class Snap:
    def __init__(self, snap):
        self.snap = snap
        self.calls = []

    def snapshot(self):
        return self.snap

    def subscribe(self, cb):
        return lambda: None

    def command(self, name, /, **kw):
        self.calls.append((name, kw))
        return {"ok": True}


def frame(path, state, t, out, **kw):
    stem = os.path.splitext(os.path.basename(path))[0]
    d = os.path.dirname(path)
    base = os.path.join(str(out), d, stem)
    f = {"path": path, "roll": d or None, "state": state, "reason": None, "stage": None, "sha256": None,
         "preview": base + ".preview.jpg", "tiff": base + ".tif", "jpeg": base + ".jpg",
         "complete": t, "lat_preview": 0.5 if state != "seen" else None, "lat_master": None, "updated": t + 1}
    f.update(kw)
    return f


def test_real_snapshot_shape(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    frames = [  # the daemon lists the newest first
        frame("r2/IMG_3.CR3", "failed", 30.0, out, reason="decoder crashed", stage="preview"),
        frame("r2/IMG_2.CR3", "master_written", 20.0, out, lat_master=3.2),
        frame("r2/IMG_1.CR3", "preview_written", 10.0, out),
        frame("r1/IMG_9.CR3", "master_written", 5.0, out),
    ]
    snap = {"queue": {"length": 2, "preview": 1, "master": 1, "tracking": 0},
            "camera": {"state": "reconnecting", "model": "Nikon Z 6", "last_error": "USB unplugged; reconnecting"},
            "last_positive": str(out / "r2" / "IMG_2.preview.jpg"), "frames": frames,
            "recent_errors": [{"path": "r2/IMG_3.CR3", "stage": "preview", "reason": "decoder crashed"}]}
    v = AppSource(Snap(snap), out).view()
    assert v["roll"] == "r2"
    assert [f["key"] for f in v["frames"]] == ["r2/IMG_1.CR3", "r2/IMG_2.CR3", "r2/IMG_3.CR3"]
    assert [f["number"] for f in v["frames"]] == [1, 2, 3]
    assert [f["status"] for f in v["frames"]] == ["preview", "master", "failed"]
    assert v["frames"][2]["reason"] == "decoder crashed" and v["frames"][2]["url"] is None  # no file: no URL
    assert v["frames"][1]["latency"] == {"preview": 0.5, "master": 3.2}
    assert v["frames"][1]["url"] == "/img/r2/IMG_2.preview.jpg?v=21.0"
    assert v["latest"] == {"url": "/img/r2/IMG_2.preview.jpg?v=21.0", "key": "r2/IMG_2.CR3", "number": 2}
    assert v["queue"]["total"] == 2
    assert v["camera"] == {"state": "reconnecting", "detail": "USB unplugged; reconnecting"}
    assert v["errors"] == ["r2/IMG_3.CR3: decoder crashed"]


def test_camera_states_and_queue_shapes(tmp_path):
    def cam(c):
        return AppSource(Snap({"camera": c}), tmp_path).view()["camera"]
    assert cam({"state": "ready", "model": "Virtual camera"}) == {"state": "connected", "detail": "Virtual camera"}
    assert cam({"state": "busy"})["state"] == "busy"
    assert cam({"state": "connecting"})["state"] == "connecting"
    assert cam({"state": "none", "port": None}) == {"state": "off", "detail": None}
    assert cam({"state": "stopped"})["state"] == "off"
    assert cam(None)["state"] == "off"
    assert cam("reconnecting")["state"] == "reconnecting"
    for q, n in ((3, 3), ({"preview": 2, "master": 1}, 3), ({"length": 4}, 4), (None, 0), ("x", 0)):
        assert AppSource(Snap({"queue": q}), tmp_path).view()["queue"]["total"] == n


def test_urls_only_under_the_output_folder(tmp_path):
    out = tmp_path / "out"
    (out / "r").mkdir(parents=True)
    (out / "r" / "a b#?.preview.jpg").write_bytes(b"x")
    src = AppSource(Snap({}), out)
    assert src.url_for(out / "r" / "a b#?.preview.jpg", 7) == "/img/r/a%20b%23%3F.preview.jpg?v=7"
    assert src.url_for("r/a b#?.preview.jpg", 7).startswith("/img/r/")
    assert src.url_for(tmp_path / "elsewhere.jpg") is None
    assert src.url_for(str(out) + "/../out2/x.jpg") is None
    assert src.url_for(str(out) + "-evil/x.jpg") is None  # a sibling folder sharing the prefix
    assert src.url_for("/etc/passwd") is None


def test_command_names_and_refusal(tmp_path):
    app = Snap({})
    src = AppSource(app, tmp_path)
    src.command("roll_new", {"name": "portra-400"})
    src.command("reinvert", {"frame": "r/IMG_1.CR3"})
    assert app.calls == [("roll_new", {"name": "portra-400"}), ("reinvert", {"path": "r/IMG_1.CR3"})]
    import pytest
    with pytest.raises(KeyError):
        src.command("shutdown", {})
