"""The one progress protocol shared by terminal bars, operation rows and the dashboard stream.

A progress callback is called as ``callback(phase, done, total, message)``: ``phase`` names the
step ("resample", "write"...), ``done`` and ``total`` count items (``total`` may be 0 when
unknown) and ``message`` is a short human-readable note.
"""

from __future__ import annotations

from typing import Protocol


class ProgressCallback(Protocol):
    """Receives progress events; implementations must be cheap and never raise."""

    def __call__(self, phase: str, done: int, total: int, message: str = "") -> None:
        """Report that ``done`` of ``total`` items of ``phase`` are finished."""


def no_progress(phase: str, done: int, total: int, message: str = "") -> None:
    """A progress callback that ignores every event."""
