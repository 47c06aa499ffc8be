"""The fault-injection soak: the real daemon (`python -m station run`, restarted across
kill -9), the PTP/IP camera emulator through the daemon's camera service, and writers
dropping files into incoming/, with faults injected at random (seeded).  At the end a
ledger check compares what was made with what is on disk and in the journal.

Used by tools/soak.py (full run, figures) and tests/test_soak_*.py.
"""
from __future__ import annotations

import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from conftest import Daemon  # noqa: E402
from fuzzing import mutate  # noqa: E402
from soak.frames import camera_frame, negative_dng_bytes  # noqa: E402

# Faults that come with a frame, and faults injected between frames.
FRAME_FAULTS = ("corrupt", "slow_writer", "camera_busy", "camera_drop", "camera_hang")
EVENT_FAULTS = ("daemon_kill9", "worker_kill9", "usb_disconnect", "disk_full", "clock_jump")
KINDS = FRAME_FAULTS + EVENT_FAULTS
# Why a GOOD frame may fail while a fault is injected (it is then retried at the end, as an
# operator would with `station retry`); any other reason on a good frame is a finding.
FAULT_REASONS = ("decoder crashed", "no space left")
OUT_SUFFIXES = (".preview.jpg", ".tif", ".jpg")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def corrupt(data: bytes, rng: random.Random, seed: int) -> bytes:
    """Truncated, bit-flipped, or any other damage the seeded mutator knows."""
    how = rng.choice(["truncate", "flip", "mutate"])
    if how == "truncate":
        return data[: int(len(data) * rng.uniform(0.02, 0.6))]
    if how == "flip":
        buf = bytearray(data)
        for _ in range(rng.randint(1, 64)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        return bytes(buf)
    return mutate(data, seed=seed)


def reason_key(reason: str) -> str:
    """A reason with its file name and numbers taken out, for counting."""
    import re

    r = re.sub(r"^[^ :]+\.(tif|jpg|dng|nef|kdc): ", "", reason.strip(), flags=re.I)
    return re.sub(r"\d+", "N", r)[:80]


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(q / 100 * (len(v) - 1)))))]


@dataclass
class Frame:
    rel: str  # relative to incoming/
    source: str  # rename | inplace | slow | camera
    good: bool
    sha: str
    fault: str | None = None
    t_complete: float | None = None  # harness monotonic clock
    t_preview: float | None = None
    t_master: float | None = None
    retried: bool = False


@dataclass
class SoakResult:
    frames: int = 0
    good: int = 0
    bad: int = 0
    faults: dict = field(default_factory=dict)
    camera_frames: int = 0
    camera_failed_captures: int = 0
    lost: int = 0
    duplicates: int = 0
    altered: int = 0
    bad_rejected: int = 0
    bad_decoded: int = 0
    retried: int = 0
    restarts: int = 0
    worker_kills_mid_frame: int = 0
    kills_in_capture: int = 0
    camera_seen: dict = field(default_factory=dict)  # the camera service's own fault counters
    reasons_good_failed: dict = field(default_factory=dict)
    temp_left: int = 0
    daemon_alive: bool = False
    clean_exit: int | None = None
    rejected_reasons: dict = field(default_factory=dict)
    lat_preview: list = field(default_factory=list)
    lat_master: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    wall_s: float = 0.0
    disk: str = ""
    disk_free_mb: tuple = ()  # output disk free (MB) before the operator's retry, and at the ledger

    def figures(self) -> dict:
        r = lambda x: None if x is None else round(x, 2)  # noqa: E731
        return {
            "frames": self.frames, "good": self.good, "bad (corrupted)": self.bad,
            "camera frames": self.camera_frames, "failed captures (reported)": self.camera_failed_captures,
            "faults": dict(self.faults), "daemon restarts": self.restarts,
            "frames lost": self.lost, "duplicates": self.duplicates, "originals altered": self.altered,
            "bad rejected with a reason": self.bad_rejected, "bad decoded anyway": self.bad_decoded,
            "good frames failed by a fault, retried": self.retried,
            "  of which (reason)": dict(self.reasons_good_failed),
            "worker kills with a frame in hand": self.worker_kills_mid_frame,
            "camera service saw (faults, reconnects)": dict(self.camera_seen), "temp files left": self.temp_left,
            "daemon alive at end": self.daemon_alive, "clean exit status": self.clean_exit,
            "latency complete->preview p50/p99 s": (r(pct(self.lat_preview, 50)), r(pct(self.lat_preview, 99))),
            "latency complete->master p50/p99 s": (r(pct(self.lat_master, 50)), r(pct(self.lat_master, 99))),
            "latency samples": len(self.lat_preview), "output disk": self.disk,
            "output disk free MB (before retry, at ledger)": self.disk_free_mb, "wall s": round(self.wall_s, 1),
            "problems": len(self.problems),
        }


