"""The camera service's card sync: what is on the camera's card, and downloads.

Part of `CameraService` (station.capture.camera; a mixin sharing the service's state, run
on the owner thread).  After every (re)connect the card is scanned: a file the camera made
but that was not downloaded (the link dropped mid-transfer, or the station was down or
killed) is downloaded then, exactly once.  What was already taken is kept in a `CardRecord`
(station/capture/cardrecord.py) in the state folder, per camera, so a restart neither loses
such a frame nor downloads one twice; a camera the record has never met only has its card
recorded (old photos are not the roll).  A file whose download keeps failing
(MAX_FILE_FAILURES times) is not the link's fault: it stops forcing reconnects and is tried
again on an idle re-scan (every `rescan_s`).

Files are written to a dot-temporary in the target folder (same filesystem as the final
name), fsynced, then hard-linked in under a name that does not exist yet: a folder watcher
only ever sees complete files, and nothing is ever overwritten.
"""
from __future__ import annotations

import logging
import time

from station.capture.camtypes import (
    MAX_FILE_FAILURES, MIN_THROUGHPUT, CameraDisconnectedError, CameraError, CapturedFile, FileInfo, _gp,
    default_namer, describe_gp_error,
)
from station.capture.cardrecord import Stamp
from station.capture.names import safe_name, safe_relpath, sniff, write_atomic_no_clobber

log = logging.getLogger("station.capture")


class CardSync:
    """(mixin of CameraService) the card scan, the card record's bookkeeping, downloads."""

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
        it stops forcing reconnects and is tried once per idle re-scan (every `rescan_s`) instead."""
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
                          self._list_failures, describe_gp_error(exc, self.port), self.rescan_s)
                self._scan_due = True
                self._next_scan = time.monotonic() + self.rescan_s
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
                self._next_scan = time.monotonic() + self.rescan_s
                continue
            except gp.GPhoto2Error as exc:
                n = self._dl_failures[key] = self._dl_failures.get(key, 0) + 1
                if n < MAX_FILE_FAILURES:  # most likely the link: reconnect, and this scan runs again
                    raise self._fault(exc, f"recovering {folder}/{name}") from None
                msg = (f"camera file {folder}/{name} failed to download {n} times ({describe_gp_error(exc, self.port)}); "
                       f"left on the card, tried again every {self.rescan_s:g} s")
                log.error("camera: %s", msg)
                self._set_state(self._snap["state"], msg, fault="download")
                self._scan_due = True
                self._next_scan = time.monotonic() + self.rescan_s
                continue
            self._dl_failures.pop(key, None)
        return recovered

    def _next_shot(self) -> int:
        with self._lock:
            self._shot += 1
            return self._shot

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
