"""The camera service: one thread owns the camera.

libgphoto2 is not safe to drive from two threads (waiting for events in one
while capturing in another gives -110, busy), so exactly one *owner thread*
holds the `gp.Camera` and serves a command queue.  Every request gets a
`concurrent.futures.Future`; a failure sets its exception (a caller never
learns of a problem only through a timeout).  Between commands the owner
polls `wait_for_event`, which doubles as the heartbeat and downloads photos
taken with the camera's own shutter button.

Size: ~1000 lines, over the project's ~600, because `CameraService` still holds
connection supervision, the card record's bookkeeping, downloads, live view and
the request queue in one class (they share the owner thread's state); splitting
it along those lines is issue 15 item 5.

Faults:
* busy (-110): retried a few times inside the command, reported in the
  snapshot; the camera stays connected.
* I/O errors, a vanished camera, a capture whose file never arrives: the
  camera is dropped, the owner backs off (capped exponential) and
  re-initialises a *fresh* `gp.Camera()`.
* a camera that stops answering (a libgphoto2 call that does not return):
  a watchdog thread notices the call overrunning its limit, abandons the
  stuck owner thread (it exits when its call finally returns, without
  touching anything) and starts a new owner with a fresh camera.
* After every (re)connect the card is scanned: a file the camera made but
  that was not downloaded (the link dropped mid-transfer, or the station was
  down or killed) is downloaded then, exactly once, and resolves the capture
  request that was in flight.  What was already taken is kept in a
  `CardRecord` (station/capture/cardrecord.py) in the state folder, per
  camera, so a restart neither loses such a frame nor downloads one twice;
  a camera the record has never met only has its card recorded (old photos
  are not the roll).

Files are written to a dot-temporary in the target folder (same filesystem
as the final name), fsynced, then hard-linked in under a name that does not
exist yet: a folder watcher only ever sees complete files, and nothing is
ever overwritten.
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from station.capture.cardrecord import CardRecord, Stamp
from station.capture.names import FileKind, safe_name, safe_relpath, sniff, write_atomic_no_clobber

log = logging.getLogger("station.capture")

# Error codes (gphoto2's GP_ERROR_*), so this module needs gphoto2 only once a
# camera is really opened (the virtual camera needs VCAMERADIR set first).
GP_OK = 0
GP_ERROR = -1
GP_ERROR_IO = -7
GP_ERROR_TIMEOUT = -10
GP_ERROR_IO_USB_CLAIM = -53
GP_ERROR_IO_USB_FIND = -52
GP_ERROR_MODEL_NOT_FOUND = -105
GP_ERROR_CAMERA_BUSY = -110
GP_ERROR_FILE_NOT_FOUND = -108
GP_ERROR_NOT_SUPPORTED = -6

MAX_FILE_FAILURES = 3  # a card listing or one file's recovery failing this often is not the link
RESCAN_S = 30.0  # seconds between idle re-scans of a card that a scan could not finish

GVFS_HINT = (
    "the camera is claimed by another program (gphoto2 error -53, could not claim the USB device). "
    "On a desktop this is almost always gvfs-gphoto2-volume-monitor, which mounts cameras for the "
    "file manager. Fix: unmount the camera in the file manager, then stop the monitor with "
    "`systemctl --user stop gvfs-gphoto2-volume-monitor.service` and keep it off with "
    "`systemctl --user mask gvfs-gphoto2-volume-monitor.service` (or remove the gvfs-backends "
    "package on a dedicated station)"
)


def keep_fd0_open() -> None:
    """Keep file descriptor 0 open on /dev/null.

    libgphoto2's PTP/IP driver (2.5.3x) closes fd 0 in every camera exit (its
    unused JPEG-stream socket is initialised to 0).  If fd 0 is free, the next
    file the process opens gets it -- a socket, a pipe, the journal -- and the
    next camera exit closes it.  So: fd 0 is re-opened on /dev/null at once
    after every libgphoto2 call.  (If another thread grabbed fd 0 in between,
    that thread keeps it: the window is a few microseconds.)"""
    try:
        os.fstat(0)
        return
    except OSError:
        pass
    fd = os.open(os.devnull, os.O_RDONLY)
    if fd != 0:
        os.close(fd)


def _gp():
    import gphoto2  # imported late: VCAMERADIR must be set before the first import

    return gphoto2


# --------------------------------------------------------------------- errors
class CameraError(Exception):
    """A capture request failed; str(exc) is a message for the operator."""


class NoCameraError(CameraError):
    pass


class CameraBusyError(CameraError):
    pass


class CameraDisconnectedError(CameraError):
    pass


class CameraHungError(CameraDisconnectedError):
    pass


class CaptureTimeoutError(CameraDisconnectedError):
    pass


class ServiceStoppedError(CameraError):
    pass


class NoLiveViewError(CameraError):
    """The camera gives no live view through libgphoto2: asking again will not help."""

    permanent = True


class _Stale(BaseException):
    """Raised inside an abandoned owner thread: unwind without touching state."""


class _Reconnect(Exception):
    """Raised inside the owner: drop this camera and connect a fresh one."""

    def __init__(self, message: str, planned: bool = False):
        super().__init__(message)
        self.planned = planned


def describe_gp_error(exc: BaseException, port: str = "", connecting: bool = False) -> str:
    code = getattr(exc, "code", None)
    where = f" on {port}" if port and port != "auto" else ""
    if code == GP_ERROR_IO_USB_CLAIM:
        return GVFS_HINT
    if connecting and code in (GP_ERROR, GP_ERROR_IO, GP_ERROR_TIMEOUT, -5, -6):
        return f"no camera answering{where} (gphoto2 error {code}: {exc}); is it switched on and connected?"
    if code in (GP_ERROR_MODEL_NOT_FOUND, GP_ERROR_IO_USB_FIND):
        return f"no camera found{where} (is it connected, switched on and awake?)"
    if code == GP_ERROR_CAMERA_BUSY:
        return f"camera busy{where} (gphoto2 error -110)"
    if code is not None:
        return f"camera error{where}: {exc}"
    return f"{exc.__class__.__name__}: {exc}"


# -------------------------------------------------------------------- options
@dataclass
class CaptureOptions:
    keep_on_card: bool = True  # False: delete from the card after a verified download
    keep_jpeg: bool = True  # RAW+JPEG cameras: keep the JPEG, or drop it
    capture_target: str | None = None  # None (leave as is), "card", "ram", or a camera's own choice
    capture_timeout: float = 20.0  # trigger -> all files downloaded
    settle_ms: int = 300  # a TIMEOUT this long after the last file ends a capture without CAPTURE_COMPLETE
    busy_retries: int = 5
    busy_delay: float = 0.3


@dataclass
class CapturedFile:
    path: Path  # final path in incoming/
    camera_path: str  # folder/name on the camera (informative only)
    kind: str  # "raw", "jpeg", ...
    size: int
    shot: int  # captures that belong together (RAW+JPEG) share it
    source: str  # "trigger", "camera" (shutter button), "recovered"
    t_complete: float  # time.time() when the file was in place
    camera: str | None = None  # camera model


@dataclass
class FileInfo:
    """What a namer gets to choose a file's final name from."""
    camera_folder: str
    camera_name: str  # sanitised
    kind: FileKind
    shot: int
    source: str


