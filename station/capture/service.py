"""The capture service inside the daemon: `station run` calls `attach(app)`.

It registers one object as the app's "camera" service (a boundary.Service):
* a CameraService on `camera.port` writing into `paths.incoming` (files are
  named into the current roll when there is one),
* the foot pedal (`pedal:` config section, when present and evdev is
  installed),
* commands `capture` (also what SIGUSR1 and the web page's button call),
  `roll_new` (publishes {"type": "roll", "event": "new", "roll"}) and `calibrate`,
* `snapshot()` -> the CameraState (with the current roll) for `station status`,
  STATUS= and the page, and {"type": "camera", ...} events on every state change.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from station.boundary import CameraState, RollState
from station.capture.camera import CameraError, CameraService, CaptureOptions, status_line
from station.capture.roll import RollError, RollStore

log = logging.getLogger("station.capture")


def _get(cfg, key, default=None):
    return cfg.get(key, default) if isinstance(cfg, dict) else default


class CaptureService:
    name = "camera"

    def __init__(self, app, cfg: dict):
        self.app = app
        cam = _get(cfg, "camera", {}) or {}
        paths = cfg["paths"]
        self.incoming = Path(paths["incoming"])
        self.rolls = RollStore(paths["state"], self.incoming)
        target = _get(cam, "capture_target")
        options = CaptureOptions(
            keep_on_card=bool(_get(cam, "keep_on_card", True)),
            keep_jpeg=_get(cam, "jpeg", "keep") != "drop",
            capture_target={"memory": "ram"}.get(target, target),
        )
        port = str(_get(cam, "port") or "auto")
        self.virtual = None
        before_connect = before_capture = None
        session_limit = None
        if port == "virtual":
            from station.capture import virtual

            folder = _get(cam, "virtual_frames")
            frames = _folder_frames(Path(folder)) if folder else _demo_frames()
            self.virtual = virtual.VirtualCamera(Path(paths["state"]) / "vcamera", frame_size=_frame_size(folder),
                                                 frames=frames)
            before_connect, before_capture = self.virtual.before_connect, self.virtual.next_frame
            session_limit = virtual.SESSION_LIMIT
        self.camera = CameraService(
            self.incoming, port, options=options, namer=self._namer, on_captured=self._on_captured,
            on_state=self._on_state, before_connect=before_connect, before_capture=before_capture,
            session_limit=session_limit, record=Path(paths["state"]) / "camera-files.jsonl",
        )
        self.pedal = None
        pcfg = _get(cfg, "pedal")
        if pcfg and _get(pcfg, "device"):
            try:
                from station.capture.pedal import PedalConfig, PedalListener

                self.pedal = PedalListener(
                    PedalConfig(device=str(pcfg["device"]), key=_get(pcfg, "key", "KEY_B"),
                                grab=bool(_get(pcfg, "grab", True)), debounce_ms=int(_get(pcfg, "debounce_ms", 300))),
                    self._pedal_press)
            except Exception as exc:  # evdev missing or a bad key name: the daemon still runs
                log.error("pedal: disabled: %s", exc)
        self._roll = None
        self._roll_lock = threading.Lock()
        self._shot_roll: dict[int, object] = {}  # shot -> the roll its files were named into
        self._calibrating = False
        # What a pedal press does: None = capture; another service (e.g. an auto-roll that a
        # press should stop) may set a callable here.
        self.pedal_action = None

    # ------------------------------------------------------------ life cycle
    def start(self) -> None:
        self.camera.start()
        if self.pedal:
            self.pedal.start()

    def stop(self) -> None:
        if self.pedal:
            self.pedal.stop()
        self.camera.stop()
        if self.virtual:
            self.virtual.close()

    def snapshot(self) -> CameraState:
        snap = self.camera.snapshot()
        roll = self._current_roll()
        detail = {k: v for k, v in snap.items() if k not in ("state", "port", "model", "last_error")}
        detail["pedal"] = self.pedal.state if self.pedal else None
        return CameraState(
            state=snap["state"], port=snap.get("port"), model=snap.get("model"), last_error=snap.get("last_error"),
            status=status_line(snap),
            roll=RollState(roll.name, roll.frame_count, roll.next_frame()) if roll else None,
            detail=detail)

    def commands(self) -> dict:
        return {"capture": self.capture, "roll_new": self.roll_new, "calibrate": self.calibrate, "flatfield": self.flatfield}

    # -------------------------------------------------------------- rolls
    def _current_roll(self):
        with self._roll_lock:
            try:
                cur = self.rolls.current()
            except RollError:
                cur = None
            if cur is None:
                self._roll = None
            elif self._roll is None or self._roll.name != cur.name:
                self._roll = cur
            return self._roll

    def _namer(self, info):
        if self._calibrating:
            # a dot-folder: the folder watcher ignores it, so the blank frame is never inverted
            return f".calibration/base-{info.shot}{info.kind.ext}"
        roll = self._shot_roll.get(info.shot) or self._current_roll()
        if roll is None:
            from station.capture.camera import default_namer

            return default_namer(info)
        self._shot_roll[info.shot] = roll
        return roll.namer(info)

    def _on_captured(self, cf) -> None:
        if self._calibrating:
            return
        roll = self._shot_roll.get(cf.shot)
        if roll is not None:
            try:
                roll.record(cf)
            except Exception:
                log.exception("roll %s: cannot record %s", roll.name, cf.path)
        self.app.publish({"type": "camera", "event": "file", "path": str(cf.path), "kind": cf.kind,
                          "source": cf.source})

    def _on_state(self, snap: dict) -> None:
        try:
            self.app.publish({"type": "camera", "state": snap["state"], "error": snap.get("last_error"),
                              "status": status_line(snap)})
        except Exception:
            pass

    # ----------------------------------------------------------- commands
    def capture(self, wait_positive: bool = False, timeout: float = 30.0, **_ignored) -> dict:
        """Fire, wait for the download; with wait_positive also for the preview."""
        t0 = time.time()
        fut = self.camera.capture()
        waiter = _PositiveWaiter(self.app, self.incoming) if wait_positive else None
        try:
            files = fut.result(timeout)
        except CameraError as exc:
            if waiter:
                waiter.close()
            raise RuntimeError(str(exc)) from None
        except Exception as exc:  # futures.TimeoutError
            if waiter:
                waiter.close()
            raise RuntimeError(f"capture did not finish within {timeout:g} s ({exc.__class__.__name__})") from None
        out = {
            "files": [str(f.path) for f in files],
            "download_s": round(time.time() - t0, 3),
            "roll": (self._current_roll().name if self._current_roll() else None),
        }
        if waiter:
            raws = [f for f in files if f.kind == "raw"] or files
            rel = str(Path(raws[0].path).relative_to(self.incoming)) if raws else None
            view = waiter.wait(rel, max(1.0, timeout - (time.time() - t0)))
            if view:
                out["preview"] = view.get("preview")
                out["latency"] = f"{time.time() - t0:.2f} s from trigger to preview"
        return out

    def _shoot_reference(self, what: str, sample: str, timeout: float, keep) -> Path:
        """Shoot a reference frame (the blank, the bare light): not a frame of the roll (kept
        out of its frame count).  `keep(bytes, suffix)` files the RAW with the roll and returns
        where; then the downloaded copies are removed.  `sample`: the station.capture.samples
        function the virtual stand serves for it."""
        if self.virtual is not None:  # the virtual stand: a blank / the holder empty, the bare light
            from station.capture import samples

            self.virtual.serve_next(getattr(samples, sample)())
        self._calibrating = True
        try:
            files = self.camera.capture().result(timeout)
        except CameraError as exc:
            raise RuntimeError(str(exc)) from None
        except Exception as exc:
            raise RuntimeError(f"{what} shot did not finish within {timeout:g} s ({exc.__class__.__name__})") from None
        finally:
            self._calibrating = False
        raw = Path(next((f for f in files if f.kind == "raw"), files[0]).path)
        path = keep(raw.read_bytes(), raw.suffix)
        for f in files:  # the bytes are kept in the roll's folder; drop our download copy
            Path(f.path).unlink(missing_ok=True)
        return path

    def calibrate(self, timeout: float = 30.0, **_ignored) -> dict:
        """Shoot the blank film-base frame of the current roll; every later frame of the roll
        is inverted with the base measured from it."""
        roll = self._current_roll()
        if roll is None:
            raise RuntimeError("no current roll: start one first (station roll new)")
        if roll.data.get("film") == "slide":  # its clear highlights are its white; unexposed slide film is black
            raise RuntimeError(f"roll {roll.name} is a slide roll: a slide has no film base to calibrate")
        path = self._shoot_reference("calibration", "blank_dng_bytes", timeout,
                                     lambda data, suffix: roll.set_base(data, suffix, source="shot"))
        base = (self.rolls.get(roll.name).data.get("base") or {})
        if not base.get("rgb") or base.get("file") != path.name:
            raise RuntimeError(f"film base frame {path} refused: {self.rolls.get(roll.name).data.get('base_error', 'unknown reason')}"
                               + (" (the roll keeps its earlier blank)" if base.get("rgb") else ""))
        self.app.publish({"type": "roll", "event": "calibrated", "roll": roll.name, "base": base["rgb"]})
        return {"roll": roll.name, "file": str(path), "base": base["rgb"]}

    def flatfield(self, timeout: float = 30.0, roll=None, **_ignored) -> dict:
        """Shoot a frame of the bare light for the current roll (or `roll`): its flat field is
        divided out of every later frame of the roll (pipeline/flatfield.py)."""
        target = self.rolls.get(roll) if roll else self._current_roll()
        if target is None:
            raise RuntimeError("no current roll: start one first (station roll new)")
        path = self._shoot_reference("flat-field", "light_dng_bytes", timeout,
                                     lambda data, suffix: target.set_flat(data, suffix, source="shot"))
        data = self.rolls.get(target.name).data
        flat = data.get("flatfield") or {}
        if flat.get("file") != path.name or data.get("flatfield_error"):
            raise RuntimeError(f"flat-field frame {path} refused: {data.get('flatfield_error', 'unknown reason')}"
                               + (f" (the roll keeps its earlier flat field {flat['id']})" if flat.get("id") else ""))
        self.app.publish({"type": "roll", "event": "flatfield", "roll": target.name, "flatfield": flat["id"]})
        return {"roll": target.name, "file": str(path), "id": flat["id"], "falloff": flat["falloff"]}

    def roll_new(self, name=None, stock=None, frames=36, pattern=None, film=None, **_ignored) -> dict:
        from station.capture.roll import DEFAULT_PATTERN

        try:
            roll = self.rolls.new(name=name, stock=stock, frames=frames, pattern=pattern or DEFAULT_PATTERN,
                                  camera=self.camera.snapshot().get("model"), film=film)
        except RollError as exc:
            raise RuntimeError(str(exc)) from None
        self.app.publish({"type": "roll", "event": "new", "roll": roll.name})
        return {"name": roll.name, "manifest": str(roll.manifest_path), "folder": str(self.incoming / roll.rel_stem(1).parent)}

    def _pedal_press(self) -> None:
        if self.pedal_action is not None:
            self.pedal_action()
            return
        fut = self.camera.capture()

        def done(f):
            exc = f.exception()
            if exc:
                log.warning("pedal: capture refused/failed: %s", exc)
            else:
                log.info("pedal: captured %s", ", ".join(str(x.path.name) for x in f.result()))

        fut.add_done_callback(done)


class _PositiveWaiter:
    def __init__(self, app, incoming: Path):
        self._cond = threading.Condition()
        self._views: dict[str, dict] = {}
        self._unsub = app.subscribe(self._on_event)

    def _on_event(self, ev) -> None:
        if ev.get("type") != "frame":
            return
        view = ev.get("frame") or {}
        # the view names its planned outputs from the start: wait for the state that says written
        if view.get("state") in ("preview_written", "master_written", "failed"):
            with self._cond:
                self._views[view.get("path")] = view
                self._cond.notify_all()

    def wait(self, rel: str | None, timeout: float):
        end = time.time() + timeout
        try:
            with self._cond:
                while rel not in self._views and time.time() < end:
                    self._cond.wait(max(0.01, end - time.time()))
                return self._views.get(rel)
        finally:
            self.close()

    def close(self) -> None:
        try:
            self._unsub()
        except Exception:
            pass


def _folder_files(folder: Path) -> list[Path]:
    from station.pipeline.decode import RAW_EXT

    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in RAW_EXT)


def _frame_size(folder) -> int:
    """The virtual camera's slot: big enough for the largest frame it will serve."""
    sizes = [p.stat().st_size for p in _folder_files(Path(folder))] if folder else []
    return max([4 << 20] + [s + 4096 for s in sizes])


def _folder_frames(folder: Path):
    """camera.virtual_frames: the RAWs of a folder, served in turn, over and over."""
    files = _folder_files(folder)
    if not files:
        raise RuntimeError(f"camera.virtual_frames: no RAW files in {folder}")
    i = 0
    while True:
        yield files[i % len(files)].read_bytes()
        i += 1


def _demo_frames():
    """Endless generated negatives for camera.port: virtual."""
    from station.capture.samples import negative_dng_bytes

    i = 0
    while True:
        yield negative_dng_bytes(1000, 1500, seed=5000 + i)
        i += 1


def attach(app) -> None:
    cfg = app.cfg
    port = _get(_get(cfg, "camera", {}) or {}, "port")
    if port in (None, False, "off", "none", ""):
        return
    svc = CaptureService(app, cfg)
    app.register_service(svc)
    log.info("capture service on %s", port)
