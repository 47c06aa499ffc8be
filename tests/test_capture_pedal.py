"""Foot pedal: debouncing, auto-repeat, grab, hot-plug; a real uinput device where the kernel allows it."""
import errno
import os
import time

import pytest

from station.capture.pedal import (
    EV_KEY, KEY_DOWN, KEY_REPEAT, KEY_UP, PedalConfig, PedalListener, debounce, key_code, matches,
)

KEY_B = 48


def test_debounce_pure():
    ev = [
        (0.000, EV_KEY, KEY_B, KEY_DOWN),  # press
        (0.005, EV_KEY, KEY_B, KEY_UP),  # bounce ...
        (0.010, EV_KEY, KEY_B, KEY_DOWN),
        (0.020, EV_KEY, KEY_B, KEY_UP),
        (0.400, EV_KEY, KEY_B, KEY_DOWN),  # second real press
        (0.650, EV_KEY, KEY_B, KEY_REPEAT),  # held: auto-repeat is not a press
        (0.700, EV_KEY, KEY_B, KEY_REPEAT),
        (0.900, EV_KEY, KEY_B, KEY_UP),
        (1.000, EV_KEY, 30, KEY_DOWN),  # another key
        (1.100, 0x04, KEY_B, KEY_DOWN),  # EV_MSC, not a key event
        (1.300, EV_KEY, KEY_B, KEY_DOWN),  # third press
    ]
    assert debounce(ev, KEY_B, 0.3) == [0.000, 0.400, 1.300]
    assert debounce(ev, KEY_B, 0.0) == [0.000, 0.010, 0.400, 1.300]


def test_key_names():
    pytest.importorskip("evdev")
    assert key_code("KEY_B") == KEY_B and key_code("b") == KEY_B and key_code(272) == 272
    with pytest.raises(ValueError):
        key_code("KEY_NOPE")


class _Info:
    vendor, product = 0x0C45, 0x7403


class _Ev:
    def __init__(self, t, code, value):
        self.t, self.type, self.code, self.value = t, EV_KEY, code, value

    def timestamp(self):
        return self.t


class FakePedal:
    """Stands in for evdev.InputDevice: a pipe makes it selectable."""

    name = "PCsensor FootSwitch Keyboard"
    info = _Info()

    def __init__(self, path="/dev/input/event7"):
        self.path = path
        self.fd, self._w = os.pipe()
        self.queue, self.grabbed, self.closed, self.unplugged = [], False, False, False

    def send(self, t, code, value):
        try:  # the real event type where python-evdev is installed
            from evdev import InputEvent

            ev = InputEvent(int(t), int(round((t - int(t)) * 1e6)), EV_KEY, code, value)
        except ImportError:
            ev = _Ev(t, code, value)
        self.queue.append(ev)
        os.write(self._w, b"x")

    def unplug(self):
        self.unplugged = True
        os.write(self._w, b"x")

    def read(self):
        os.read(self.fd, 4096)
        if self.unplugged:
            raise OSError(errno.ENODEV, "No such device")
        q, self.queue = self.queue, []
        if not q:
            raise BlockingIOError()
        return iter(q)

    def grab(self):
        self.grabbed = True

    def ungrab(self):
        self.grabbed = False

    def close(self):
        self.closed = True


def wait_for(cond, timeout=3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


def test_matches_by_name_id_and_path():
    dev = FakePedal()
    assert matches(dev, "footswitch") and matches(dev, "0c45:7403") and not matches(dev, "0c45:0001")
    assert matches(dev, "/dev/input/event7") and not matches(dev, "logitech")


def test_listener_grabs_debounces_and_survives_hotplug():
    devices = [None, FakePedal(), None, FakePedal("/dev/input/event9")]  # absent, plugged, unplugged, back
    served = []

    def finder(spec):
        dev = devices.pop(0) if len(devices) > 1 else devices[0]
        if dev is not None:
            served.append(dev)
        return dev

    presses = []
    states = []
    lst = PedalListener(PedalConfig("footswitch", "KEY_B", grab=True, debounce_ms=300, rescan_s=0.05),
                        lambda: presses.append(time.monotonic()), on_state=lambda s, d: states.append(s), finder=finder)
    lst.start()
    try:
        assert wait_for(lambda: lst.state == "ready")
        first = served[0]
        assert first.grabbed
        first.send(10.0, KEY_B, KEY_DOWN)
        first.send(10.01, KEY_B, KEY_UP)
        first.send(10.02, KEY_B, KEY_DOWN)  # bounce
        first.send(10.5, KEY_B, KEY_REPEAT)  # auto-repeat
        first.send(11.0, KEY_B, KEY_DOWN)
        assert wait_for(lambda: len(presses) == 2)
        first.unplug()
        assert wait_for(lambda: len(served) == 2 and lst.state == "ready")
        assert first.closed and not first.grabbed
        second = served[1]
        second.send(20.0, KEY_B, KEY_DOWN)
        assert wait_for(lambda: len(presses) == 3)
        time.sleep(0.1)
        assert len(presses) == 3
        assert "searching" in states and states.count("ready") == 2
    finally:
        lst.stop()


def test_pedal_press_with_no_camera_is_refused_not_queued(tmp_path):
    """The pedal calls service.capture(); with no camera it fails at once."""
    from station.capture.camera import CameraService, NoCameraError

    svc = CameraService(tmp_path, "ptpip:127.0.0.1:9:9", backoff=(5, 5))  # never started: no camera
    futures = []
    dev = FakePedal()
    lst = PedalListener(PedalConfig("footswitch", debounce_ms=0, rescan_s=0.05), lambda: futures.append(svc.capture()),
                        finder=lambda spec: dev)
    lst.start()
    try:
        assert wait_for(lambda: lst.state == "ready")
        dev.send(1.0, KEY_B, KEY_DOWN)
        assert wait_for(lambda: futures)
        with pytest.raises(NoCameraError):
            futures[0].result(0.1)
    finally:
        lst.stop()


def _uinput_usable():
    try:
        import evdev  # noqa: F401
    except ImportError:
        return "python-evdev not installed"
    if not os.path.exists("/dev/uinput"):
        return "/dev/uinput does not exist here (no uinput module / not exposed to this container)"
    if not os.access("/dev/uinput", os.W_OK):
        return "/dev/uinput is not writable by this user"
    return None


@pytest.mark.skipif(_uinput_usable() is not None, reason=str(_uinput_usable()))
def test_real_uinput_pedal():
    import evdev
    from evdev import UInput, ecodes

    ui = UInput({ecodes.EV_KEY: [ecodes.KEY_B]}, name="Station Test FootSwitch", vendor=0x1209, product=0x0001)
    presses = []
    lst = PedalListener(PedalConfig("1209:0001", "KEY_B", grab=True, debounce_ms=200, rescan_s=0.1),
                        lambda: presses.append(1))
    try:
        lst.start()
        assert wait_for(lambda: lst.state == "ready", 5)
        for value in (1, 0, 1, 0):  # a press and a bounce
            ui.write(ecodes.EV_KEY, ecodes.KEY_B, value)
            ui.syn()
        assert wait_for(lambda: len(presses) == 1)
        time.sleep(0.3)
        ui.write(ecodes.EV_KEY, ecodes.KEY_B, 1)
        ui.syn()
        assert wait_for(lambda: len(presses) == 2)
        # grabbed: nobody else can grab it
        dev = next(evdev.InputDevice(p) for p in evdev.list_devices() if evdev.InputDevice(p).name == "Station Test FootSwitch")
        with pytest.raises(OSError):
            dev.grab()
    finally:
        lst.stop()
        ui.close()