def default_namer(info: FileInfo) -> str:
    stem = os.path.splitext(info.camera_name)[0] or "frame"
    return stem + info.kind.ext


MIN_THROUGHPUT = 1e6  # bytes/s a download may be slow to before it counts as hung
LATE_FILE_S = 1.0  # a file announced this soon after a capture belongs to it

STATES = ("disconnected", "connecting", "ready", "busy", "reconnecting", "stopped")


def status_line(snap: dict) -> str:
    """One line for `station status` and systemd's STATUS=."""
    state = snap.get("state", "?")
    model = snap.get("model") or "camera"
    if state in ("ready", "busy"):
        return f"{model} {state} on {snap.get('port')}, {snap.get('files', 0)} files"
    err = snap.get("last_error")
    return f"camera {state}" + (f": {err}" if err else "")


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class CameraService:
    """One thread owns the camera; see the module docstring.

    incoming     folder the downloads go to (subfolders come from the namer)
    port         "auto", a libgphoto2 port ("usb:001,004"), "ptpip:HOST:PORT:PORT", or
                 "virtual" (libgphoto2's virtual camera; see station.capture.virtual)
    options      CaptureOptions
    on_file      callback(path) for every file put in place (any thread-safe callable)
    on_captured  callback(CapturedFile) for every file put in place (shot, kind, source, ...)
    on_state     callback(snapshot: dict) on every state change
    namer        callback(FileInfo) -> relative path (may contain "/"); default keeps the
                 camera's (sanitised) stem with an extension from the file's content
    poll_ms      wait_for_event timeout between commands (the heartbeat)
    hang_timeout seconds a single libgphoto2 call may take before the camera counts as hung
    backoff      (initial, maximum) seconds between reconnection attempts
    session_limit re-initialise the camera after this many captures (the virtual camera
                 stops answering after ~26 in one session)
    before_connect callback() run in the owner thread before each gp.Camera() is made
    before_capture callback() run in the owner thread before each trigger (the virtual
                 camera swaps in the next frame there)
    scan_on_connect list the card after each (re)connect and download files that were
                 made but never downloaded (the first connect to a camera the record does
                 not know only records what is there)
    record       a CardRecord, or the path of its file (kept across restarts; the daemon
                 uses <state>/camera-files.jsonl); None keeps it in memory for this process
    """

    def __init__(
        self,
        incoming: str | os.PathLike,
        port: str = "auto",
        *,
        options: CaptureOptions | None = None,
        on_file: Callable[[Path], None] | None = None,
        on_captured: Callable[["CapturedFile"], None] | None = None,
        on_state: Callable[[dict], None] | None = None,
        namer: Callable[[FileInfo], str] | None = None,
        poll_ms: int = 100,
        hang_timeout: float = 15.0,
        backoff: tuple[float, float] = (0.5, 10.0),
        session_limit: int | None = None,
        before_connect: Callable[[], None] | None = None,
        before_capture: Callable[[], None] | None = None,
        scan_on_connect: bool = True,
        record: CardRecord | str | os.PathLike | None = None,
    ):
        self.incoming = Path(incoming)
        self.port = port or "auto"
        self.options = options or CaptureOptions()
        self.on_file = on_file
        self.on_captured = on_captured
        self.on_state = on_state
        self.namer = namer or default_namer
        self.poll_ms = int(poll_ms)
        self.hang_timeout = float(hang_timeout)
        self.backoff = backoff
        self.session_limit = session_limit
        self.before_connect = before_connect
        self.before_capture = before_capture
        self.scan_on_connect = scan_on_connect

        self._lock = threading.RLock()
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._gen = 0
        self._op: tuple[str, float, int] | None = None  # (name, deadline, generation)
        self._current: cf.Future | None = None  # capture future being served
        self._orphan: cf.Future | None = None  # capture cut short by a fault, resolved after reconnect
        self._orphan_deadline = 0.0
        self._record = record if isinstance(record, CardRecord) else CardRecord(record)
        self._cam_id = port or "auto"  # the camera's identity in the record (model#serial), set on connect
        self._baseline_done = False  # the card was scanned once by this process
        self._no_live_view: str | None = None  # why the connected camera gives no live view
        self._scan_due = False  # a card scan left files behind: scan again when idle, every RESCAN_S
        self._next_scan = 0.0
        self._list_failures = 0  # card listings failed in a row
        self._dl_failures: dict[tuple[str, str], int] = {}  # recovery downloads failed, per card file
        self._shot = 0
        self._last_capture = (0, -1e9)  # (shot, monotonic end) of the last triggered capture
        self._session_captures = 0
        self._threads: list[threading.Thread] = []
        self._watchdog: threading.Thread | None = None
        self._snap = {
            "state": "disconnected",
            "port": self.port,
            "model": None,
            "since": _now_iso(),
            "last_error": None,
            "last_error_at": None,
            "captures": 0,
            "files": 0,
            "reconnects": 0,
            "faults": {},
            "last_file": None,
        }

    # ------------------------------------------------------------ public API
    def start(self) -> "CameraService":
        self.incoming.mkdir(parents=True, exist_ok=True)
        keep_fd0_open()
        self._spawn_owner()
        self._watchdog = threading.Thread(target=self._watch, name="camera-watchdog", daemon=True)
        self._watchdog.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._queue.put(None)
        for t in list(self._threads):
            t.join(timeout)
        self._fail_pending(ServiceStoppedError("camera service stopped"))
        self._record.close()
        self._set_state("stopped")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def snapshot(self) -> dict:
        with self._lock:
            snap = dict(self._snap)
            snap["faults"] = dict(snap["faults"])
            ident = self._cam_id
        # what the card record holds for this camera (why old photos were not downloaded, etc.)
        rec = self._record
        snap["card_record"] = {"camera": ident, "known": rec.knows(ident), "files": rec.count(ident),
                               "path": str(rec.path) if rec.path else None}
        return snap

    @property
    def state(self) -> str:
        return self._snap["state"]

    def wait_ready(self, timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.state in ("ready", "busy"):
                return True
            time.sleep(0.02)
        return False

    def capture(self) -> cf.Future:
        """Fire the shutter; the Future's result is a list of CapturedFile.

        Refused at once (the Future already holds NoCameraError) when no camera
        is connected: a trigger must never be queued to fire minutes later."""
        return self._request("capture")

    def preview(self) -> cf.Future:
        """One live-view frame; the Future's result is its bytes (JPEG on every camera
        libgphoto2 gives live view for).  Taken on the owner thread with
        `capture_preview`, in turn with captures; nothing is written to the card.
        Fails at once with NoCameraError when no camera is connected, and with
        NoLiveViewError (`.permanent`) when the camera has no live view."""
        return self._request("preview")

    def _request(self, what: str) -> cf.Future:
        """Queue a request for the owner thread, or fail its Future at once."""
        fut: cf.Future = cf.Future()
        with self._lock:
            state = self._snap["state"]
            if self._stop.is_set():
                fut.set_exception(ServiceStoppedError("camera service is not running"))
                return fut
            if state not in ("ready", "busy"):
                err = self._snap["last_error"]
                msg = f"no camera connected ({state}" + (f"; last error: {err}" if err else "") + ")"
                fut.set_exception(NoCameraError(msg))
                return fut
            if what == "preview" and self._no_live_view:
                fut.set_exception(NoLiveViewError(self._no_live_view))
                return fut
            fut.set_running_or_notify_cancel()
            self._queue.put((what, fut, time.time()))
        return fut

    def capture_sync(self, timeout: float | None = None) -> list[CapturedFile]:
        return self.capture().result(timeout if timeout is not None else self.options.capture_timeout + self.hang_timeout + 5)

    def reconnect(self) -> None:
        """Ask the owner to drop the camera and connect afresh."""
        self._queue.put(("reconnect", None, time.time()))

    # ------------------------------------------------------------- internals
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
                self._adopt_orphan()
            msg = f"camera stopped answering ({name} took longer than {self.hang_timeout:g} s); reconnecting"
            log.warning(msg)
            self._bump("reconnects")
            self._set_state("reconnecting", msg, fault="hung")
            self._spawn_owner()

    def _adopt_orphan(self) -> None:
        """(lock held) The capture in flight when the camera dropped out waits
        for the reconnect: a file it made is found by the card scan."""
        if self._current is not None and not self._current.done():
            self._orphan = self._current
            self._orphan_deadline = time.monotonic() + self.options.capture_timeout
        self._current = None

    def _drain_queue(self, exc: Exception) -> None:
        """Fail every request still waiting in the queue with `exc`."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item and item[1] is not None and not item[1].done():
                item[1].set_exception(exc)

    def _fail_queued(self, exc: Exception) -> None:
        """Fail requests that have not fired yet (never keep a trigger for later),
        and an orphaned capture once its grace period is over."""
        self._drain_queue(exc)
        with self._lock:
            if self._orphan is not None and time.monotonic() > self._orphan_deadline:
                if not self._orphan.done():
                    self._orphan.set_exception(CameraDisconnectedError(
                        f"the camera dropped out during the capture and is not back: {exc}"))
                self._orphan = None

    def _fail_pending(self, exc: Exception) -> None:
        self._drain_queue(exc)
        with self._lock:
            for fut in (self._orphan, self._current):
                if fut is not None and not fut.done():
                    fut.set_exception(exc)
            self._orphan = self._current = None

    # ----------------------------------------------------------- owner thread
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
                        self._fail_queued(NoCameraError(f"no camera connected: {msg}"))
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
                    with self._lock:
                        orphan, self._orphan = self._orphan, None
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

    def _identify(self, gen, cam, model) -> str:
        """The camera's identity for the card record: model and serial number.

        The serial comes from the driver's cached device info ('serialnumber'
        setting), so this costs no round trip on PTP cameras.  A camera without
        one (the virtual camera) is known by its model and port.  A link error
        here is a fault (a wrong identity would re-baseline a known card)."""
        gp = _gp()
        serial = None
        try:
            widget = self._guard(gen, "get_config", cam.get_single_config, "serialnumber")
            serial = str(widget.get_value() or "").strip() or None
        except gp.GPhoto2Error as exc:
            if exc.code not in (-2, -6):  # BAD_PARAMETERS (no such setting), NOT_SUPPORTED: no serial
                raise
        except (AttributeError, TypeError, ValueError):
            serial = None
        if serial:
            return f"{model or '?'}#{serial}"
        return f"{model or '?'}@{self.port}"

    def _stamp(self, gen, cam, folder: str, name: str) -> Stamp:
        """(size, mtime) of a card file as the camera reports it; None where it does not."""
        gp = _gp()
        try:
            info = self._guard(gen, "file_get_info", cam.file_get_info, folder, name)
        except gp.GPhoto2Error:
            return (None, None)
        f = info.file
        size = int(f.size) if f.fields & gp.GP_FILE_INFO_SIZE else None
        mtime = int(f.mtime) if f.fields & gp.GP_FILE_INFO_MTIME and f.mtime else None
        return (size, mtime)

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

    def _list_all(self, gen, cam, folder="/") -> list[tuple[str, str]]:
        out = []
        files = self._guard(gen, "list_files", cam.folder_list_files, folder)
        for i in range(files.count()):
            out.append((folder, files.get_name(i)))
        subs = self._guard(gen, "list_folders", cam.folder_list_folders, folder)
        for i in range(subs.count()):
            out += self._list_all(gen, cam, folder.rstrip("/") + "/" + subs.get_name(i))
        return out

    def _scan(self, gen, cam, periodic: bool = False) -> list[CapturedFile]:
        """List the card; download what the record says was never taken.

        A file whose download keeps failing (MAX_FILE_FAILURES times) is not the link's fault:
        it stops forcing reconnects and is tried once per idle re-scan (every RESCAN_S) instead."""
        if not self.scan_on_connect:
            self._baseline_done = True
            return []
        gp = _gp()
        try:
            files = self._list_all(gen, cam)
            self._list_failures = 0
        except gp.GPhoto2Error as exc:
            self._list_failures += 1
            if self._list_failures >= MAX_FILE_FAILURES:  # a camera that cannot list: keep it usable
                log.error("camera: the card listing failed %d times in a row (%s); tried again in %g s",
                          self._list_failures, describe_gp_error(exc, self.port), RESCAN_S)
                self._scan_due = True
                self._next_scan = time.monotonic() + RESCAN_S
                return []
            raise self._fault(exc, "the card listing") from None
        ident, rec = self._cam_id, self._record
        if not rec.knows(ident):
            rec.baseline(ident, [(folder, name, self._stamp(gen, cam, folder, name)) for folder, name in files])
            if files:
                log.info("camera: %s is new to this station: the %d files on its card are recorded, not downloaded",
                         ident, len(files))
            self._baseline_done = True
            return []
        self._baseline_done = True
        self._scan_due = False
        recovered = []
        for folder, name in files:
            if rec.has_name(ident, folder, name):
                if rec.is_taken(ident, folder, name, self._stamp(gen, cam, folder, name)):
                    continue
                log.info("camera: %s/%s is not the file of that name taken before (a reformatted card?)",
                         folder, name)
            key = (folder, name)
            stubborn = self._dl_failures.get(key, 0) >= MAX_FILE_FAILURES
            if stubborn and not periodic:
                self._scan_due = True
                continue
            log.info("camera: recovering %s/%s (made but not downloaded before the fault or restart)", folder, name)
            try:
                recovered += self._download(gen, cam, folder, name, self._next_shot(), "recovered")
            except CameraError as exc:
                # a name that cannot be addressed (recorded, skipped from now on) or incoming/ not
                # writable (not recorded: the periodic re-scan tries again); the next file
                log.warning("camera: %s", exc)
                self._scan_due = True
                self._next_scan = time.monotonic() + RESCAN_S
                continue
            except gp.GPhoto2Error as exc:
                n = self._dl_failures[key] = self._dl_failures.get(key, 0) + 1
                if n < MAX_FILE_FAILURES:  # most likely the link: reconnect, and this scan runs again
                    raise self._fault(exc, f"recovering {folder}/{name}") from None
                msg = (f"camera file {folder}/{name} failed to download {n} times ({describe_gp_error(exc, self.port)}); "
                       f"left on the card, tried again every {RESCAN_S:g} s")
                log.error("camera: %s", msg)
                self._set_state(self._snap["state"], msg, fault="download")
                self._scan_due = True
                self._next_scan = time.monotonic() + RESCAN_S
                continue
            self._dl_failures.pop(key, None)
        return recovered

    def _next_shot(self) -> int:
        with self._lock:
            self._shot += 1
            return self._shot

    def _serve_once(self, gen, cam) -> None:
        try:
            item = self._queue.get_nowait()
        except queue.Empty:
            item = None
        if item is None:
            if self._stop.is_set():
                return
            if self._scan_due and time.monotonic() >= self._next_scan:
                self._next_scan = time.monotonic() + RESCAN_S
                self._scan(gen, cam, periodic=True)  # files an earlier scan left (callbacks fire as they land)
                return
            t0 = time.monotonic()
            got_event = self._poll(gen, cam)
            if got_event:
                return
            # Some drivers (PTP/IP) return TIMEOUT at once instead of waiting:
            # wait out the rest of the poll on the command queue instead.
            rest = self.poll_ms / 1000 - (time.monotonic() - t0)
            if rest <= 0:
                return
            try:
                item = self._queue.get(timeout=rest)
            except queue.Empty:
                return
            if item is None:
                return
        what, fut, t_req = item
        if what == "reconnect":
            raise _Reconnect("reconnect requested", planned=True)
        if what == "preview":
            self._preview(gen, cam, fut)
            return
        if what == "capture":
            if self.session_limit and self._session_captures >= self.session_limit:
                self._requeue_front(item)  # served first on the fresh session
                raise _Reconnect("session capture limit reached", planned=True)
            with self._lock:
                self._current = fut
            self._set_state("busy")
            try:
                files = self._capture(gen, cam, t_req)
            except (_Stale, _Reconnect):
                raise
            except Exception as exc:
                if not isinstance(exc, CameraError):
                    gp = _gp()
                    if isinstance(exc, gp.GPhoto2Error):
                        raise
                    log.exception("camera: capture failed")
                    exc = CameraError(f"capture failed: {exc.__class__.__name__}: {exc}")
                with self._lock:
                    self._current = None
                if not fut.done():
                    fut.set_exception(exc)
                self._set_state("ready")
                return
            with self._lock:
                self._current = None
            if not fut.done():
                fut.set_result(files)
            self._set_state("ready")

    def _preview(self, gen, cam, fut: cf.Future) -> None:
        gp = _gp()
        try:
            camfile = self._guard(gen, "capture_preview", cam.capture_preview)
            data = bytes(memoryview(camfile.get_data_and_size()))
            del camfile
        except gp.GPhoto2Error as exc:
            if exc.code == GP_ERROR_NOT_SUPPORTED:
                msg = (f"{self._snap['model'] or 'this camera'} gives no live view through libgphoto2 "
                       "(capture_preview is not supported); use the pedal")
                with self._lock:
                    self._no_live_view = msg
                err: CameraError = NoLiveViewError(msg)
            elif exc.code == GP_ERROR_CAMERA_BUSY:
                err = CameraBusyError(describe_gp_error(exc, self.port))
            else:
                if not fut.done():
                    fut.set_exception(CameraDisconnectedError(f"live view: {describe_gp_error(exc, self.port)}"))
                raise self._fault(exc, "capture_preview") from None
            if not fut.done():
                fut.set_exception(err)
            return
        if not fut.done():
            fut.set_result(data)

    def _requeue_front(self, item) -> None:
        items = []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        for x in [item] + items:
            self._queue.put(x)

    def _fault(self, exc: BaseException, during: str) -> _Reconnect:
        """Turn a libgphoto2 error into a reconnect, with the fault recorded."""
        msg = f"{describe_gp_error(exc, self.port)} (during {during}); reconnecting"
        log.warning("camera: %s", msg)
        with self._lock:
            self._adopt_orphan()
        code = getattr(exc, "code", None)
        self._set_state("reconnecting", msg, fault="timeout" if isinstance(exc, CaptureTimeoutError) else f"io{code}" if code else "io")
        return _Reconnect(msg)

    def _poll(self, gen, cam) -> bool:
        """One heartbeat; returns True if the camera reported something."""
        gp = _gp()
        try:
            ev, data = self._guard(gen, "wait_for_event", cam.wait_for_event, self.poll_ms,
                                   limit=self.poll_ms / 1000 + self.hang_timeout)
        except gp.GPhoto2Error as exc:
            if exc.code == GP_ERROR_CAMERA_BUSY:
                time.sleep(0.05)
                return True
            raise self._fault(exc, "wait_for_event") from None
        if ev == gp.GP_EVENT_FILE_ADDED:
            last_shot, last_end = self._last_capture
            if time.monotonic() - last_end < LATE_FILE_S:
                # the second file of a RAW+JPEG shot announced after CAPTURE_COMPLETE
                shot, source = last_shot, "trigger"
            else:
                # a photo taken with the camera's own shutter button
                shot, source = self._next_shot(), "camera"
            try:
                self._download(gen, cam, data.folder, data.name, shot, source)
            except gp.GPhoto2Error as exc:
                raise self._fault(exc, "download") from None
        return ev != gp.GP_EVENT_TIMEOUT

    def _capture(self, gen, cam, t_req: float) -> list[CapturedFile]:
        gp = _gp()
        opts = self.options
        t0 = time.monotonic()
        shot = self._next_shot()
        if self.before_capture:
            self.before_capture()
        for attempt in range(opts.busy_retries + 1):
            try:
                self._guard(gen, "trigger_capture", cam.trigger_capture)
                break
            except gp.GPhoto2Error as exc:
                if exc.code == GP_ERROR_CAMERA_BUSY:
                    msg = describe_gp_error(exc, self.port)
                    self._set_state("busy", f"{msg}; retry {attempt + 1} of {opts.busy_retries}", fault="busy")
                    if attempt < opts.busy_retries:
                        time.sleep(opts.busy_delay * (attempt + 1))
                        continue
                    raise CameraBusyError(f"{msg}: gave up after {opts.busy_retries} retries") from None
                raise self._fault(exc, "trigger_capture") from None
        with self._lock:
            self._session_captures += 1
        self._bump("captures")
        files: list[CapturedFile] = []
        added = 0
        complete = False
        last_file = None
        deadline = t0 + opts.capture_timeout
        while True:
            if time.monotonic() > deadline:
                if added:
                    self._last_capture = (shot, time.monotonic())
                    break
                raise self._fault(CaptureTimeoutError(
                    f"no file arrived within {opts.capture_timeout:g} s of the trigger"), "capture")
            t_wait = time.monotonic()
            try:
                ev, data = self._guard(gen, "wait_for_event", cam.wait_for_event, 100,
                                       limit=1 + self.hang_timeout)
            except gp.GPhoto2Error as exc:
                if exc.code == GP_ERROR_CAMERA_BUSY:
                    time.sleep(0.05)
                    continue
                raise self._fault(exc, "capture") from None
            if ev == gp.GP_EVENT_FILE_ADDED:
                added += 1
                last_file = time.monotonic()
                try:
                    files += self._download(gen, cam, data.folder, data.name, shot, "trigger")
                except gp.GPhoto2Error as exc:
                    raise self._fault(exc, "download") from None
            elif ev == gp.GP_EVENT_CAPTURE_COMPLETE:
                complete = True
            elif ev == gp.GP_EVENT_TIMEOUT:
                if added and (complete or time.monotonic() - last_file >= opts.settle_ms / 1000):
                    self._last_capture = (shot, time.monotonic())
                    break
                if time.monotonic() - t_wait < 0.01:  # a driver that does not wait (PTP/IP)
                    time.sleep(0.01)
        return files

    def _download(self, gen, cam, folder: str, name: str, shot: int, source: str) -> list[CapturedFile]:
        gp = _gp()
        if "/" in name or "\x00" in name or name in ("", ".", ".."):
            # libgphoto2 addresses a file by folder + name: such a name can resolve to ANOTHER
            # object, whose bytes would be saved under this frame's name.  Never save them.
            self._record.taken(self._cam_id, folder, name, (None, None), how="refused")
            msg = (f"camera file {folder}/{name!r} cannot be addressed safely (its name contains a path "
                   "separator); left on the camera, not downloaded")
            self._set_state(self._snap["state"], msg, fault="name")
            raise CameraError(msg)
        stamp = self._stamp(gen, cam, folder, name)
        expected = stamp[0]
        # a big RAW over a slow link (Wi-Fi) is not a hung camera: allow 1 MB/s on top
        limit = self.hang_timeout + (expected or 0) / MIN_THROUGHPUT
        camfile = self._guard(gen, "file_get", cam.file_get, folder, name, gp.GP_FILE_TYPE_NORMAL, limit=limit)
        data = bytes(memoryview(camfile.get_data_and_size()))  # copy while camfile is alive
        del camfile
        if expected is not None and expected != len(data):
            raise self._fault(CameraDisconnectedError(
                f"short download of {folder}/{name}: {len(data)} of {expected} bytes"), "download")
        kind = sniff(data, name)
        out: list[CapturedFile] = []
        if kind.kind == "jpeg" and not self.options.keep_jpeg:
            log.info("camera: dropping JPEG %s/%s (keep_jpeg off)", folder, name)
            self._record.taken(self._cam_id, folder, name, stamp, how="dropped")
        else:
            info = FileInfo(folder, safe_name(name), kind, shot, source)
            try:
                rel = safe_relpath(self.namer(info))
            except Exception as exc:
                log.exception("camera: namer failed for %s/%s", folder, name)
                rel = safe_relpath(default_namer(info))
                self._set_state(self._snap["state"], f"naming failed ({exc}); kept the camera's name {rel}")
            self._record.pending(self._cam_id, folder, name, stamp, self.incoming / rel, data)
            try:
                path = write_atomic_no_clobber(data, self.incoming / rel)
            except OSError as exc:
                # e.g. a full disk: the file stays on the card (not marked as downloaded,
                # so the next card scan retries it) and the request fails with the reason
                msg = f"cannot write {self.incoming / rel}: {exc.strerror or exc}; the file stays on the camera"
                self._set_state(self._snap["state"], msg, fault="write")
                raise CameraError(msg) from None
            self._record.taken(self._cam_id, folder, name, stamp)
            cfile = CapturedFile(path, f"{folder}/{name}", kind.kind, len(data), shot, source, time.time(),
                                 self._snap["model"])
            out.append(cfile)
            with self._lock:
                self._snap["files"] += 1
                self._snap["last_file"] = str(path)
            log.info("camera: %s/%s -> %s (%d bytes, %s)", folder, name, path, len(data), source)
            for cb, arg in ((self.on_captured, cfile), (self.on_file, path)):
                if cb:
                    try:
                        cb(arg)
                    except Exception:
                        log.exception("file callback failed for %s", path)
        if not self.options.keep_on_card:
            try:
                self._guard(gen, "file_delete", cam.file_delete, folder, name)
                self._record.forget(self._cam_id, folder, name)
            except gp.GPhoto2Error as exc:
                log.warning("camera: could not delete %s/%s after download: %s", folder, name, exc)
        return out
