"""Bar timeframes: parsing, ordering and durations.

Intraday timeframes are written ``<n>s``, ``<n>m`` or ``<n>h``; ``1D`` is one trade date and
``1W`` one trading week (both follow the instrument's session, not UTC midnight).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stratforge.errors import ConfigError

_PATTERN = re.compile(r"^(\d+)([smhDW])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "D": 86_400, "W": 7 * 86_400}


@dataclass(frozen=True, order=True)
class Timeframe:
    """A bar duration such as 1s, 5m, 4h, 1D or 1W; orders by duration."""

    seconds: int
    name: str

    @property
    def intraday(self) -> bool:
        """True for timeframes shorter than one trade date."""
        return self.seconds < 86_400

    @property
    def nanoseconds(self) -> int:
        """Nominal duration in nanoseconds (a trade date counts as 24 hours)."""
        return self.seconds * 1_000_000_000

    def __str__(self) -> str:
        return self.name


def parse_timeframe(text: str) -> Timeframe:
    """Parse '1s', '15m', '4h', '1D', '1W' (also '1d', '1w'); a ConfigError says what is valid."""
    raw = text.strip()
    if raw[-1:] in ("d", "w"):
        raw = raw[:-1] + raw[-1].upper()
    match = _PATTERN.match(raw)
    if not match or int(match.group(1)) <= 0:
        raise ConfigError(f"timeframe {text!r} is not valid; write e.g. 1s, 5s, 1m, 15m, 1h, 4h, "
                          "1D, 1W")
    count, unit = int(match.group(1)), match.group(2)
    if unit in "DW" and count != 1:
        raise ConfigError(f"timeframe {text!r}: only 1D and 1W are supported above intraday")
    seconds = count * _UNIT_SECONDS[unit]
    if unit in "smh" and (seconds >= 86_400 or 86_400 % seconds):
        raise ConfigError(f"timeframe {text!r}: an intraday timeframe must divide 24 hours")
    return Timeframe(seconds, f"{count}{unit}")


def parse_timeframes(text: str | list[str] | tuple[str, ...]) -> list[Timeframe]:
    """Parse a comma-separated list (or a list of names) into sorted, distinct timeframes."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    return sorted({parse_timeframe(p) for p in parts if p.strip()})


ATLAS_TIMEFRAMES: list[Timeframe] = parse_timeframes("1s,5s,15s,1m,5m,15m,1h,4h,1D,1W")
