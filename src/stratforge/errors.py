"""Exceptions meant for people: each says what was wrong, where, and how to fix it."""

from __future__ import annotations

import re

# C0 controls but TAB and LF, DEL, C1 controls, and the invisible bidirectional overrides
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` safe to show on a terminal: control characters (escape sequences, carriage
    returns, bell) and invisible direction overrides become visible escapes such as ``\\x1b``.
    Tabs and newlines stay."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


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
