"""Errors that name the file and the reason: every failure a user sees is one of these."""
from __future__ import annotations

from pathlib import Path


class StationError(Exception):
    """A failure with a file and a one-line reason."""

    def __init__(self, path: str | Path | None, reason: str):
        self.path = None if path is None else Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path else reason)


class DecodeError(StationError):
    """The input could not be read as an image."""


class OutputError(StationError):
    """An output could not be written."""


class ModelError(StationError):
    """A model file is missing, corrupt or of the wrong shape."""
