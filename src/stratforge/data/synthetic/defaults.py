"""Each instrument's synthetic profile: native bar size, engine, default span and start.

An instrument's ``synthetic_timeframe`` is the bar size its synthetic market is made at
(MNQ 1s, BTCUSD 1m, EURUSD 1h, AAPL 1D); ``None`` means the instrument has no synthetic
profile (the generator still makes it at 1s with the tick engine when asked, but the main
job does not fall back to it). Native bar sizes under one minute use the tick engine (sparse
one-second trading, see ``day``); coarser ones use the bar-path engine (see ``path``).
"""

from __future__ import annotations

import datetime

from stratforge.errors import ConfigError
from stratforge.instruments import Instrument
from stratforge.timeframes import Timeframe, parse_timeframe

TICK_ENGINE = "tick"
PATH_ENGINE = "bar_path"
DEFAULT_START = datetime.date(2023, 1, 2)
DAILY_DEFAULT_START = datetime.date(2015, 1, 2)
"""Daily markets start earlier so their default ten years end before 2025."""

_DEFAULT_DAYS = ((60, 60), (3600, 90), (86_400, 520))
"""(native bar size under this many seconds, default trading days): 1s 60 days (about 1.9
million MNQ bars), 1m 90 days (129,600 crypto bars), 1h 520 days (about 12,500 FX bars);
daily bars get ``_DAILY_DAYS`` (about 2,500 bars)."""
_DAILY_DAYS = 2520


def native_timeframe(instrument: Instrument) -> Timeframe:
    """The bar size ``instrument``'s synthetic market is made at (1s without a profile)."""
    name = instrument.synthetic_timeframe or "1s"
    try:
        timeframe = parse_timeframe(name)
    except ConfigError as exc:
        raise ConfigError(f"instrument {instrument.symbol}: synthetic_timeframe {name!r} is "
                          "not valid; use a bar size from 1s to 1D such as 1s, 1m, 1h or 1D"
                          ) from exc
    if timeframe.seconds > 86_400:
        raise ConfigError(f"instrument {instrument.symbol}: synthetic_timeframe {name!r} is "
                          "coarser than 1D; use a bar size from 1s to 1D")
    return timeframe


def has_synthetic_profile(instrument: Instrument) -> bool:
    """True when the instrument names the bar size of its synthetic market."""
    return instrument.synthetic_timeframe is not None


def engine_for(instrument: Instrument) -> str:
    """``TICK_ENGINE`` for native bar sizes under one minute, else ``PATH_ENGINE``."""
    return TICK_ENGINE if native_timeframe(instrument).seconds < 60 else PATH_ENGINE


def default_days(instrument: Instrument) -> int:
    """The default span, in trading days, of the instrument's synthetic market."""
    seconds = native_timeframe(instrument).seconds
    return next((days for limit, days in _DEFAULT_DAYS if seconds < limit), _DAILY_DAYS)


def default_start(instrument: Instrument) -> datetime.date:
    """The default first trade date of the instrument's synthetic market."""
    return DAILY_DEFAULT_START if not native_timeframe(instrument).intraday else DEFAULT_START
