"""Synthetic markets: the embedded default data and the test bed of the whole project.

``generate_market(instrument, days=..., seed=..., kind=...)`` returns canonical bars on the
instrument's session calendar and a JSON-serialisable ``spec``. The instrument's
``synthetic_timeframe`` (see ``defaults``) picks the bar size and the engine:

* the **tick engine** (native bar size under one minute: MNQ at 1s), described below;
* the **bar-path engine** (EURUSD 1h, BTCUSD 1m, AAPL 1D; see ``path``): coarse bars made
  directly from a whole-tick path of sub-steps, with day-level stochastic volatility and the
  session's intraday profile (``bar_profile``), planted edge in bars (``BarPlantedRule``).

The tick engine, day by day:

* **Calendar.** ``days`` trading days from ``start`` (default 2023-01-02); bars only inside
  [session open, session close) of each trade date, stamped with the bar's start, anchored at
  the session open like ``stratforge.data.resample`` (whole multiples of the resolution in UTC
  whenever the open is, e.g. every CME resolution up to 1h).
* **Activity.** Each second of the session trades with probability ``1 - exp(-intensity)``;
  the intensity follows an intraday profile derived from the session's core hours (quiet
  overnight, U-shape in the core: for MNQ about 32,000 one-second bars per trade date) and
  rises with volatility. Seconds without trades give no bar.
* **Volatility.** Log-volatility is a day-level AR(1) plus a minute-level AR(1) (clustering),
  times the intraday variance profile, scaled so a trade date's close-to-close variance is
  ``(daily_volatility * price)**2``.
* **Prices.** Close-to-close moves are whole ticks ``rint(s * z)`` with ``z`` symmetric
  (Gaussian for ``null``, Student-t for ``realistic``/``planted``) and independent of the past,
  so the close is an exact martingale on the tick grid with no return autocorrelation. Open is
  the previous close (plus a gap at the session's first bar); high and low are the extremes of
  a Brownian bridge from open to close (floored to ticks), so a limit order filled by a wick
  has no edge either; volume follows activity, volatility and the size of the move.
* **Planted edge** (``kind="planted"``): see ``PlantedRule``; ``planted_rule=
  TwoBehaviourRule()`` plants two behaviours that want different exits instead.

Generation is vectorised per trade date with per-(day, component) seeds, so memory is bounded
by the output and any prefix of days is reproducible on its own.
"""

from stratforge.data.synthetic.defaults import (
    PATH_ENGINE,
    TICK_ENGINE,
    default_days,
    default_start,
    engine_for,
    has_synthetic_profile,
    native_timeframe,
)
from stratforge.data.synthetic.market import (
    DEFAULT_START,
    SYNTHETIC_KINDS,
    SyntheticMarket,
    generate_market,
)
from stratforge.data.synthetic.model import (
    GENERATOR_VERSION,
    BarPlantedRule,
    MarketModel,
    PathModel,
    PlantedRule,
    TwoBehaviourRule,
)

__all__ = [
    "DEFAULT_START",
    "GENERATOR_VERSION",
    "PATH_ENGINE",
    "SYNTHETIC_KINDS",
    "TICK_ENGINE",
    "BarPlantedRule",
    "MarketModel",
    "PathModel",
    "PlantedRule",
    "SyntheticMarket",
    "TwoBehaviourRule",
    "default_days",
    "default_start",
    "engine_for",
    "generate_market",
    "has_synthetic_profile",
    "native_timeframe",
]