class Soak:
    def __init__(self, root: Path, frames: int = 500, seed: int = 1, faults_per_kind: int | None = None,
                 camera_share: float = 0.3, backlog: int = 4, log=print, tmpfs: bool = True,
                 workers: int = 2, kill_in_capture: float = 0.0, settle_camera: bool = False):
        self.root = Path(root)
        self.n = frames
        self.seed = seed
        self.rng = random.Random(seed)
        self.per_kind = faults_per_kind if faults_per_kind is not None else max(1, frames // 10)
        self.camera_share = camera_share
        self.backlog = backlog
        self.log = log
        self.want_tmpfs = tmpfs
        self.workers = workers
        # settle_camera: after a daemon restart, wait until its camera is connected before the next
        # fault (keeps a USB-style drop out of the first card listing: see test_soak_camera_baseline)
        self.settle_camera = settle_camera
        self.kill_in_capture = kill_in_capture  # share of daemon kills fired while a capture is in flight
        self.frames: dict[str, Frame] = {}
        self.flock = threading.Lock()
        self.faults = {k: 0 for k in KINDS}
        self.res = SoakResult()
        self.threads: list[threading.Thread] = []
        self.clock_file = self.root / "clock-offset"
        self.clock_off = 0.0
        self.ballast: Path | None = None
        self.mounted = False
        self._stop_monitor = threading.Event()
        self.emu = None
        self.d: Daemon | None = None
        self.serial = 0

    # ------------------------------------------------------------ set-up
    def _setup(self):
        self.root.mkdir(parents=True, exist_ok=True)
        self.outfs = self.root / "outfs"
        self.outfs.mkdir(exist_ok=True)
        if self.want_tmpfs and os.geteuid() == 0:
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200m", "tmpfs", str(self.outfs)],
                               capture_output=True)
            self.mounted = r.returncode == 0
        self.res.disk = "tmpfs (filled with a ballast file)" if self.mounted else "no tmpfs: ENOSPC injected"
        (self.root / "output").mkdir(exist_ok=True)
        self.clock_file.write_text("0")
        from ptpip_emulator import EmulatedCamera

        self.emu = EmulatedCamera(frame_source=camera_frame).start()
        env = {"STATION_FAULT_CLOCK_FILE": str(self.clock_file)}
        if not self.mounted:
            env["STATION_FAULT_ENOSPC"] = "full-*"
        cfg = {
            "watcher": {"rescan_interval": 5, "stable_seconds": 1.0},
            "workers": {"count": self.workers, "preview_deadline": 60, "master_deadline": 120},
            "camera": {"port": self.emu.address, "jpeg": "drop"},
            "outputs": {"preview_size": 600},
            "inversion": {"method": "classic"},
        }
        self.d = Daemon(self.root, env_extra=env, config=cfg)
        self.d.output = self.outfs / "output" if self.mounted else self.root / "output"
        self.d.output.mkdir(exist_ok=True)
        self.d.start()
        self.sock = self.d.state / "station.sock"
        threading.Thread(target=self._monitor, daemon=True, name="soak-monitor").start()

    def _teardown(self):
        self._stop_monitor.set()
        try:
            if self.d and self.d.proc and self.d.proc.poll() is None:
                self.d.stop(signal.SIGKILL)
        finally:
            if self.emu:
                self.emu.stop()
            if self.mounted:
                subprocess.run(["umount", "-l", str(self.outfs)], capture_output=True)

    def _restart(self):
        n0 = len(self.d.log_text())
        self.d.start(wait_ready=False)
        self.d.wait_for(lambda: "ready:" in self.d.log_text()[n0:], 90, "daemon ready after restart")
        if self.settle_camera:
            self._camera_ready()
            time.sleep(0.5)

    def _status(self) -> dict:
        """The daemon's snapshot over its control socket (what `station status --json` prints)."""
        from station.control import request

        return request(self.sock, "status", timeout=30)

    def _count_camera(self):
        """Add the camera service's counters (reset by every daemon start) to the totals."""
        try:
            cam = self._status().get("camera") or {}
        except Exception:
            return
        tot = self.res.camera_seen
        for k, v in dict(cam.get("faults") or {}, reconnects=cam.get("reconnects") or 0).items():
            tot[k] = tot.get(k, 0) + int(v or 0)

    def _camera_ready(self, timeout=45.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if (self._status().get("camera") or {}).get("state") == "ready":
                    return True
            except Exception:
                pass
            time.sleep(0.2)
        return False

    # ---------------------------------------------------------- schedule
    def _schedule(self) -> list[tuple[str, str | None]]:
        """('frame', fault|None) and ('event', kind) items, shuffled with the seed."""
        tied = [("frame", k) for k in FRAME_FAULTS for _ in range(self.per_kind)]
        plain = [("frame", None)] * max(0, self.n - len(tied))
        frames = tied + plain
        self.rng.shuffle(frames)
        items = list(frames)
        for k in EVENT_FAULTS:
            for _ in range(self.per_kind):
                items.insert(self.rng.randrange(1, len(items) + 1), ("event", k))
        return items

    # ------------------------------------------------------------ frames
    def _new_rel(self, ext=".dng") -> str:
        self.serial += 1
        roll = f"roll{self.serial // 37:02d}"
        return f"{roll}/w{self.serial:05d}{ext}"

    def _add(self, f: Frame):
        with self.flock:
            assert f.rel not in self.frames, f.rel
            self.frames[f.rel] = f

    def _write_frame(self, fault):
        rel = self._new_rel()
        good_bytes = negative_dng_bytes(self.serial)
        data = good_bytes
        good = True
        if fault == "corrupt":
            data = corrupt(good_bytes, self.rng, seed=self.seed * 100_003 + self.serial)
            good = False
        p = self.d.incoming / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        source = "slow" if fault == "slow_writer" else self.rng.choice(["rename", "inplace"])
        f = Frame(rel, source, good, sha(data), fault)
        self._add(f)
        if source == "rename":
            tmp = p.parent / f".{p.name}.part"
            tmp.write_bytes(data)
            os.rename(tmp, p)
            f.t_complete = time.monotonic()
        elif source == "inplace":
            with open(p, "wb") as fh:
                for i in range(0, len(data), 131072):
                    fh.write(data[i:i + 131072])
            f.t_complete = time.monotonic()
        else:
            pauses = [self.rng.uniform(0.1, 0.5) for _ in range(8)]

            def slow():
                with open(p, "wb") as fh:
                    step = max(1, len(data) // len(pauses))
                    for i, pause in enumerate(pauses):
                        fh.write(data[i * step:(i + 1) * step if i < len(pauses) - 1 else len(data)])
                        fh.flush()
                        time.sleep(pause)
                f.t_complete = time.monotonic()

            t = threading.Thread(target=slow, daemon=True)
            t.start()
            self.threads.append(t)

    def _capture_frame(self, fault, check_ready=True):
        from station.control import ControlError, request

        if fault == "camera_busy":
            self.emu.fail_next("busy", "InitiateCapture", self.rng.randint(1, 3))
        elif fault == "camera_drop":
            if self.rng.random() < 0.5:
                self.emu.fail_next("drop", "GetObject")
            else:
                self.emu.fail_next("drop_after_capture")
        elif fault == "camera_hang":
            self.emu.fail_next("hang", "GetObject")
        if check_ready and not self._camera_ready():
            self.res.problems.append("camera not ready within 45 s: " + str(self._status().get("camera")))
        try:
            out = request(self.sock, "capture", timeout=90)
        except (ControlError, OSError) as exc:
            # a capture refused/failed is reported to the caller; the ledger still checks that
            # every frame the camera made reached incoming/ exactly once
            self.res.camera_failed_captures += 1
            self.log(f"  capture ({fault or 'plain'}) reported: {exc}")
            return
        t = time.monotonic()
        for path in out.get("files", []):
            rel = str(Path(path).relative_to(self.d.incoming))
            data = (self.d.incoming / rel).read_bytes()
            f = Frame(rel, "camera", True, sha(data), fault, t_complete=t)
            with self.flock:
                if rel in self.frames:
                    self.res.problems.append(f"camera file {rel} reported twice")
                    continue
                self.frames[rel] = f

    def _frame(self, fault):
        if fault in ("camera_busy", "camera_drop", "camera_hang") or (fault is None and self.rng.random() < self.camera_share):
            self._capture_frame(fault)
        else:
            self._write_frame(fault)
        if fault:
            self.faults[fault] += 1

    # ------------------------------------------------------------ events
    def _event(self, kind):
        d = self.d
        if kind == "daemon_kill9":
            self._count_camera()
            inflight = None
            if self.kill_in_capture and self.rng.random() < self.kill_in_capture and self._camera_ready(10):
                inflight = threading.Thread(target=self._capture_frame, args=(None, False), daemon=True)
                inflight.start()
                time.sleep(self.rng.uniform(0.05, 0.4))
            d.proc.send_signal(signal.SIGKILL)
            if inflight is not None:
                inflight.join(100)
                self.res.kills_in_capture += 1
            d.proc.wait(10)
            time.sleep(self.rng.uniform(0, 1.0))  # writers go on meanwhile
            self._restart()
            self.res.restarts += 1
        elif kind == "worker_kill9":
            killed = False
            end = time.monotonic() + 10
            while not killed and time.monotonic() < end:
                try:
                    ws = [w for w in self._status()["workers"] if w.get("pid") and w.get("alive", True)]
                except Exception:
                    ws = []
                busy = [w for w in ws if w.get("job")]
                if not busy and (not ws or time.monotonic() < end - 7):
                    time.sleep(0.1)  # wait a little for a worker with a frame in hand
                    continue
                pick = (busy or ws)[self.rng.randrange(len(busy or ws))]
                try:
                    os.kill(pick["pid"], signal.SIGKILL)
                except ProcessLookupError:
                    continue
                killed = True
                self.res.worker_kills_mid_frame += bool(busy)
            if not killed:
                self.res.problems.append("worker_kill9: no worker found to kill within 10 s")
                return
        elif kind == "usb_disconnect":
            self.emu.drop()  # the cable pulled out while idle; the service must reconnect
        elif kind == "disk_full":
            self._fill_disk()
        elif kind == "clock_jump":
            jump = self.rng.choice([3600, -3600, 86400, -86400, 600, -600, 30, -30])
            self.clock_off = 0.0 if abs(self.clock_off + jump) > 2 * 86400 else self.clock_off + jump
            self.clock_file.write_text(str(self.clock_off))
        self.faults[kind] += 1

    def _free_mb(self):
        try:
            st = os.statvfs(self.outfs)
        except OSError:
            return None
        return round(st.f_bavail * st.f_frsize / 1e6, 1)

    def _fill_disk(self):
        if not self.mounted:
            # no tmpfs here: the next written frame is named so the writer's injected ENOSPC hits it
            rel = self._new_rel()
            rel = str(Path(rel).parent / ("full-" + Path(rel).name))
            data = negative_dng_bytes(self.serial)
            p = self.d.incoming / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.parent / f".{p.name}.part"
            tmp.write_bytes(data)
            os.rename(tmp, p)
            self._add(Frame(rel, "rename", True, sha(data), "disk_full", time.monotonic()))
            return
        st = os.statvfs(self.outfs)
        free = st.f_bavail * st.f_frsize
        self.ballast = self.outfs / f"ballast{self.faults['disk_full']}"
        with open(self.ballast, "wb") as fh:
            try:
                os.posix_fallocate(fh.fileno(), 0, max(0, free - 256 * 1024))  # less than one master
            except OSError:
                pass
        ballast = self.ballast

        def free_again():
            ballast.unlink(missing_ok=True)

        t = threading.Timer(self.rng.uniform(1.5, 3.0), free_again)
        t.start()
        self.threads.append(t)

    # ----------------------------------------------------------- monitor
    def _out_base(self, rel: str) -> Path:
        p = Path(rel)
        return self.d.output / p.parent / p.stem

    def _monitor(self):
        while not self._stop_monitor.is_set():
            with self.flock:
                pending = [f for f in self.frames.values() if f.good and f.t_complete and f.t_master is None]
            now = time.monotonic()
            for f in pending:
                b = self._out_base(f.rel)
                if f.t_preview is None and os.path.exists(str(b) + ".preview.jpg"):
                    f.t_preview = now
                if f.t_preview is not None and os.path.exists(str(b) + ".tif") and os.path.exists(str(b) + ".jpg"):
                    f.t_master = now
            time.sleep(0.1)

    def _journal(self) -> dict:
        try:
            return self.d.frames()
        except (sqlite3.Error, FileNotFoundError):
            return {}

    def _wait_backlog(self):
        end = time.monotonic() + 90
        while time.monotonic() < end:
            jr = self._journal()
            with self.flock:
                open_ = [f for f in self.frames.values() if f.t_master is None
                         and jr.get(f.rel, {}).get("state") not in ("failed", "master_written")]
            if len(open_) <= self.backlog:
                return
            time.sleep(0.2)

    def _wait_terminal(self, timeout=600) -> dict:
        end = time.monotonic() + timeout
        jr = {}
        while time.monotonic() < end:
            if self.d.proc.poll() is not None:
                self.res.problems.append(f"daemon exited ({self.d.proc.returncode}) while draining")
                self._restart()
            jr = self._journal()
            raws = self._incoming_raws()
            if all(jr.get(r, {}).get("state") in ("failed", "master_written") for r in raws) and \
                    all(r in raws for r in self.frames):
                return jr
            time.sleep(0.5)
        self.res.problems.append("frames not finished within the drain deadline: " + ", ".join(
            r for r in self._incoming_raws() if jr.get(r, {}).get("state") not in ("failed", "master_written"))[:2000])
        return jr

    def _incoming_raws(self) -> list[str]:
        from station.ingest.tracker import accept

        out = []
        for p in self.d.incoming.rglob("*"):
            if p.is_file() and accept(p, self.d.incoming):
                out.append(str(p.relative_to(self.d.incoming)))
        return out

    # -------------------------------------------------------------- run
    def run(self) -> SoakResult:
        t0 = time.monotonic()
        self._setup()
        try:
            items = self._schedule()
            for i, (what, arg) in enumerate(items):
                if what == "frame":
                    self._wait_backlog()
                    self._frame(arg)
                else:
                    self._event(arg)
                if i % 50 == 0:
                    self.log(f"[{time.monotonic() - t0:6.0f} s] item {i}/{len(items)}: {len(self.frames)} frames, "
                             f"faults {sum(self.faults.values())}")
            for t in self.threads:
                t.join(60)
            if self.ballast:
                for b in self.outfs.glob("ballast*"):
                    b.unlink(missing_ok=True)
            self._finish()
        finally:
            self.res.wall_s = time.monotonic() - t0
            self._teardown()
        return self.res

    def _adopt_recovered(self) -> None:
        """Camera frames downloaded although their capture call failed (recovered after a dropped
        link): the harness learns of them only here, from the emulator's own list."""
        inc = self.d.incoming
        by_sha: dict[str, list[str]] = {}
        for r in self._incoming_raws():
            by_sha.setdefault(sha((inc / r).read_bytes()), []).append(r)
        for fr in self.emu.captured:
            h = sha(fr.data)
            got = by_sha.get(h, [])
            if got and not any(r in self.frames for r in got):
                self.frames[got[0]] = Frame(got[0], "camera", True, h, "recovered")

    def _finish(self):
        res = self.res
        jr = self._wait_terminal()
        free_before = self._free_mb()
        # a recovered camera frame failed by a full disk is retried like any other (soak seed 5
        # counted DSC_0120 lost: the harness did not know the frame when it chose what to retry)
        self._adopt_recovered()
        # good frames failed by an injected fault: retried as an operator would
        again = [r for r, f in self.frames.items() if f.good and jr.get(r, {}).get("state") == "failed"
                 and any(w in (jr[r].get("reason") or "") for w in FAULT_REASONS)]
        for r in again:
            key = next(w for w in FAULT_REASONS if w in jr[r]["reason"])
            res.reasons_good_failed[key] = res.reasons_good_failed.get(key, 0) + 1
        if again:
            for f in again:
                self.frames[f].retried = True
            out = subprocess.run([sys.executable, "-m", "station", "retry", "--state", str(self.d.state), *again],
                                 env=self.d.env, capture_output=True, text=True, timeout=120)
            if out.returncode != 0:
                res.problems.append(f"station retry failed: {out.stderr.strip()}")
            time.sleep(1.0)
            jr = self._wait_terminal()
        res.retried = len(again)
        res.disk_free_mb = (free_before, self._free_mb())
        self._count_camera()
        res.daemon_alive = self.d.proc.poll() is None
        self._ledger(jr)
        res.faults = dict(self.faults)
        res.clean_exit = self.d.stop()

    # ------------------------------------------------------------ ledger
    def _ledger(self, jr: dict):
        res = self.res
        P = res.problems
        inc = self.d.incoming
        # the camera's own record: every frame it made is in incoming/ exactly once, byte for byte
        made = self.emu.captured
        res.camera_frames = len(made)
        raws = self._incoming_raws()
        by_sha: dict[str, list[str]] = {}
        for r in raws:
            by_sha.setdefault(sha((inc / r).read_bytes()), []).append(r)
        copies = set()
        for fr in made:
            got = by_sha.get(sha(fr.data), [])
            if not got:
                res.lost += 1
                P.append(f"camera frame {fr.name} never reached incoming/")
                continue
            owner = next((r for r in got if r in self.frames), None)
            if owner is None:  # (_adopt_recovered ran before the retry; a frame that came later)
                owner = got[0]
                self.frames[owner] = Frame(owner, "camera", True, sha(fr.data), "recovered")
            if len(got) > 1:
                res.duplicates += len(got) - 1
                copies.update(r for r in got if r != owner)
                P.append(f"camera frame {fr.name} is in incoming/ {len(got)} times: {got}")
        extra = [r for r in raws if r not in self.frames]
        for r in extra:
            if r not in copies:  # a copy of a camera frame was counted above
                res.duplicates += 1
            P.append(f"unexpected file in incoming/: {r}")
        res.frames = len(self.frames)
        res.good = sum(f.good for f in self.frames.values())
        res.bad = res.frames - res.good
        outputs = set()
        for p in self.d.output.rglob("*"):
            if p.is_file():
                outputs.add(p)
        temps = [p for p in outputs if p.name.startswith(".")]
        temps += [p for p in inc.rglob(".*") if p.is_file()]
        res.temp_left = len(temps)
        for p in temps:
            P.append(f"temporary file left: {p}")
        expected_out = set()
        for rel, f in self.frames.items():
            p = inc / rel
            if not p.exists():
                res.lost += 1
                P.append(f"{rel}: the RAW is gone")
                continue
            if sha(p.read_bytes()) != f.sha:
                res.altered += 1
                P.append(f"{rel}: the RAW was altered")
            row = jr.get(rel)
            if row is None:
                res.lost += 1
                P.append(f"{rel}: not in the journal")
                continue
            base = self._out_base(rel)
            outs = [Path(str(base) + s) for s in OUT_SUFFIXES]
            if row["state"] == "master_written":
                missing = [o.name for o in outs if not o.exists()]
                if missing:
                    res.lost += 1
                    P.append(f"{rel}: master_written but {missing} missing")
                for key, o in zip(("preview", "tiff", "jpeg"), outs):
                    if row.get(key) and Path(row[key]).resolve() != o.resolve():
                        P.append(f"{rel}: journal {key} {row[key]} != {o}")
                if row.get("sha256") and row["sha256"] != f.sha:
                    P.append(f"{rel}: journal sha256 disagrees with the file")
                expected_out.update(outs)
                if not f.good:
                    res.bad_decoded += 1
                else:
                    if f.t_complete and f.t_preview and not f.retried:
                        res.lat_preview.append(f.t_preview - f.t_complete)
                    if f.t_complete and f.t_master and not f.retried:
                        res.lat_master.append(f.t_master - f.t_complete)
            elif row["state"] == "failed":
                if not (row.get("reason") or "").strip():
                    P.append(f"{rel}: failed without a reason")
                if f.good:
                    res.lost += 1
                    P.append(f"{rel}: a good frame failed: {row.get('reason')}")
                else:
                    res.bad_rejected += 1
                    key = reason_key(row.get("reason") or "")
                    res.rejected_reasons[key] = res.rejected_reasons.get(key, 0) + 1
                expected_out.update(o for o in outs if o.exists() and o.name.endswith(".preview.jpg")
                                    and row.get("stage") == "master")
            else:
                res.lost += 1
                P.append(f"{rel}: left in state {row['state']}")
        for r in jr:
            if r not in self.frames and not (inc / r).exists():
                P.append(f"journal row without a RAW: {r}")
        owned_elsewhere = {self._out_base(r) for r in raws}  # outputs of copies / failed frames
        for o in outputs:
            if o.name.startswith("."):
                continue
            if o not in expected_out:
                base = Path(str(o)[: -len(next(x for x in OUT_SUFFIXES if o.name.endswith(x)))]) \
                    if any(o.name.endswith(x) for x in OUT_SUFFIXES) else o
                if base not in owned_elsewhere:
                    res.duplicates += 1
                P.append(f"output nobody owns (duplicate or orphan): {o}")


# ------------------------------------------------------------------ hostile input
SHARED_RAWS = ("RAW_NIKON_D1.NEF", "canon_eos_6d.dng", "RAW_KODAK_DC50.KDC")


def fuzz_corpus(shared: Path | None) -> list[tuple[str, bytes]]:
    corpus = [(".dng", negative_dng_bytes(7, 200, 300))]
    if shared is not None:
        for name in SHARED_RAWS:
            p = shared / "samples" / "raw" / name
            if p.exists():
                corpus.append((p.suffix.lower(), p.read_bytes()))
    return corpus


@dataclass
class FuzzResult:
    cases: int = 0
    decoded: int = 0
    rejected: int = 0
    decoder_crashed: int = 0  # a worker died on the file: the frame failed, the daemon went on
    timed_out: int = 0  # killed at the per-frame deadline (a hang)
    daemon_crashes: int = 0
    unfinished: int = 0
    no_reason: int = 0
    altered: int = 0
    reasons: dict = field(default_factory=dict)
    wall_s: float = 0.0

    def figures(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "reasons"}


def fuzz_daemon(root: Path, n: int, seed: int = 0, shared: Path | None = None, deadline: float = 20.0,
                batch: int = 25, log=print) -> FuzzResult:
    """n mutated RAWs dropped into a real daemon's incoming/ (by rename, `batch` at a time).
    Every one must end `master_written` or `failed` with a reason; the daemon must not exit; a hang
    would end as "timed out" at the preview deadline (counted)."""
    t0 = time.monotonic()
    res = FuzzResult()
    d = Daemon(Path(root), config={"watcher": {"rescan_interval": 0},
                                   "workers": {"count": 2, "preview_deadline": deadline, "master_deadline": 2 * deadline},
                                   "outputs": {"preview_size": 400}, "inversion": {"method": "classic"}})
    d.start()
    try:
        corpus = fuzz_corpus(shared)
        rng = random.Random(seed)
        want: dict[str, str] = {}
        for i in range(n):
            ext, data = corpus[i % len(corpus)]
            data = mutate(data, seed=seed * 1_000_003 + i) if rng.random() < 0.7 else corrupt(data, rng, seed + i)
            rel = f"f{i // 100:03d}/case{i:05d}{ext}"
            p = d.incoming / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.parent / f".{p.name}.part"
            tmp.write_bytes(data)
            os.rename(tmp, p)
            want[rel] = sha(data)
            if (i + 1) % batch == 0 or i == n - 1:
                # let the daemon catch up; a deadline far beyond the per-frame one
                end = time.monotonic() + max(120.0, 4 * deadline)
                while time.monotonic() < end:
                    if d.proc.poll() is not None:
                        res.daemon_crashes += 1
                        log(f"daemon exited {d.proc.returncode}; restarting\n{d.log_text()[-2000:]}")
                        n0 = len(d.log_text())
                        d.start(wait_ready=False)
                        d.wait_for(lambda: "ready:" in d.log_text()[n0:], 90, "daemon ready")
                    jr = d.frames()
                    if all(jr.get(r, {}).get("state") in ("failed", "master_written") for r in want):
                        break
                    time.sleep(0.3)
                if (i + 1) % 200 == 0:
                    log(f"[{time.monotonic() - t0:5.0f} s] {i + 1}/{n} fuzz cases")
        jr = d.frames()
        for rel, h in want.items():
            row = jr.get(rel) or {}
            st = row.get("state")
            if sha((d.incoming / rel).read_bytes()) != h:
                res.altered += 1
            if st == "master_written":
                res.decoded += 1
            elif st == "failed":
                reason = (row.get("reason") or "").strip()
                if not reason:
                    res.no_reason += 1
                if reason == "decoder crashed":
                    res.decoder_crashed += 1
                elif reason == "timed out":
                    res.timed_out += 1
                else:
                    res.rejected += 1
                key = reason_key(reason)
                res.reasons[key] = res.reasons.get(key, 0) + 1
            else:
                res.unfinished += 1
        res.cases = len(want)
        if d.proc.poll() is not None:
            res.daemon_crashes += 1
    finally:
        res.wall_s = time.monotonic() - t0
        rc = d.stop()
        if rc not in (0, None):
            res.daemon_crashes += 0 if rc == 0 else 1
    return res
