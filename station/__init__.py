"""station: a film-scanning station (capture, watch, invert, serve)."""
__version__ = "0.1.0"
