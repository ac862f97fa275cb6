"""Exceptions meant for people: each says what was wrong, where, and how to fix it."""

from __future__ import annotations


class StratforgeError(Exception):
    """Base class of every error stratforge raises on purpose (bad input, bad configuration)."""


class ConfigError(StratforgeError):
    """A setting, instrument definition or option is invalid."""


class DataError(StratforgeError):
    """Market data broke the bars contract, or the store cannot serve a request.

    The message names the file (or source), the row and the rule that failed.
    """

    def __init__(self, message: str, *, source: str | None = None, row: int | None = None,
                 rule: str | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.row = row
        self.rule = rule
