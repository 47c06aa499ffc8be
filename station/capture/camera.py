"""The camera service: one thread owns the camera.

libgphoto2 is not safe to drive from two threads (waiting for events in one
while capturing in another gives -110, busy), so exactly one *owner thread*
holds the `gp.Camera` and serves a request queue.  Every request gets a
`concurrent.futures.Future`; a failure sets its exception (a caller never
learns of a problem only through a timeout).  Between commands the owner
polls `wait_for_event`, which doubles as the heartbeat and downloads photos
taken with the camera's own shutter button.

`CameraService` is put together from its parts, each in its own module:
* station.capture.requestqueue  the request queue (a Future per request; the capture
                                in flight and the one a fault cut short)
* station.capture.supervisor    the owner thread's life: connect, watchdog, faults
                                (busy, link, hung, permanent), reconnects with back-off
* station.capture.cardsync      the card scan, the card record, downloads
* here                          the public API and serving one request: capture
                                (trigger, wait for its files), live view (capture_preview),
                                the heartbeat
* station.capture.camtypes      errors, options, records (re-exported here)

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
  request that was in flight (see station.capture.cardsync).

Files are written to a dot-temporary in the target folder (same filesystem
as the final name), fsynced, then hard-linked in under a name that does not
exist yet: a folder watcher only ever sees complete files, and nothing is
ever overwritten.
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable

from station.capture.camtypes import (  # noqa: F401  (re-exported: callers import them from here)
    GP_ERROR, GP_ERROR_CAMERA_BUSY, GP_ERROR_FILE_NOT_FOUND, GP_ERROR_IO, GP_ERROR_IO_USB_CLAIM,
    GP_ERROR_IO_USB_FIND, GP_ERROR_MODEL_NOT_FOUND, GP_ERROR_NOT_SUPPORTED, GP_ERROR_TIMEOUT, GP_OK, GVFS_HINT,
    LATE_FILE_S, MAX_FILE_FAILURES, MIN_THROUGHPUT, RESCAN_S, STATES, CameraBusyError, CameraDisconnectedError,
    CameraError, CameraHungError, CapturedFile, CaptureOptions, CaptureTimeoutError, FileInfo, NoCameraError,
    NoLiveViewError, ServiceStoppedError, _gp, _now_iso, _Reconnect, _Stale, default_namer, describe_gp_error,
    keep_fd0_open, status_line,
)
from station.capture.cardrecord import CardRecord
from station.capture.cardsync import CardSync
from station.capture.requestqueue import Empty, RequestQueue
from station.capture.supervisor import Supervisor

log = logging.getLogger("station.capture")


class CameraService(Supervisor, CardSync):
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
        self._requests = RequestQueue(self._lock)
        self._stop = threading.Event()
        self._gen = 0
        self._op: tuple[str, float, int] | None = None  # (name, deadline, generation)
        self._record = record if isinstance(record, CardRecord) else CardRecord(record)
        self._cam_id = port or "auto"  # the camera's identity in the record (model#serial), set on connect
        self._baseline_done = False  # the card was scanned once by this process
        self._no_live_view: str | None = None  # why the connected camera gives no live view
        self._scan_due = False  # a card scan left files behind: scan again when idle, every rescan_s
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
        self._requests.put(None)
        for t in list(self._threads):
            t.join(timeout)
        self._requests.fail_pending(ServiceStoppedError("camera service stopped"))
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

    @property
    def rescan_s(self) -> float:
        """Seconds between idle re-scans of a card a scan could not finish: this module's
        RESCAN_S, read when used (a test shortens it)."""
        return RESCAN_S

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
            self._requests.put((what, fut, time.time()))
        return fut

    def capture_sync(self, timeout: float | None = None) -> list[CapturedFile]:
        return self.capture().result(timeout if timeout is not None else self.options.capture_timeout + self.hang_timeout + 5)

    def reconnect(self) -> None:
        """Ask the owner to drop the camera and connect afresh."""
        self._requests.put(("reconnect", None, time.time()))


    def _serve_once(self, gen, cam) -> None:
        try:
            item = self._requests.get_nowait()
        except Empty:
            item = None
        if item is None:
            if self._stop.is_set():
                return
            if self._scan_due and time.monotonic() >= self._next_scan:
                self._next_scan = time.monotonic() + self.rescan_s
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
                item = self._requests.get(timeout=rest)
            except Empty:
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
                self._requests.requeue_front(item)  # served first on the fresh session
                raise _Reconnect("session capture limit reached", planned=True)
            self._requests.serving(fut)
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
                self._requests.serving(None)
                if not fut.done():
                    fut.set_exception(exc)
                self._set_state("ready")
                return
            self._requests.serving(None)
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
                t_trig = time.monotonic()
                self._guard(gen, "trigger_capture", cam.trigger_capture)
                took = time.monotonic() - t_trig  # the start of a capture (issue 16: <= 0.3 s from its request)
                log.debug("camera: shot %d: %.3f s from the request to the trigger, trigger_capture %.3f s",
                          shot, time.time() - t_req - took, took)
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
