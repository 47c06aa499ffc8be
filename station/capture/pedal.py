"""USB foot pedal: a HID keyboard that sends one key; read with python-evdev.

* selected in the config by name (case-insensitive substring), by
  vendor:product id ("0c45:7403"), or by /dev/input/eventN path;
* one configurable key (e.g. "KEY_B", "BTN_LEFT" or a number);
* grabbed (EVIOCGRAB) so its keystrokes do not reach other programs;
* debounced (presses closer than `debounce_ms` to the last one are ignored),
  auto-repeat (value 2) and releases (value 0) ignored;
* hot-plugged: when the pedal is unplugged the listener goes back to looking
  for it every `rescan_s` seconds.

`on_press()` is called from the listener's thread; the daemon passes
`lambda: service.capture()` (which refuses at once when no camera is there).
"""
from __future__ import annotations

import errno
import logging
import os
import select
import threading
from dataclasses import dataclass
from typing import Callable, Iterable

log = logging.getLogger("station.pedal")

KEY_DOWN, KEY_UP, KEY_REPEAT = 1, 0, 2
EV_KEY = 0x01


@dataclass
class PedalConfig:
    device: str  # name substring, "vvvv:pppp", or a /dev/input path
    key: str | int = "KEY_B"
    grab: bool = True
    debounce_ms: int = 300
    rescan_s: float = 2.0


def key_code(key: str | int) -> int:
    if isinstance(key, int):
        return key
    if key.isdigit():
        return int(key)
    from evdev import ecodes

    name = key.upper()
    if not name.startswith(("KEY_", "BTN_")):
        name = "KEY_" + name
    code = ecodes.ecodes.get(name)
    if code is None:
        raise ValueError(f"unknown key {key!r} (use a name such as KEY_B or BTN_LEFT, or a number)")
    return code


class Debouncer:
    """Key events in, presses out: value 1 of our key, at least `window_s`
    after the previous accepted press; auto-repeat and releases ignored."""

    def __init__(self, code: int, window_s: float):
        self.code = code
        self.window = window_s
        self.last: float | None = None

    def feed(self, t: float, etype: int, code: int, value: int) -> bool:
        if etype != EV_KEY or code != self.code or value != KEY_DOWN:
            return False
        if self.last is not None and t - self.last < self.window:
            return False
        self.last = t
        return True


def debounce(events: Iterable[tuple[float, int, int, int]], code: int, window_s: float) -> list[float]:
    """Pure form: (time, type, code, value) events -> times of accepted presses."""
    d = Debouncer(code, window_s)
    return [t for t, etype, c, v in events if d.feed(t, etype, c, v)]


def matches(dev, spec: str) -> bool:
    spec = spec.strip()
    if spec.startswith("/dev/"):
        return os.path.realpath(dev.path) == os.path.realpath(spec)
    if len(spec) == 9 and spec[4] == ":":
        try:
            vid, pid = int(spec[:4], 16), int(spec[5:], 16)
        except ValueError:
            pass
        else:
            return dev.info.vendor == vid and dev.info.product == pid
    return spec.lower() in (dev.name or "").lower()


def find_device(spec: str):
    import evdev

    for path in evdev.list_devices():
        try:
            dev = evdev.InputDevice(path)
        except OSError:
            continue
        if matches(dev, spec):
            return dev
        dev.close()
    return None


class PedalListener:
    def __init__(self, config: PedalConfig, on_press: Callable[[], object], *,
                 on_state: Callable[[str, str | None], None] | None = None, finder=find_device):
        self.config = config
        self.on_press = on_press
        self.on_state = on_state
        self.finder = finder
        self.code = key_code(config.key)
        self.debouncer = Debouncer(self.code, config.debounce_ms / 1000)
        self.state = "searching"
        self.presses = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pedal", daemon=True)

    def start(self) -> "PedalListener":
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _set(self, state: str, detail: str | None = None) -> None:
        self.state = state
        log.info("pedal: %s%s", state, f" ({detail})" if detail else "")
        if self.on_state:
            try:
                self.on_state(state, detail)
            except Exception:
                log.exception("pedal on_state failed")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                dev = self.finder(self.config.device)
            except Exception as exc:
                dev = None
                log.warning("pedal: cannot list input devices: %s", exc)
            if dev is None:
                if self.state != "searching":
                    self._set("searching", f"no input device matches {self.config.device!r}")
                self._stop.wait(self.config.rescan_s)
                continue
            self._serve(dev)

    def _serve(self, dev) -> None:
        grabbed = False
        try:
            if self.config.grab:
                try:
                    dev.grab()
                    grabbed = True
                except OSError as exc:
                    log.warning("pedal: cannot grab %s (%s); its keys also reach other programs", dev.path, exc)
            self._set("ready", f"{dev.name} at {dev.path}")
            while not self._stop.is_set():
                r, _, _ = select.select([dev.fd], [], [], 0.2)
                if not r:
                    continue
                try:
                    events = list(dev.read())
                except BlockingIOError:
                    continue
                for ev in events:
                    if self.debouncer.feed(ev.timestamp(), ev.type, ev.code, ev.value):
                        self.presses += 1
                        try:
                            self.on_press()
                        except Exception:
                            log.exception("pedal: trigger failed")
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.EBADF, errno.EIO):
                self._set("searching", f"{getattr(dev, 'path', 'pedal')} unplugged")
            else:
                self._set("searching", f"read error: {exc}")
        finally:
            if grabbed:
                try:
                    dev.ungrab()
                except OSError:
                    pass
            try:
                dev.close()
            except Exception:
                pass
            if self._stop.is_set():
                self.state = "stopped"
            elif self.state == "ready":
                self._set("searching")
