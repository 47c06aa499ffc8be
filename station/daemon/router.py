"""The commands the App answers: one table, name -> handler, and who owns each.

    router = CommandRouter(builtins)        # the App's own: {name: fn(**kw)}
    router.add(name, fn, owner="hooks")     # a service's (or a refusal no service owns);
                                            # a name taken twice is a ValueError
    router.call(name, **kw) -> JSON-able    # CommandError (one line) when refused or unknown
    router.names() -> [name]                # every command answered now

The camera's commands (`CAMERA_COMMANDS`) are always answered: by the camera service
when there is one, else by a refusal that says what is missing.  The App's own
commands are typed functions in `AppCommands` (station/app.py builds it): what the
control socket, `station status/retry` and the page's buttons call.
"""
from __future__ import annotations

from typing import Callable

from station.boundary import FrameView


class CommandError(Exception):
    """A command that cannot be done; the message is one line for the user."""


# the App's own commands (AppCommands below)
BUILTIN_COMMANDS = ("status", "ping", "retry", "reinvert", "set_print", "get_print", "frames")
# commands the camera service answers; without one they refuse with this line
CAMERA_COMMANDS = {
    "capture": "no camera configured",
    "roll_new": "no roll service configured (rolls come with the camera service: set camera.port)",
    "calibrate": "no camera configured (calibrating the base shoots a blank frame)",
    "flatfield": "no camera configured (the flat field shoots a frame of the bare light)",
}


class CommandRouter:
    def __init__(self, builtins: dict[str, Callable]):
        assert set(builtins) == set(BUILTIN_COMMANDS), sorted(builtins)
        self.builtins = dict(builtins)
        self.added: dict[str, Callable] = {}
        self.owner: dict[str, str] = {}

    def taken(self, name: str) -> bool:
        return name in self.added or name in self.builtins

    def add(self, name: str, fn: Callable, owner: str = "app") -> None:
        if self.taken(name):
            raise ValueError(f"command {name!r} is answered already")
        self.added[name] = fn
        self.owner[name] = owner

    def names(self) -> list[str]:
        return sorted({*self.builtins, *CAMERA_COMMANDS, *self.added})

    def call(self, name: str, /, **kw):
        fn = self.added.get(name) or self.builtins.get(name)
        if fn is not None:
            return fn(**kw)
        if name in CAMERA_COMMANDS:
            raise CommandError(CAMERA_COMMANDS[name])
        raise CommandError(f"unknown command {name!r} (known: {', '.join(self.names())})")


class AppCommands:
    """The App's own commands, typed: each validates its arguments and answers one line
    (CommandError) when it cannot be done.  Built on the processor, the print book and the
    journal; `status` is the snapshot's JSON form."""

    def __init__(self, processor, prints, journal, snapshot: Callable[[], dict]):
        self.processor = processor
        self.prints = prints
        self.journal = journal
        self.snapshot = snapshot

    def table(self) -> dict[str, Callable]:
        return {"status": self.status, "ping": self.ping, "retry": self.retry, "reinvert": self.reinvert,
                "set_print": self.set_print, "get_print": self.get_print, "frames": self.frames}

    def status(self, **_) -> dict:
        return self.snapshot()

    def ping(self, **_) -> str:
        return "pong"

    def retry(self, paths: list[str] | None = None, **_) -> dict:
        if paths is not None and (not isinstance(paths, list) or not all(isinstance(p, str) for p in paths)):
            raise CommandError("retry: paths must be a list of frame paths")
        return {"requeued": self.processor.retry(paths or None)}

    def reinvert(self, path: str | None = None, reason: str | None = None, frame: str | None = None,
                 key: str | None = None, **_) -> dict:
        key = path or frame or key
        if not isinstance(key, str) or not key:
            raise CommandError("reinvert: which frame? (path: the frame's path in the incoming folder)")
        try:
            return self.processor.rerender(key, str(reason or "re-invert asked"))
        except ValueError as exc:
            raise CommandError(str(exc)) from None

    def set_print(self, **kw) -> dict:
        try:
            return self.prints.set_print(**kw)
        except ValueError as exc:
            raise CommandError(str(exc)) from None

    def get_print(self, **kw) -> dict:
        try:
            return self.prints.get_print(**kw)
        except ValueError as exc:
            raise CommandError(str(exc)) from None

    def frames(self, limit: int = 100, **_) -> list[dict]:
        return [FrameView.from_row(r).to_dict() for r in self.journal.frames(limit=int(limit), newest_first=True)]
