"""The camera service's supervisor: the owner thread's life, the watchdog, the faults.

Part of `CameraService` (station.capture.camera; a mixin sharing the service's state).
Exactly one *owner thread* holds the `gp.Camera`; this part connects it (a fresh
`gp.Camera()` each time), runs the owner's loop, and sorts what goes wrong:

* transient, the camera stays connected: busy (-110) is retried inside the command and
  reported; a request's own refusal (a name that cannot be addressed, a full disk) fails
  that request only.
* the link: I/O errors, a vanished camera, a capture whose file never arrives -> `_fault`
  records it and the owner drops the camera, backs off (capped exponential) and connects
  afresh; requests that have not fired are failed, never kept for later.
* hung: a libgphoto2 call overrunning its limit (`_guard` arms, `_watch` checks) -> the
  stuck owner is abandoned (a new generation; the old thread unwinds with `_Stale` when its
  call returns, touching nothing) and a new owner starts.
* permanent, asking again will not help (`.permanent` on the error: no live view on this
  camera): answered at once for the rest of the connection.
"""
from __future__ import annotations

import logging
import threading
import time

from station.capture.camtypes import (
    GP_ERROR_IO_USB_CLAIM, CameraDisconnectedError, CaptureTimeoutError, NoCameraError, _gp, _now_iso,
    _Reconnect, _Stale, describe_gp_error, keep_fd0_open,
)

log = logging.getLogger("station.capture")


