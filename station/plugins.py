"""The daemon's plug-ins, declared in one place: `station run` (and `station demo`)
attach each, in this order, with `attach_all(app)`.

Each entry is a module with `attach(app)`: it builds its service(s) from `app.cfg`
and registers them (`App.register_service`, boundary.Service), or registers nothing
when the config turns it off.  A module that cannot be imported, or has no
`attach`, is an error (the daemon does not start without one of its parts).

Order: a plug-in may use the services attached before it —
the camera first; hooks (fire on the camera's events); the auto-roll (camera +
hooks); the frame checks (fire hooks); the live positive (the camera's preview);
the live-view auto-capture (shares the live positive's grabber, pauses while an
auto-roll runs); the web page last (it shows them all).
A new plug-in: write its module with `attach(app)`, add it here.
"""
from __future__ import annotations

import importlib

PLUGINS: tuple[str, ...] = (
    "station.capture.service",
    "station.hooks",
    "station.autoroll",
    "station.checks",
    "station.capture.live",
    "station.settle",
    "station.web.server",
)


class PluginError(RuntimeError):
    pass


def attach_all(app, plugins=PLUGINS) -> None:
    """Import each plug-in module and call its `attach(app)`; raise PluginError (one line)
    naming the plug-in when one is missing or broken."""
    for mod in plugins:
        try:
            m = importlib.import_module(mod)
        except ImportError as exc:
            raise PluginError(f"plug-in {mod} cannot be loaded: {exc}") from exc
        attach = getattr(m, "attach", None)
        if not callable(attach):
            raise PluginError(f"plug-in {mod} has no attach(app)")
        attach(app)
