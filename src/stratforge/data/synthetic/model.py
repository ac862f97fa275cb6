"""The constants of the synthetic market model and of the planted edge, in one place.

Every number the generator uses lives in ``MarketModel`` or ``PlantedRule``; both are written
into a market's ``spec`` so a stored market documents exactly how it was made. Changing a
default changes the bytes of every market: bump ``GENERATOR_VERSION`` when you do.
"""

from __future__ import annotations

from dataclasses import dataclass

GENERATOR_VERSION = "2"


@dataclass(frozen=True)
class MarketModel:
    """Activity, volatility, tails, wicks and volume of the synthetic market.

    Intensities are expected trades per second. The per-second variance of the price is
    proportional to ``intensity ** variance_elasticity`` and scaled so that one trade date's
    close-to-close variance is ``(daily_volatility * price)**2``.
    """

    # Intraday activity profile (trades per second), see profile.intraday_profile.
    overnight_intensity: float = 0.14
    session_open_burst: float = 0.8        # extra overnight intensity at the session open ...
    session_open_seconds: float = 3600.0   # ... decaying with this time constant
    core_intensity: float = 5.0            # middle of the core (regular trading) hours
    core_open_burst: float = 3.0           # extra core intensity at the core open ...
    core_open_seconds: float = 1800.0
    core_close_burst: float = 2.0          # ... and at the core close
    core_close_seconds: float = 1200.0
    pre_core_level: float = 0.3            # share of core intensity reached at the core open
    pre_core_seconds: float = 1200.0       # ramp time constant before the core open
    post_core_level: float = 0.3           # share of core intensity just after the core close
    post_core_seconds: float = 1200.0
    variance_elasticity: float = 0.6       # per-second variance ~ intensity ** this
    core_max_session_hours: float = 12.0   # a session this short is core hours all through
    # Volatility clustering: log-volatility = day level + minute level, both AR(1).
    day_vol_persistence: float = 0.85      # AR(1) coefficient from one trade date to the next
    day_vol_std: float = 0.25              # stationary std of the day-level log-volatility
    minute_vol_halflife: float = 30.0      # minutes
    minute_vol_std: float = 0.30           # stationary std of the minute-level log-volatility
    activity_vol_elasticity: float = 1.0   # intensity ~ volatility multiplier ** this
    # Increments, gaps, volume (wicks: a Brownian bridge, see day.bridge_extremes).
    tail_df: float = 5.0                   # Student-t degrees of freedom ("realistic", "planted")
    gap_share_per_day: float = 0.4         # gap variance / daily variance per 24 h of break
    gap_share_max: float = 0.3
    contracts_per_trade: float = 2.0
    min_price_share: float = 0.05          # volatility never scales below this x reference

    @property
    def log_vol_variance(self) -> float:
        """Stationary variance of the total log-volatility."""
        return self.day_vol_std ** 2 + self.minute_vol_std ** 2


@dataclass(frozen=True)
class PlantedRule:
    """The edge of the ``planted`` market: a shock, then a likely partial reversion.

    Events arrive at ``rate_per_day`` per trade date (Poisson, before dropping events that would
    overlap an earlier one's window), a share ``core_share`` of them in the core hours. Each
    event starts on a whole minute counted from the session open. In that minute the price gets
    an extra move of ``k_sigma`` local one-minute sigmas (the expected standard deviation of the
    unperturbed price over that minute) in a random direction (+1 or -1, each with probability
    1/2), spread evenly over the minute's active seconds. With probability ``p_revert`` the
    price then gets back ``revert_fraction`` of the shock over the next ``horizon_minutes``
    minutes, front-loaded: after t of the T horizon seconds a share
    ``(1 - exp(-4 t / T)) / (1 - exp(-4))`` is done (56 % after a fifth, 75 % after a third);
    otherwise the shock stays. Both drifts are whole ticks put on active seconds (cumulative
    rounding), so prices stay on the tick grid.
    """

    k_sigma: float = 5.0
    p_revert: float = 0.7
    revert_fraction: float = 0.6
    horizon_minutes: int = 15
    rate_per_day: float = 5.0
    core_share: float = 0.8

    @property
    def window_seconds(self) -> int:
        """Length of one event: the shock minute plus the reversion horizon."""
        return 60 * (1 + self.horizon_minutes)


@dataclass(frozen=True)
class PathModel:
    """Volatility, intraday profile, tails, gaps and volume of the bar-path engine.

    The bar-path engine makes coarse bars (1m, 1h, 1D) directly: each bar is a path of
    sub-steps whose whole-tick increments are symmetric and independent of the past, so the
    close is a martingale on the tick grid; open, high, low and close come from the path.
    The per-step variance is the day's variance spread by an intraday profile and scaled by
    stochastic volatility, so one trade date's close-to-close variance is about
    ``(daily_volatility * price)**2``.
    """

    # Sub-steps: an intraday bar of R seconds has R // 60 second steps when R is a whole
    # number of minutes (60 per bar), else one-second steps; a 1D bar has steps of this size.
    daily_step_seconds: int = 300
    # Stochastic volatility: log-volatility = day level + intraday level, both AR(1).
    day_vol_persistence: float = 0.95      # AR(1) coefficient from one trade date to the next
    day_vol_std: float = 0.35              # stationary std of the day-level log-volatility
    intraday_vol_halflife_seconds: float = 3600.0
    intraday_vol_std: float = 0.25         # stationary std of the intraday log-volatility
    # Intraday profile. Sessions up to this long (a stock exchange's day) take the U-shape of
    # the tick engine's regular hours; longer ones (FX, crypto) are busier while the big
    # financial centres (Tokyo, London, New York, see bar_profile.CENTRES) are open.
    day_session_hours: float = 12.0
    centre_weight: float = 3.0             # extra variance weight per open centre (weekdays)
    always_open_centre_weight: float = 0.3  # the same for markets open every day: mild profile
    # Increments, gaps and volume.
    tail_df: float = 5.0                   # Student-t degrees of freedom ("realistic", "planted")
    gap_share_per_day: float = 0.4         # gap variance / daily variance per 24 h of break
    gap_share_max: float = 0.3
    volume_per_second: float = 1.0        # mean volume per second at a neutral profile
    min_price_share: float = 0.05          # volatility never scales below this x reference

    @property
    def log_vol_variance(self) -> float:
        """Stationary variance of the total log-volatility."""
        return self.day_vol_std ** 2 + self.intraday_vol_std ** 2


