"""The typed boundary: what the daemon's App publishes, and what a service must be.

Every reader of the station's state (the web page's adapter, `station status`,
hooks, tests) reads these types; every part the App runs is a `Service`.
Nothing here imports the rest of the station: this module is the contract.

    Snapshot            App.state(): the whole station at one moment
      .frames           [FrameView]   newest first, from the journal
      .camera           CameraState   from the camera service ("none" without one)
        .roll           RollState     the roll new captures go to (None: no roll)
      .queue            QueueState
      .services         {name: part}  each other service's own `snapshot()`
    FrameView           one journal row, with the frame's check findings
    Finding             one finding of the frame checks (station.checks)

`Snapshot.to_dict()` is the JSON form (`station status --json`, the control
socket's `status`): the same keys as the dataclasses, and each service's part
under its own name at the top level (`autoroll`, `hooks`, `checks`, ...).

A `Service` (typing.Protocol, checked when the App registers it):
    name: str                     unique; its part of the snapshot is services[name]
    start() / stop()              started with the App (in registration order), stopped in reverse
    snapshot() -> JSON-able|None  its part of the Snapshot (None: nothing to show)
    commands() -> {name: fn}      the App commands it answers: fn(**kw) -> JSON-able;
                                  raise to refuse (the message is one line for the user)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, Protocol, runtime_checkable

# the journal's states of a frame (station.journal.STATES)
FrameState = Literal["seen", "preview_written", "master_written", "failed"]
FRAME_STATES: tuple[str, ...] = ("seen", "preview_written", "master_written", "failed")

# the camera's states: the camera service's own (station.capture.camera.STATES),
# "none" when no camera is configured, "error" when its state cannot be read
CameraStateName = Literal["none", "disconnected", "connecting", "ready", "busy", "reconnecting", "stopped", "error"]
CAMERA_STATES: tuple[str, ...] = ("none", "disconnected", "connecting", "ready", "busy", "reconnecting", "stopped",
                                  "error")


@dataclass(frozen=True)
class Finding:
    """One finding of the frame checks: which check, one line for the operator, a number."""
    check: str  # framing | focus | clipping | duplicate
    message: str
    value: float | None = None

    @classmethod
    def from_dict(cls, d: Mapping) -> "Finding":
        v = d.get("value")
        return cls(str(d["check"]), str(d["message"]), None if v is None else float(v))


@dataclass(frozen=True)
class FrameView:
    """One frame as the journal knows it (paths of the RAW relative to the incoming folder,
    outputs absolute; times wall-clock seconds; latencies from complete to written)."""
    id: int
    path: str
    roll: str | None
    state: FrameState
    reason: str | None = None  # why it failed
    stage: str | None = None  # the stage that failed (preview | master)
    sha256: str | None = None  # of the RAW
    preview: str | None = None
    tiff: str | None = None
    jpeg: str | None = None
    complete: float | None = None  # when the station knew the RAW was complete
    lat_preview: float | None = None
    lat_master: float | None = None
    updated: float | None = None
    rerender: str | None = None  # a re-render in progress: why (Processor.rerender)
    checks: tuple[Finding, ...] | None = None  # the frame checks' findings; None: not checked (yet)
    rendering: str | None = None  # the master's rendering: its roll's rendering id, or "frame" (per frame)

    @classmethod
    def from_row(cls, row: Mapping) -> "FrameView":
        """From a journal row (station.journal: `checks` is a JSON list)."""
        import json

        checks = row.get("checks")
        if isinstance(checks, str):
            try:
                checks = json.loads(checks)
            except ValueError:
                checks = None
        return cls(
            id=row["id"], path=row["path"], roll=row["roll"], state=row["state"], reason=row["reason"],
            stage=row["stage"], sha256=row["sha256"], preview=row["preview"], tiff=row["tiff"], jpeg=row["jpeg"],
            complete=row["t_complete"], lat_preview=row["lat_preview"], lat_master=row["lat_master"],
            updated=row["updated"], rerender=row.get("rerender"),
            checks=None if checks is None else tuple(Finding.from_dict(f) for f in checks),
            rendering=row.get("rendering"),
        )

    def to_dict(self) -> dict:
        return _plain(self)


@dataclass(frozen=True)
class RollState:
    """The roll new captures go to (station.capture.roll)."""
    name: str
    frames: int | None = None  # frames taken so far
    next_frame: int | None = None


@dataclass(frozen=True)
class CameraState:
    """The camera as its service reports it.  `detail`: everything else the service
    knows (card record, fault counters, pedal, ...), shown as is by `station status`."""
    state: CameraStateName
    port: str | None = None
    model: str | None = None
    last_error: str | None = None
    status: str | None = None  # one line for STATUS= and the page's tooltip
    roll: RollState | None = None
    detail: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = dict(self.detail)
        d.update({k: _plain(getattr(self, k)) for k in ("state", "port", "model", "last_error", "status", "roll")})
        return d


@dataclass(frozen=True)
class QueueState:
    length: int  # frames waiting for a worker (preview + master)
    preview: int
    master: int
    tracking: int  # files still being written (not complete yet)


@dataclass(frozen=True)
class Snapshot:
    """The station at one moment (App.state())."""
    pid: int
    started: float
    uptime: float
    config: str | None
    paths: dict
    queue: QueueState
    workers: list
    counts: dict
    latency: dict
    last_frame: FrameView | None
    last_positive: str | None
    frames: list[FrameView]  # newest first
    recent_errors: list
    camera: CameraState
    web: str | None
    services: dict = field(default_factory=dict)  # name -> that service's snapshot()
    renderings: dict = field(default_factory=dict)  # roll -> {"rendering": id, "locked", "frames"} (daemon/rolls.py)

    @property
    def roll(self) -> RollState | None:
        """The current roll: the camera's."""
        return self.camera.roll

    def to_dict(self) -> dict:
        d = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "services"}
        d["camera"] = self.camera.to_dict()
        for name, part in self.services.items():
            d.setdefault(name, part)
        return d


@runtime_checkable
class Service(Protocol):
    """A part the App runs (camera, hooks, checks, live page, ...): see the module docstring."""
    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def snapshot(self) -> Any: ...

    def commands(self) -> Mapping[str, Callable[..., Any]]: ...


def missing_members(obj) -> list[str]:
    """What `obj` lacks of the Service protocol (for a one-line error)."""
    out = [] if isinstance(getattr(obj, "name", None), str) else ["name"]
    return out + [m for m in ("start", "stop", "snapshot", "commands") if not callable(getattr(obj, m, None))]


def _plain(v):
    """Dataclasses → dicts, tuples → lists (JSON-able)."""
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        if isinstance(v, CameraState):
            return v.to_dict()
        return {f.name: _plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v
