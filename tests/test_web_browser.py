"""The live view end to end in a real headless browser (Debian's chromium driven
by Playwright's Python package), first over the real App with a stub camera
and the test playing the worker (tests/station_stub.py), then over the real
daemon started as a subprocess.

Skipped, with the reason, where chromium or playwright is missing:
    apt-get install -y chromium && .venv/bin/pip install playwright
(never `playwright install`: the system chromium is used, no download).

Waits are deadlines (Playwright's expect timeouts), never asserted durations.
"""
from __future__ import annotations

import re
import os
import shutil
import socket
import time
from pathlib import Path

import pytest
from PIL import Image

from station.pipeline.write import output_print
from station.web.server import WebService
from station_stub import Station

CHROMIUM = os.environ.get("STATION_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
SHOW_MS = 2000  # a new preview must be on the page within 2 s of being written

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

pytestmark = pytest.mark.skipif(
    sync_playwright is None or not os.access(CHROMIUM, os.X_OK),
    reason=("browser tests need Playwright's Python package and Debian's chromium: "
            "`apt-get install -y chromium` and `.venv/bin/pip install playwright` "
            f"(playwright {'found' if sync_playwright else 'missing'}, {CHROMIUM} "
            f"{'found' if os.access(CHROMIUM, os.X_OK) else 'missing'})"),
)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def positive(path: Path, seed: int, size=(600, 400)) -> Path:
    """A small positive JPEG with some structure (gradients, a disc)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    h, w = size[1], size[0]
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    c = rng.uniform(0.2, 0.9, 3)
    img = np.stack([xx * c[0] + 0.1, yy * c[1] + 0.1, (1 - xx) * c[2]], 2)
    img[(xx - 0.5) ** 2 + (yy - 0.3) ** 2 < 0.02] = rng.uniform(0, 1, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(img, 0, 1) * 255).astype("uint8")).save(path, "JPEG", quality=85)
    return path


@pytest.fixture
def fake(tmp_path):
    st = Station(tmp_path)
    svc = st.serve(WebService(st.app, "127.0.0.1:0", None, st.output))
    st.url = svc.url
    st.src = tmp_path / "src"
    yield st
    st.close()


def wait_until(pred, what, deadline=5.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"not before the deadline: {what}")


# -- over the real App with a stub camera, the test playing the worker -------------------------

def test_new_preview_appears_strip_grows_histogram(fake, page):
    page.goto(fake.url)
    expect(page.locator("#link")).to_have_text("live")
    expect(page.locator("#empty")).to_be_visible()
    f1 = fake.add_frame()
    expect(page.locator("#strip .frame")).to_have_count(1)
    expect(page.locator("#cap-status")).to_have_text("queued")
    fake.land_preview(f1, positive(fake.src / "1.jpg", 1), latency=0.91)
    img = page.locator("#latest")
    expect(img).to_have_attribute("data-url", f"/img/roll-001/IMG_0001.preview.jpg?v={fake.row(f1)['updated']}",
                                  timeout=SHOW_MS)
    expect(img).to_be_visible()
    assert page.evaluate("document.getElementById('latest').naturalWidth") == 600
    expect(page.locator("#cap-number")).to_have_text("#1")
    expect(page.locator("#cap-latency")).to_contain_text(re.compile(r"preview (0\.9\d|1\.[0-4]\d) s"))  # 0.91 s + a loaded machine's delay
    expect(page.locator("#histogram")).to_have_attribute("data-ready", "1")
    expect(page.locator("#histo-note")).to_contain_text("clipped")
    for i in range(2, 5):
        f = fake.add_frame()
        fake.land_preview(f, positive(fake.src / f"{i}.jpg", i), latency=0.8 + i / 100)
        expect(img).to_have_attribute("data-url", f"/img/roll-001/IMG_{i:04d}.preview.jpg?v={fake.row(f)['updated']}",
                                      timeout=SHOW_MS)
        expect(page.locator("#strip .frame")).to_have_count(i)
    nums = page.locator("#strip .frame .num").all_inner_texts()
    assert nums == ["1", "2", "3", "4"]
    for k in (f1, "roll-001/IMG_0002.CR3", "roll-001/IMG_0003.CR3"):
        fake.land_master(k)
    fake.land_master(f, latency=3.5)
    expect(page.locator("#strip .frame").nth(3)).to_have_attribute("data-status", "master")
    expect(page.locator("#cap-latency")).to_contain_text(re.compile(r"master 3\.[5-9]\d s"))
    # thumbnails come from the server's downscaled copies
    expect(page.locator("#strip .frame").nth(0).locator("img")).to_have_attribute(
        "src", f"/img/roll-001/IMG_0001.preview.jpg?v={fake.row(f1)['updated']}&w=240")
    wait_until(lambda: page.evaluate("document.querySelector('#strip .frame img').naturalWidth") == 240, "thumbnail")


def test_failed_frame_shows_reason(fake, page):
    page.goto(fake.url)
    ok = fake.add_frame()
    fake.land_preview(ok, positive(fake.src / "1.jpg", 1))
    bad = fake.add_frame("IMG_0002.CR3")
    fake.fail(bad, "truncated RAW: LibRaw reports unexpected end of file")
    frame = page.locator('#strip .frame[data-key="roll-001/IMG_0002.CR3"]')
    expect(frame).to_have_attribute("data-status", "failed")
    expect(frame).to_have_attribute("title", "IMG_0002.CR3 · failed: truncated RAW: LibRaw reports unexpected end of file")
    reason = page.locator("#cap-reason")
    expect(reason).to_be_visible()
    expect(reason).to_have_text("#2 failed (preview): truncated RAW: LibRaw reports unexpected end of file")
    expect(page.locator("#btn-retry")).to_be_visible()
    # the last good positive stays up, labelled with its own number
    expect(page.locator("#tag")).to_have_text("#1")
    # choosing the good frame pins it; Esc goes back to live
    page.locator('#strip .frame[data-key="roll-001/IMG_0001.CR3"]').click()
    expect(reason).to_be_hidden()
    expect(page.locator("#btn-live")).to_be_visible()
    page.keyboard.press("Escape")
    expect(reason).to_be_visible()
    page.locator("#btn-retry").click()
    wait_until(lambda: fake.row(bad)["state"] == "seen", "retry re-queued the failed frame")
    expect(page.locator("#btn-retry")).to_be_hidden()


def test_check_findings_are_shown(fake, page):
    page.goto(fake.url)
    k = fake.add_frame()
    fake.land_preview(k, positive(fake.src / "1.jpg", 1))
    expect(page.locator("#strip .frame")).to_have_count(1)
    expect(page.locator("#cap-checks")).to_be_hidden()
    # the checks service's findings, stored by the App in the journal (as on the daemon)
    fake.app.processor.record_checks(k, [{"check": "focus", "message": "soft: sharpness 31 % of the roll's median",
                                          "value": 0.31}])
    expect(page.locator("#cap-checks")).to_have_text("focus: soft: sharpness 31 % of the roll's median")
    frame = page.locator(f'#strip .frame[data-key="{k}"]')
    expect(frame).to_have_attribute("data-flagged", "1")
    expect(frame).to_have_attribute("title", re.compile(r"· focus$"))


def test_camera_state_and_queue(fake, page):
    page.goto(fake.url)
    cam = page.locator("#camera")
    expect(cam).to_have_text("camera ready")
    fake.camera.set_state("busy")
    expect(cam).to_have_attribute("data-state", "busy")
    fake.camera.set_state("reconnecting")
    expect(cam).to_have_text("camera reconnecting…")
    for _ in range(5):
        fake.add_frame()
    expect(page.locator("#queue")).to_have_text("queue 5")
    fake.camera.set_state("ready")
    expect(cam).to_have_text("camera ready")


def test_camera_reconnecting_shows_the_reason(fake, page):
    page.goto(fake.url)
    fake.camera.set_state("reconnecting", "USB cable unplugged (during capture); reconnecting")
    expect(page.locator("#camera")).to_have_text("camera reconnecting…")
    expect(page.locator("#banner")).to_have_text("USB cable unplugged (during capture); reconnecting")
    fake.camera.set_state("ready")
    expect(page.locator("#banner")).to_be_hidden()


def test_space_and_buttons_send_commands(fake, page):
    page.goto(fake.url)
    expect(page.locator("#link")).to_have_text("live")
    calls = fake.camera.calls
    page.keyboard.press("Space")
    wait_until(lambda: calls == [("capture", {})], "capture from Space")
    page.locator("#btn-capture").click()
    wait_until(lambda: calls == [("capture", {})] * 2, "capture from the button")
    # Space while the capture button has focus still captures once, not twice
    page.locator("#btn-capture").focus()
    page.keyboard.press("Space")
    wait_until(lambda: len(calls) == 3, "capture from Space on a focused button")
    time.sleep(0.3)
    assert calls == [("capture", {})] * 3
    f = fake.add_frame()
    fake.land_preview(f, positive(fake.src / "1.jpg", 1))
    fake.land_master(f)
    expect(page.locator("#strip .frame")).to_have_count(1)
    page.locator("#btn-reinvert").click()
    wait_until(lambda: fake.row(f)["rerender"] is not None, "reinvert reached the journal")
    expect(page.locator("#toast")).to_have_text("re-inverting #1")
    page.once("dialog", lambda d: d.accept())
    page.locator("#btn-calibrate").click()
    wait_until(lambda: calls[-1] == ("calibrate", {}), "calibrate")
    page.once("dialog", lambda d: d.accept("ektar-100-03"))
    page.locator("#btn-roll").click()
    wait_until(lambda: calls[-1] == ("roll_new", {"name": "ektar-100-03"}), "new roll")
    expect(page.locator("#roll")).to_have_text("roll ektar-100-03")
    expect(page.locator("#strip .frame")).to_have_count(0)  # the strip is the current roll


def test_command_refusal_is_shown(fake, page):
    def refuse(**kw):
        raise RuntimeError("no camera configured")
    fake.camera.on_command["capture"] = refuse
    page.goto(fake.url)
    expect(page.locator("#link")).to_have_text("live")
    page.keyboard.press("Space")
    expect(page.locator("#toast")).to_have_text("capture: no camera configured")


def test_token_page_on_all_interfaces(tmp_path, browser):
    app = Station(tmp_path)
    svc = app.serve(WebService(app.app, "0.0.0.0:0", "correct-horse", app.output))
    ctx = browser.new_context()
    pg = ctx.new_page()
    try:
        r = pg.goto(f"http://127.0.0.1:{svc.port}/")
        assert r.status == 401
        assert "token" in pg.inner_text("body")
        pg.goto(f"http://127.0.0.1:{svc.port}/?token=correct-horse")
        expect(pg.locator("#link")).to_have_text("live")  # events carry the cookie
        f = app.add_frame()
        app.land_preview(f, positive(tmp_path / "1.jpg", 3))
        expect(pg.locator("#latest")).to_have_attribute(
            "data-url", f"/img/roll-001/IMG_0001.preview.jpg?v={app.row(f)['updated']}", timeout=SHOW_MS)
        assert pg.evaluate("document.getElementById('latest').naturalWidth") == 600  # the image carried it too
        pg.keyboard.press("Space")
        wait_until(lambda: app.camera.calls == [("capture", {})], "capture with the token cookie")
    finally:
        ctx.close()
        app.close()


def test_phone_layout(fake, browser):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                              device_scale_factor=2)
    pg = ctx.new_page()
    try:
        for i in range(1, 13):
            f = fake.add_frame()
            fake.land_preview(f, positive(fake.src / f"{i}.jpg", i))
        pg.goto(fake.url)
        expect(pg.locator("#strip .frame")).to_have_count(12)
        expect(pg.locator("#latest")).to_be_visible()
        vw = pg.evaluate("document.documentElement.clientWidth")
        assert pg.evaluate("document.documentElement.scrollWidth") <= vw  # no sideways scrolling of the page
        for sel in ("#latest", "#btn-capture", "#btn-roll", "#btn-calibrate", "#btn-reinvert", "#strip"):
            box = pg.locator(sel).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= vw + 1, sel
            assert box["y"] >= 0 and box["y"] + box["height"] <= 844 + 1, sel
        assert pg.locator("#btn-capture").bounding_box()["height"] >= 44  # a thumb-sized target
        pg.locator("#btn-capture").tap()
        wait_until(lambda: ("capture", {}) in fake.camera.calls, "capture by tap")
    finally:
        ctx.close()


# -- over the real daemon (`station run --web 127.0.0.1:PORT` as a subprocess) ---------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_daemon_preview_strip_failure(daemon_factory, tmp_path, page):
    from conftest import write_negative

    port = _free_port()
    d = daemon_factory(extra_args=["--web", f"127.0.0.1:{port}"]).start()
    page.goto(f"http://127.0.0.1:{port}/")
    expect(page.locator("#link")).to_have_text("live")
    expect(page.locator("#camera")).to_have_text("camera off")  # no camera configured
    img = page.locator("#latest")
    for i in (1, 2):
        write_negative(tmp_path / f"IMG_{i:04d}.dng", seed=i)
        shutil.move(tmp_path / f"IMG_{i:04d}.dng", d.incoming / f"IMG_{i:04d}.dng")  # moved in, as gphoto2 does
        preview = d.output / f"IMG_{i:04d}.preview.jpg"
        d.wait_for(preview.exists, 60, f"preview {i} on disk")
        # from the moment the preview is on disk, the page has 2 s to show it
        expect(img).to_have_attribute("data-url", re.compile(rf"^/img/IMG_{i:04d}\.preview\.jpg\?v="), timeout=SHOW_MS)
        expect(page.locator("#strip .frame")).to_have_count(i)
    assert page.evaluate("document.getElementById('latest').naturalWidth") > 0
    expect(page.locator("#cap-latency")).to_contain_text("preview")
    (d.incoming / "IMG_0003.CR2").write_bytes(b"\x00" * 100)  # a RAW that is not one
    frame = page.locator('#strip .frame[data-key="IMG_0003.CR2"]')
    expect(frame).to_have_attribute("data-status", "failed", timeout=30000)
    expect(page.locator("#cap-reason")).to_contain_text("#3 failed")
    reason = d.frames()["IMG_0003.CR2"]["reason"]
    expect(page.locator("#cap-reason")).to_contain_text(reason)
    # the daemon has no camera here: the capture button reaches it and shows its refusal
    page.locator("#btn-capture").click()
    expect(page.locator("#toast")).to_contain_text("capture:")
    assert d.stop() == 0
    expect(page.locator("#link")).not_to_have_text("live", timeout=5000)  # the page notices the daemon is gone


def test_real_daemon_capture_button_on_virtual_camera(daemon_factory, page):
    """Done-when of issue 7: the daemon on the virtual camera, the capture button,
    the new positive on the page.  Needs the camera service in the daemon
    (`station.capture.service.attach`); skipped until it is there.
    NOTE: written before that service existed - not yet run against it."""
    try:
        import station.capture.service  # noqa: F401
    except ModuleNotFoundError:
        pytest.skip("the daemon has no camera service yet (station.capture.service): capture e2e not possible")
    pytest.importorskip("gphoto2")
    port = _free_port()
    d = daemon_factory(extra_args=["--web", f"127.0.0.1:{port}", "--camera", "virtual"]).start()
    page.goto(f"http://127.0.0.1:{port}/")
    expect(page.locator("#camera")).to_have_text("camera ready", timeout=30000)
    before = set(d.outputs(".preview.jpg"))
    page.locator("#btn-capture").click()
    d.wait_for(lambda: set(d.outputs(".preview.jpg")) - before, 60, "a preview from the captured frame")
    expect(page.locator("#strip .frame")).to_have_count(1)
    new = (set(d.outputs(".preview.jpg")) - before).pop()
    expect(page.locator("#latest")).to_have_attribute("data-url", re.compile(re.escape(new.name) + r"\?v="),
                                                      timeout=SHOW_MS)


def test_real_daemon_page_shows_the_camera_dropping_and_coming_back(daemon_factory, page):
    """Done-when of issue 7: the page shows the camera reconnecting after the emulated camera
    drops.  The daemon drives a PTP/IP camera emulator; the camera is switched off (the
    emulator stops), the page says so with the reason, the camera comes back on the same
    address, the page shows it ready and a capture from the page still makes a positive."""
    pytest.importorskip("gphoto2")
    import sys as _sys

    _sys.path.insert(0, str(Path(__file__).parent))
    from ptpip_emulator import EmulatedCamera

    cam = EmulatedCamera().start()
    port = _free_port()
    try:
        d = daemon_factory(extra_args=["--web", f"127.0.0.1:{port}", "--camera", cam.address]).start()
        page.goto(f"http://127.0.0.1:{port}/")
        expect(page.locator("#camera")).to_have_text("camera ready", timeout=30000)
        cam_port = cam.port
        cam.stop()  # switched off / unplugged
        expect(page.locator("#camera")).to_have_text(re.compile("reconnecting|no camera|connecting"), timeout=30000)
        cam = EmulatedCamera(port=cam_port).start()  # switched on again
        expect(page.locator("#camera")).to_have_text("camera ready", timeout=60000)
        before = set(d.outputs(".preview.jpg"))
        page.locator("#btn-capture").click()
        d.wait_for(lambda: set(d.outputs(".preview.jpg")) - before, 60, "a preview after the camera came back")
        assert len(cam.captured) == 1
    finally:
        cam.stop()


def _set_slider(page, key, value):
    """Move a print slider as a user does: the value changes, then `change` fires on release."""
    page.locator(f"#pr-{key}").evaluate(
        "(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true}));"
        " el.dispatchEvent(new Event('change', {bubbles: true})); }", str(value))


def test_real_daemon_print_sliders_and_neutral_picker(daemon_factory, tmp_path, page):
    """Issue 13, item 4: the exposure and white-balance controls of one frame on the real daemon:
    its preview and master change, the page shows the new preview, and a restart keeps them."""
    import numpy as np

    from negatives import expose, grey_ramp, with_rebate, write_negative_dng

    port = _free_port()
    d = daemon_factory(extra_args=["--web", f"127.0.0.1:{port}"]).start()
    key = "roll-001/01.dng"
    scene = np.clip(grey_ramp(200, 300) * np.array([0.97, 0.93, 0.9]), 0.01, 1).astype(np.float32)
    write_negative_dng(tmp_path / "n.dng", with_rebate(expose(scene), border=20), seed=3)
    (d.incoming / "roll-001").mkdir()
    shutil.move(tmp_path / "n.dng", d.incoming / key)
    d.wait_for(lambda: d.done([key]), 120, "the frame processed")
    prev, tif = d.output / "roll-001" / "01.preview.jpg", d.output / "roll-001" / "01.tif"
    assert output_print(prev) is None and output_print(tif) is None  # as inverted
    sha = {p: p.read_bytes() for p in (prev, tif)}

    page.goto(f"http://127.0.0.1:{port}/")
    img = page.locator("#latest")
    expect(img).to_have_attribute("data-url", re.compile(r"^/img/roll-001/01\.preview\.jpg\?v="))
    expect(page.locator("#pr-source")).to_have_text("station's")
    expect(page.locator("#pr-exposure")).to_have_value("0")
    first_url = img.get_attribute("data-url")

    _set_slider(page, "exposure", 1)
    expect(page.locator("#toast")).to_contain_text("exposure +1.00 EV")
    d.wait_for(lambda: (output_print(prev) or {}).get("exposure") == 1.0, 60, "the brighter preview")
    expect(img).not_to_have_attribute("data-url", first_url, timeout=10000)  # the page shows the new preview
    _set_slider(page, "temperature", 4000)
    d.wait_for(lambda: (output_print(prev) or {}).get("temperature") == 4000.0, 60, "the cooler preview")
    d.wait_for(lambda: (output_print(tif) or {}) == {**(output_print(prev) or {"x": 1})}, 120,
               "the master with the same print")
    d.wait_for(lambda: d.frames()[key]["state"] == "master_written", 120, "the master written")
    assert output_print(tif)["exposure"] == 1.0 and output_print(tif)["temperature"] == 4000.0
    assert all(p.read_bytes() != sha[p] for p in (prev, tif))
    expect(page.locator("#pr-source")).to_have_text("frame's")
    expect(page.locator("#pr-temperature-v")).to_have_text("4000 K")

    # the neutral picker: click it, then a grey band of the (now cool) picture
    page.locator("#btn-neutral").click()
    expect(page.locator("#btn-neutral")).to_have_attribute("aria-pressed", "true")
    box = img.bounding_box()
    nw, nh = page.evaluate("[document.getElementById('latest').naturalWidth, document.getElementById('latest').naturalHeight]")
    sc = min(box["width"] / nw, box["height"] / nh)
    x0, y0 = box["x"] + (box["width"] - nw * sc) / 2, box["y"] + (box["height"] - nh * sc) / 2
    page.mouse.click(x0 + 0.62 * nw * sc, y0 + 0.5 * nh * sc)
    expect(page.locator("#toast")).to_contain_text("neutral:")
    d.wait_for(lambda: ((output_print(prev) or {}).get("temperature") or 4000.0) > 4500, 60, "the neutral preview")
    picked = output_print(prev)
    assert picked["exposure"] == 1.0
    with Image.open(prev) as im:
        a = np.asarray(im.convert("RGB"), np.float64) / 255.0
    h, w = a.shape[:2]
    patch = a[int(0.5 * h) - 3:int(0.5 * h) + 4, int(0.62 * w) - 3:int(0.62 * w) + 4].reshape(-1, 3).mean(0)
    assert np.ptp(patch) < 0.03, patch  # the picked grey is grey
    d.wait_for(lambda: (output_print(tif) or {}) == picked and d.frames()[key]["state"] == "master_written",
               120, "the neutral master")

    # a restart keeps them: the journal has the frame's print, the page shows it again
    assert d.stop() == 0
    n = len(d.log_text())
    d = daemon_factory(extra_args=["--web", f"127.0.0.1:{port}"]).start(wait_ready=False)
    d.wait_for(lambda: "ready:" in d.log_text()[n:], 90, "the restarted daemon")
    page.goto(f"http://127.0.0.1:{port}/")
    expect(page.locator("#pr-source")).to_have_text("frame's")
    expect(page.locator("#pr-exposure-v")).to_have_text("+1.00 EV")
    expect(page.locator("#pr-temperature-v")).to_have_text(f"{round(picked['temperature'])} K")
    assert output_print(tif) == picked and output_print(prev) == picked
    # and the next adjustment starts from them
    _set_slider(page, "contrast", 1.2)
    d.wait_for(lambda: (output_print(tif) or {}).get("contrast") == 1.2, 120, "the master after the restart")
    assert output_print(tif)["exposure"] == 1.0
    assert output_print(tif)["temperature"] == picked["temperature"]


# What the page offers a user, read from the page itself: every button, input, select,
# text area, link, <summary> and focusable element (by id, or tag:id-of-its-holder), hidden
# ones included; the filmstrip's frames (made at run time) are one control, "strip-frame".
PAGE_CONTROLS_JS = """() => Array.from(document.querySelectorAll(
    'button, input, select, textarea, summary, a[href], [role=button], [tabindex]:not([tabindex="-1"])'))
  .filter((e) => !e.closest('#strip'))
  .map((e) => e.id || (e.tagName.toLowerCase() + ':' + ((e.parentElement && e.parentElement.closest('[id]')) || {}).id))"""


def page_keys() -> set[str]:
    """The keys the page answers (app.js's keydown handler: `ev.key === "..."` / `ev.code === "..."`)."""
    js = (Path(__file__).resolve().parent.parent / "station" / "web" / "static" / "app.js").read_text()
    handler = js[js.index('addEventListener("keydown"'):]
    handler = handler[:handler.index("});")]
    return set(re.findall(r'ev\.(?:key|code) === "(\w+)"', handler))


class Controls:
    """Records each control a test uses; `missed()` names those of the page it did not."""

    def __init__(self, page):
        self.page = page
        self.offered = set(page.evaluate(PAGE_CONTROLS_JS)) | {"strip-frame"}
        self.keys = page_keys()
        self.used: set[str] = set()

    def __call__(self, sel: str):
        self.used.add(sel.lstrip("#"))
        return self.page.locator(sel)

    def frame(self, key: str):
        self.used.add("strip-frame")
        return self.page.locator(f'#strip .frame[data-key="{key}"]')

    def key(self, name: str) -> None:
        self.used.add("key:" + name)
        self.page.keyboard.press(name)

    def slider(self, key: str, value) -> None:
        self.used.add(f"pr-{key}")
        _set_slider(self.page, key, value)

    def missed(self) -> list[str]:
        return sorted((self.offered | {"key:" + k for k in self.keys}) - self.used)


def test_page_controls_are_read_from_the_page(fake, page):
    """The list the every-control test must cover comes from the page: a control added to the
    page's HTML (here one injected) is on it, and so are the keys of app.js's handler."""
    page.goto(fake.url)
    c = Controls(page)
    assert {"btn-capture", "btn-roll", "btn-calibrate", "btn-reinvert", "btn-retry", "btn-live",
            "btn-print-roll", "btn-print-reset", "btn-neutral", "pr-exposure", "summary:print-box"} <= c.offered
    assert {"Space", "ArrowLeft", "ArrowRight", "Escape"} <= c.keys
    page.evaluate("() => { const b = document.createElement('button'); b.id = 'btn-new'; b.hidden = true;"
                  " document.getElementById('print').appendChild(b); }")
    assert "btn-new" in Controls(page).offered


def test_real_daemon_every_control_of_the_page(daemon_factory, page):
    """Every control of the page, on the real daemon (`station run --camera ptpip:...`, the PTP/IP
    emulator with live view): the list of controls is read from the page (`Controls`: every
    button, slider, link and key it offers), and the test fails naming any it did not use.
    Live view (and its magnifier), New roll, Calibrate base, Flat field, Capture (button and Space), a strip
    frame, ← / →, Esc, ● live, Re-invert, Retry failed, the print's sliders, Pick neutral, Apply
    to roll, Reset, the print panel's fold — each checked for what it says it does, on disk and
    on the page."""
    import json as _json
    import sys as _sys

    pytest.importorskip("gphoto2")
    _sys.path.insert(0, str(Path(__file__).parent))
    from negatives import blank_light_then_negatives
    from ptpip_emulator import EmulatedCamera

    # shot 1: the blank, shot 2: the bare light
    cam = EmulatedCamera(live={"seed": 4}, frame_source=blank_light_then_negatives).start()
    try:
        _every_control(daemon_factory, page, cam, _json)
    finally:
        cam.stop()


def _every_control(daemon_factory, page, cam, _json):
    port = _free_port()
    d = daemon_factory(extra_args=["--web", f"127.0.0.1:{port}", "--camera", cam.address]).start()
    page.goto(f"http://127.0.0.1:{port}/")
    expect(page.locator("#camera")).to_have_text("camera ready", timeout=30000)
    c = Controls(page)
    toast = page.locator("#toast")

    # Live view: the live positive streams in the panel; a click on it opens the magnifier; off again
    lv = c("#btn-liveview")
    expect(lv).to_be_visible(timeout=10000)
    lv.click()
    expect(page.locator("#livepanel")).to_be_visible(timeout=10000)
    page.wait_for_function("() => document.getElementById('liveimg').naturalWidth >= 400", timeout=60000)
    box = page.locator("#liveimg").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    expect(page.locator("#loupe")).to_be_visible(timeout=10000)
    lv.click()
    expect(page.locator("#stage")).to_be_visible(timeout=10000)
    expect(page.locator("#livepanel")).to_be_hidden()

    # New roll: the roll exists, the page shows the camera's new roll, its strip is empty
    page.once("dialog", lambda dlg: dlg.accept("e2e-roll"))
    c("#btn-roll").click()
    expect(page.locator("#roll")).to_have_text("roll e2e-roll", timeout=10000)
    expect(toast).to_contain_text("new roll")
    assert (d.state / "rolls" / "e2e-roll" / "manifest.json").is_file()
    expect(page.locator("#strip .frame")).to_have_count(0)

    # Calibrate base: a blank frame shot, the roll's film base measured
    page.once("dialog", lambda dlg: dlg.accept())
    c("#btn-calibrate").click()
    expect(toast).to_have_text("film base calibrated", timeout=60000)
    man = _json.loads((d.state / "rolls" / "e2e-roll" / "manifest.json").read_text())
    assert man["base"]["rgb"] and len(man["base"]["rgb"]) == 3

    # Flat field: a frame of the bare light shot, the roll's flat field measured and kept
    page.once("dialog", lambda dlg: dlg.accept())
    c("#btn-flatfield").click()
    expect(toast).to_contain_text("flat field ", timeout=60000)
    man = _json.loads((d.state / "rolls" / "e2e-roll" / "manifest.json").read_text())
    assert man["flatfield"]["id"] and (d.state / "rolls" / "e2e-roll" / man["flatfield"]["npz"]).is_file()
    expect(toast).to_contain_text(man["flatfield"]["id"])

    # Capture (the button), then Space: two frames of the roll, each positive shown
    img = page.locator("#latest")
    c("#btn-capture").click()
    expect(page.locator("#strip .frame")).to_have_count(1, timeout=60000)
    expect(img).to_have_attribute("data-url", re.compile(r"^/img/e2e-roll/01\.preview\.jpg\?v="), timeout=60000)
    page.locator("body").click(position={"x": 5, "y": 5})  # focus off the button: Space is the page's key
    c.key("Space")
    expect(page.locator("#strip .frame")).to_have_count(2, timeout=60000)
    expect(img).to_have_attribute("data-url", re.compile(r"^/img/e2e-roll/02\.preview\.jpg\?v="), timeout=60000)
    expect(page.locator("#cap-number")).to_have_text("#2")
    frames = d.frames()
    assert set(frames) >= {"e2e-roll/01.dng", "e2e-roll/02.dng"}
    d.wait_for(lambda: d.done(["e2e-roll/01.dng", "e2e-roll/02.dng"]), 90, "both masters")

    # the frame checks' findings of the frame shown are on the page as the journal has them
    d.wait_for(lambda: d.frames()["e2e-roll/02.dng"]["checks"] is not None, 60, "frame 2 checked")
    findings = _json.loads(d.frames()["e2e-roll/02.dng"]["checks"])
    if findings:
        expect(page.locator("#cap-checks")).to_contain_text(findings[0]["message"])
    else:
        expect(page.locator("#cap-checks")).to_be_hidden()

    # a strip frame: pins it; ● live: back to the newest
    c.frame("e2e-roll/01.dng").click()
    expect(page.locator("#cap-number")).to_have_text("#1")
    expect(img).to_have_attribute("data-url", re.compile(r"^/img/e2e-roll/01\.preview\.jpg"))
    live = c("#btn-live")
    expect(live).to_be_visible()
    live.click()
    expect(page.locator("#cap-number")).to_have_text("#2")
    expect(live).to_be_hidden()
    # ← and → step through the roll, Esc goes back to live
    c.key("ArrowLeft")
    expect(page.locator("#cap-number")).to_have_text("#1")
    c.key("ArrowRight")
    expect(page.locator("#cap-number")).to_have_text("#2")
    c.key("ArrowLeft")
    c.key("Escape")
    expect(page.locator("#cap-number")).to_have_text("#2")
    expect(live).to_be_hidden()

    # Re-invert the frame shown: its preview and master are made again and replace the old ones
    before = d.frames()["e2e-roll/02.dng"]
    ino = (d.output / "e2e-roll" / "02.preview.jpg").stat().st_ino
    c("#btn-reinvert").click()
    expect(toast).to_have_text("re-inverting #2")
    d.wait_for(lambda: (lambda r: r["state"] == "master_written" and r["rerender"] is None
                        and r["t_master"] > before["t_master"])(d.frames()["e2e-roll/02.dng"]), 90, "re-render")
    assert (d.output / "e2e-roll" / "02.preview.jpg").stat().st_ino != ino

    # Retry failed: shown once a frame failed; re-queues it (a file that is no RAW fails again)
    retry = c("#btn-retry")
    expect(retry).to_be_hidden()
    (d.incoming / "e2e-roll" / "zz-bad.dng").write_bytes(b"\x00" * 64)
    expect(page.locator('#strip .frame[data-key="e2e-roll/zz-bad.dng"]')).to_have_attribute(
        "data-status", "failed", timeout=60000)
    expect(retry).to_be_visible()
    assert d.frames()["e2e-roll/zz-bad.dng"]["attempts"] == 1
    retry.click()
    expect(toast).to_have_text("failed frames re-queued")
    d.wait_for(lambda: d.frames()["e2e-roll/zz-bad.dng"]["attempts"] == 2, 60, "the retried frame tried again")
    assert "retry e2e-roll/zz-bad.dng" in d.log_text()

    # the print panel (its sliders and the neutral picker are followed to the pixels in
    # test_real_daemon_print_sliders_and_neutral_picker): every slider goes to the frame's print,
    # Pick neutral, Apply to roll, Reset, and the panel folds and unfolds
    c.frame("e2e-roll/02.dng").click()
    expect(page.locator("#cap-number")).to_have_text("#2")

    def frame_print():
        return _json.loads(d.frames()["e2e-roll/02.dng"].get("print") or "{}")

    # Pick neutral, then a step of the grey wedge along the bottom of the sample negatives
    # (capture/samples.py).  As this roll inverts them, the wedge carries a cast, on some steps
    # more than the white balance corrects: the daemon then refuses the point with a line the
    # page shows, and the next step is tried.  Either way the page's point went to the App's
    # set_print; that an accepted pick makes the point grey, to the pixels, is
    # test_real_daemon_print_sliders_and_neutral_picker's (on a neutral grey ramp).
    said = []
    for x in (0.94, 0.81, 0.69, 0.31):
        c("#btn-neutral").click()
        expect(page.locator("#btn-neutral")).to_have_attribute("aria-pressed", "true")
        box = img.bounding_box()
        nw, nh = page.evaluate("[document.getElementById('latest').naturalWidth,"
                               " document.getElementById('latest').naturalHeight]")
        sc = min(box["width"] / nw, box["height"] / nh)
        x0, y0 = box["x"] + (box["width"] - nw * sc) / 2, box["y"] + (box["height"] - nh * sc) / 2
        page.evaluate("() => { const t = document.getElementById('toast'); t.textContent = ''; }")
        page.mouse.click(x0 + x * nw * sc, y0 + 0.95 * nh * sc)
        expect(page.locator("#btn-neutral")).to_have_attribute("aria-pressed", "false")
        expect(toast).to_contain_text(re.compile("neutral:|pick a neutral"), timeout=15000)
        said.append(toast.text_content())
        if "neutral:" in said[-1]:
            break
    if "neutral:" in said[-1]:
        d.wait_for(lambda: "temperature" in frame_print() and "tint" in frame_print(), 30,
                   "the neutral's white balance in the journal")
    else:  # refused each time: the App answered the page's neutral command with its reason
        assert all("cast is beyond the white balance" in t for t in said), said
        assert d.log_text().count("set_print: the picked point's cast is beyond") >= len(said)
        assert not frame_print()
    want = {"exposure": 0.5, "temperature": 5000, "tint": 10, "contrast": 1.3, "black": 0.02, "white": 0.95}
    for k, v in want.items():
        c.slider(k, v)
    expect(toast).to_contain_text("#2 print:")
    d.wait_for(lambda: all(frame_print().get(k) == pytest.approx(v) for k, v in want.items()), 30,
               f"the frame's print in the journal: {want}")
    expect(page.locator("#pr-source")).to_have_text("frame's")
    c("#btn-print-roll").click()
    expect(toast).to_contain_text("roll e2e-roll:")
    man = _json.loads((d.state / "rolls" / "e2e-roll" / "manifest.json").read_text())
    assert man["print"]["contrast"] == 1.3
    c("#btn-print-reset").click()
    expect(toast).to_contain_text("#2 print reset:")
    d.wait_for(lambda: not d.frames()["e2e-roll/02.dng"].get("print"), 30, "the frame follows its roll again")
    expect(page.locator("#pr-source")).to_have_text("roll's")
    fold = c("#print-box > summary")
    c.used.add("summary:print-box")
    fold.click()
    expect(page.locator("#print")).to_be_hidden()
    fold.click()
    expect(page.locator("#print")).to_be_visible()

    assert c.missed() == [], f"controls of the page this test did not use: {c.missed()}"
    # all of it (the calibration's blank frame included) parsed RAWs outside the daemon's process
    with open(f"/proc/{d.proc.pid}/maps") as fh:
        assert "libraw" not in fh.read().lower()
    assert d.stop() == 0