@dataclass(frozen=True)
class BarPlantedRule:
    """The edge of a ``planted`` market of the bar-path engine, in bars of its bar size.

    The shock-and-reversion of ``PlantedRule`` with the bar as the unit of time. Each bar of
    the market starts an event with probability ``events_per_day / (bars of its trade
    date)``, at most ``max_rate_per_bar`` (1m bars: about 5 events a day; 1h and 1D bars: one
    bar in 20), unless an earlier event's window (the shock bar plus ``horizon_bars``) still
    runs; intraday, an event starts only
    where its whole window fits inside the trade date (so a daily flat does not cut it); 1D
    windows run over the following trade dates. In the shock bar the price gets an extra move
    of ``k_sigma`` local one-bar sigmas (the expected standard deviation of the unperturbed
    price over that bar) in a random direction (+1 or -1, each 1/2), spread evenly over the
    bar's sub-steps. With probability ``p_revert`` the price then gives back
    ``revert_fraction`` of the shock over the next ``horizon_bars`` bars, front-loaded: after
    b of the H bars a share ``(1 - exp(-4 b / H)) / (1 - exp(-4))`` is done (56 % after the
    first of 5 bars); otherwise the shock stays. Drifts are whole ticks (cumulative
    rounding), so prices stay on the tick grid.
    """

    k_sigma: float = 5.0
    p_revert: float = 0.7
    revert_fraction: float = 0.6
    horizon_bars: int = 5
    events_per_day: float = 5.0
    max_rate_per_bar: float = 0.05

    def rate_per_bar(self, bars_in_day: int) -> float:
        """Chance that a free bar starts an event, for a trade date of ``bars_in_day`` bars."""
        return min(self.max_rate_per_bar, self.events_per_day / bars_in_day)

    @property
    def window_bars(self) -> int:
        """Length of one event in bars: the shock bar plus the reversion horizon."""
        return 1 + self.horizon_bars


@dataclass(frozen=True)
class TwoBehaviourRule:
    """A planted edge with two behaviours that want different exits (tick engine only).

    Pass it as ``generate_market(..., kind="planted", planted_rule=TwoBehaviourRule())``.
    Events are scheduled as for ``PlantedRule`` (``rate_per_day``, ``core_share``, windows
    never overlap); each is *slow* with probability ``slow_share``, else *fast*, and always
    reverts:

    * **fast/small**: a shock of ``fast_k_sigma`` local one-minute sigmas, then
      ``fast_revert_fraction`` of it comes back within ``fast_horizon_minutes`` (front-loaded
      as in ``PlantedRule``), then ``fast_relapse_fraction`` times that reversion is given
      back evenly over the next ``fast_relapse_minutes`` (2: the move runs on past the
      shock): a tight target and a short hold catch it, a wide target and a long hold lose;
    * **slow/large**: a shock of ``slow_k_sigma`` sigmas that first runs on by
      ``slow_extension_k_sigma`` sigmas over ``slow_extension_minutes`` (a fade is under
      water), then ``slow_revert_fraction`` of the shock plus the extension comes back over
      ``slow_horizon_minutes`` (front-loaded): a wide stop, a wide target and a long hold
      take several times what a tight exit takes, and a tight stop is run over.

    One exit cannot serve both: that is what fission has to find (benchmarks/bench_fission.py;
    with a relapse of 1 and no extension, trailing stops let one exit serve both nearly as
    well, and no split could show its worth on held-out members).

    The two differ before the entry too (the shock's size in sigmas), so a split of the two is
    something a template's features can carry. Every event is listed with its ``behaviour``.
    """

    rate_per_day: float = 6.0
    core_share: float = 0.8
    slow_share: float = 0.5
    fast_k_sigma: float = 4.0
    fast_revert_fraction: float = 0.75
    fast_horizon_minutes: int = 3
    fast_relapse_minutes: int = 10
    fast_relapse_fraction: float = 2.0
    slow_k_sigma: float = 8.0
    slow_revert_fraction: float = 1.0
    slow_horizon_minutes: int = 40
    slow_extension_k_sigma: float = 3.0
    slow_extension_minutes: int = 5

    @property
    def window_minutes(self) -> int:
        """Minutes after the shock minute that one event may move the price."""
        return max(self.fast_horizon_minutes + self.fast_relapse_minutes,
                   self.slow_extension_minutes + self.slow_horizon_minutes)