class Supervisor:
    """(mixin of CameraService) the owner thread, its watchdog and fault handling."""

    def _spawn_owner(self) -> None:
        with self._lock:
            gen = self._gen
        t = threading.Thread(target=self._owner, args=(gen,), name=f"camera-owner-{gen}", daemon=True)
        self._threads = [x for x in self._threads if x.is_alive()] + [t]
        t.start()

    def _set_state(self, state: str, error: str | None = None, fault: str | None = None) -> None:
        with self._lock:
            changed = state != self._snap["state"] or error is not None
            if state != self._snap["state"]:
                self._snap["since"] = _now_iso()
            self._snap["state"] = state
            if error is not None:
                self._snap["last_error"] = error
                self._snap["last_error_at"] = _now_iso()
            if fault:
                self._snap["faults"][fault] = self._snap["faults"].get(fault, 0) + 1
            snap = self.snapshot() if changed else None
        if snap and self.on_state:
            try:
                self.on_state(snap)
            except Exception:  # a broken observer must not stop the camera
                log.exception("on_state callback failed")

    def _bump(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._snap[key] += n

    def _guard(self, gen: int, name: str, fn, *args, limit: float | None = None):
        """Call a libgphoto2 function with the watchdog armed."""
        if gen != self._gen:
            raise _Stale()
        with self._lock:
            self._op = (name, time.monotonic() + (limit or self.hang_timeout), gen)
        try:
            return fn(*args)
        finally:
            keep_fd0_open()
            with self._lock:
                if self._op and self._op[2] == gen:
                    self._op = None
            if gen != self._gen:
                raise _Stale()

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            with self._lock:
                op = self._op
                if not op or op[2] != self._gen or time.monotonic() < op[1]:
                    continue
                name = op[0]
                self._gen += 1
                self._op = None
                self._requests.adopt_orphan(self.options.capture_timeout)
            msg = f"camera stopped answering ({name} took longer than {self.hang_timeout:g} s); reconnecting"
            log.warning(msg)
            self._bump("reconnects")
            self._set_state("reconnecting", msg, fault="hung")
            self._spawn_owner()

    def _owner(self, gen: int) -> None:
        cam = None
        planned = False
        delay = self.backoff[0]
        try:
            while not self._stop.is_set():
                if gen != self._gen:
                    raise _Stale()
                if cam is None:
                    first = not self._baseline_done
                    if planned:  # a routine re-initialisation: requests keep queueing meanwhile
                        self._set_state("busy")
                    else:
                        self._set_state("connecting" if first and self._snap["reconnects"] == 0 else "reconnecting")
                    try:
                        cam = self._connect(gen)
                    except _Stale:
                        raise
                    except Exception as exc:
                        planned = False
                        msg = describe_gp_error(exc, self.port, connecting=True)
                        fault = "usb_claim" if getattr(exc, "code", None) == GP_ERROR_IO_USB_CLAIM else "connect"
                        log.warning("camera: %s; retrying in %.1f s", msg, delay)
                        self._set_state("disconnected", msg, fault=fault)
                        # nothing may wait for a camera that is not there
                        self._requests.fail_queued(NoCameraError(f"no camera connected: {msg}"))
                        if self._stop.wait(delay):
                            break
                        delay = min(delay * 2, self.backoff[1])
                        continue
                    delay = self.backoff[0]
                    planned = False
                    try:
                        recovered = self._scan(gen, cam)
                    except _Stale:
                        raise
                    except _Reconnect:
                        self._drop(cam)
                        cam = None
                        self._bump("reconnects")
                        continue
                    except Exception as exc:
                        log.warning("camera: card scan failed: %s", describe_gp_error(exc, self.port))
                        recovered = []
                    orphan = self._requests.take_orphan()
                    if orphan is not None and not orphan.done():
                        if recovered:
                            orphan.set_result(recovered)
                        else:
                            orphan.set_exception(CameraDisconnectedError(
                                f"the camera dropped out during the capture ({self._snap['last_error']}); "
                                "it is back, but no new file was found on it"))
                    self._set_state("ready")
                try:
                    self._serve_once(gen, cam)
                except _Reconnect as exc:
                    self._drop(cam)
                    cam = None
                    planned = exc.planned
                    if not exc.planned:
                        self._bump("reconnects")
                    continue
                except _Stale:
                    raise
                except Exception as exc:  # a bug or an odd libgphoto2 error: start afresh, never die
                    log.exception("camera: unexpected error; reconnecting")
                    self._fault(exc, "an unexpected error")
                    self._drop(cam)
                    cam = None
                    self._bump("reconnects")
                    continue
        except _Stale:
            log.debug("camera owner %d abandoned", gen)
            return
        finally:
            if cam is not None and gen == self._gen:
                self._drop(cam)
            elif cam is not None:
                threading.Thread(target=self._drop, args=(cam,), daemon=True).start()

    def _drop(self, cam) -> None:
        try:
            cam.exit()
        except Exception:
            pass
        finally:
            keep_fd0_open()

    def _connect(self, gen: int):
        from station.capture import virtual

        virtual.use_virtual(self.port == "virtual")
        if self.before_connect:
            self.before_connect()
        gp = _gp()

        def make():
            cam = gp.Camera()
            if self.port not in ("auto", "virtual"):
                pil = gp.PortInfoList()
                pil.load()
                idx = pil.lookup_path(self.port)
                cam.set_port_info(pil[idx])
                al = gp.CameraAbilitiesList()
                al.load()
                if self.port.startswith("ptpip:"):
                    cam.set_abilities(al[al.lookup_model("PTP/IP Camera")])
                else:
                    for name, path in gp.Camera.autodetect():
                        if path == self.port:
                            cam.set_abilities(al[al.lookup_model(name)])
                            break
            try:
                cam.init()
            except BaseException:
                try:
                    cam.exit()
                except Exception:
                    pass
                del cam
                keep_fd0_open()
                raise
            return cam

        cam = self._guard(gen, "connect", make)
        try:
            model = cam.get_abilities().model
        except Exception:
            model = None
        ident = self._identify(gen, cam, model)
        with self._lock:
            self._snap["model"] = model
            self._cam_id = ident
            self._no_live_view = None  # (another camera may be on the port now)
            self._session_captures = 0
        if self.options.capture_target:
            self._set_capture_target(gen, cam)
        log.info("camera: connected %s on %s", model, self.port)
        return cam

    def _set_capture_target(self, gen, cam) -> None:
        want = {"card": "Memory card", "ram": "Internal RAM"}.get(self.options.capture_target, self.options.capture_target)
        try:
            widget = self._guard(gen, "get_config", cam.get_single_config, "capturetarget")
            if widget is None:  # the camera has no such setting (the PTP/IP emulator): nothing to set
                log.info("camera: no capture target setting on this camera; left as it is")
                return
            widget.set_value(want)
            self._guard(gen, "set_config", cam.set_single_config, "capturetarget", widget)
        except _Stale:
            raise
        except Exception as exc:
            log.warning("camera: cannot set capture target %r: %s", want, exc)

    def _fault(self, exc: BaseException, during: str) -> _Reconnect:
        """Turn a libgphoto2 error into a reconnect, with the fault recorded."""
        msg = f"{describe_gp_error(exc, self.port)} (during {during}); reconnecting"
        log.warning("camera: %s", msg)
        self._requests.adopt_orphan(self.options.capture_timeout)
        code = getattr(exc, "code", None)
        self._set_state("reconnecting", msg, fault="timeout" if isinstance(exc, CaptureTimeoutError) else f"io{code}" if code else "io")
        return _Reconnect(msg)
