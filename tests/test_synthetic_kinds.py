"""The synthetic market of every instrument kind: MNQ-like 1s (tick engine), EURUSD-like 1h,
equity-like 1D and crypto-like 24/7 1m (bar-path engine), checked against independent
references: pandas/zoneinfo calendars, the resampler's 1D convention, plain statistics, and
the MNQ bytes of the code before the bar-path engine existed."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from functools import cache
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from stratforge.data.bars import ts_ns, validate_bars
from stratforge.data.resample import resample_bars
from stratforge.data.synthetic import (
    PATH_ENGINE,
    SYNTHETIC_KINDS,
    TICK_ENGINE,
    BarPlantedRule,
    default_days,
    engine_for,
    generate_market,
    native_timeframe,
)
from stratforge.errors import ConfigError
from stratforge.instruments import BUILTIN_INSTRUMENTS, Instrument
from stratforge.timeframes import parse_timeframe

NEW_YORK = ZoneInfo("America/New_York")
NS_SECOND = 1_000_000_000
KINDS = {  # symbol: (bar size, default span in trading days, trading days used by the tests)
    "EURUSD": ("1h", 520, 520),
    "AAPL": ("1D", 2520, 2520),
    "BTCUSD": ("1m", 90, 30),
}


@cache
def market(symbol: str, days: int, seed: int = 11, kind: str = "realistic",
           resolution: str | None = None, start: date | None = None):
    """Generated once per argument set and shared by the tests (never mutate the result)."""
    return generate_market(BUILTIN_INSTRUMENTS[symbol], days=days, seed=seed, kind=kind,
                           resolution=resolution, start=start)


def in_ticks(prices: np.ndarray, tick: float) -> np.ndarray:
    """Prices as whole ticks, asserting they lie on the tick grid."""
    out = np.rint(np.asarray(prices) / tick)
    assert np.allclose(out * tick, prices, rtol=0, atol=tick * 1e-6)
    return out.astype(np.int64)


def digest(bars: pd.DataFrame) -> str:
    """SHA-256 of the bars' raw column bytes."""
    h = hashlib.sha256(ts_ns(bars).tobytes())
    for column in ("open", "high", "low", "close", "volume"):
        h.update(bars[column].to_numpy().tobytes())
    return h.hexdigest()


def acf_and_robust_se(x: np.ndarray, lag: int) -> tuple[float, float]:
    """Sample autocorrelation at ``lag`` and its heteroscedasticity-consistent standard error."""
    x = x - x.mean()
    products = x[lag:] * x[:-lag]
    denominator = (x * x).sum()
    return products.sum() / denominator, np.sqrt((products * products).sum()) / denominator


def per_trade_date(bars: pd.DataFrame, instrument: Instrument) -> pd.DataFrame:
    """High, low and close of each trade date, booked with plain zoneinfo arithmetic: FX
    dates roll at 17:00 New York, US equities book the New York date, crypto the UTC date."""
    stamps = bars["ts"]
    if instrument.session.timezone == "UTC":
        day = stamps.dt.date
    else:
        local = stamps.dt.tz_convert(NEW_YORK)
        roll = instrument.session.overnight & (local.dt.hour >= 17)
        day = (local + pd.to_timedelta(roll.astype(int), unit="D")).dt.date
    return bars.groupby(day.to_numpy()).agg(high=("high", "max"), low=("low", "min"),
                                            close=("close", "last"))


# --- MNQ stays what it was ----------------------------------------------------------------------

# Digests of the tick engine's bars: MNQ at 1s is the demo market and the benchmarks' input,
# so it must not change by accident. The planted case (a span without exchange holidays) is
# byte-for-byte what the generator made before the bar-path engine was added (commit
# 1d210b8). The other three start on 2023-01-02, an exchange holiday since the calendars
# (exchange_calendars) came in: their trade dates moved one day on (the same draws, so the
# same row counts) and were pinned again then.
BEFORE = [
    ("MNQ", "realistic", "1s", 3, 7, None, 102_607,
     "cc46fff34ec14a8afc35b6a3920950d8ffb431ad77770c2fac55940026c84ba2"),
    ("MNQ", "null", "1s", 2, 11, None, 65_020,
     "42770c88a6d8573a9f75d80621221694a1f33ed6d7e6aa3a297ea42c15213795"),
    ("MNQ", "planted", "1m", 4, 3, date(2023, 3, 6), 5_516,
     "4406466d900bd3f4888960cb9f7c164e858509a8766d432c5b4b0ec7bb0d6779"),
    ("SPY", "realistic", "1h", 3, 2, None, 21,
     "b8f6e5ec6df3c889ca238d79539a362a639b89f4e90e08d4c71ad04b20ca7425"),
]


@pytest.mark.parametrize(("symbol", "kind", "resolution", "days", "seed", "start", "rows",
                          "expected"), BEFORE)
def test_tick_engine_bytes_are_those_of_the_code_before(symbol, kind, resolution, days, seed,
                                                        start, rows, expected):
    bars = generate_market(BUILTIN_INSTRUMENTS[symbol], days=days, seed=seed, kind=kind,
                           resolution=resolution, start=start).bars
    assert len(bars) == rows and digest(bars) == expected


def test_mnq_defaults_are_the_demo_market_of_before():
    mnq = BUILTIN_INSTRUMENTS["MNQ"]
    assert engine_for(mnq) == TICK_ENGINE and native_timeframe(mnq).name == "1s"
    assert default_days(mnq) == 60
    short = generate_market(mnq, days=3, seed=7)
    assert short.spec["resolution"] == "1s" and short.spec["start"] == "2023-01-02"
    assert digest(short.bars) == BEFORE[0][-1]


# --- profiles -----------------------------------------------------------------------------------

@pytest.mark.parametrize("symbol", sorted(KINDS))
def test_each_kind_has_its_own_bar_size_span_price_tick_and_session(symbol):
    instrument = BUILTIN_INSTRUMENTS[symbol]
    bar_size, span, _ = KINDS[symbol]
    assert native_timeframe(instrument).name == bar_size and default_days(instrument) == span
    assert engine_for(instrument) == PATH_ENGINE
    spec = generate_market(instrument, days=2, seed=1).spec
    assert spec["resolution"] == bar_size and spec["engine"] == PATH_ENGINE
    assert spec["tick_size"] == instrument.tick_size


def test_new_builtins_and_unchanged_old_ones():
    btc, aapl = BUILTIN_INSTRUMENTS["BTCUSD"], BUILTIN_INSTRUMENTS["AAPL"]
    assert (btc.tick_size, btc.point_value, btc.currency, btc.trading_days_per_year) == \
        (0.01, 1.0, "USD", 365)
    assert btc.session.weekdays == (0, 1, 2, 3, 4, 5, 6) and btc.session.flat is None
    assert (aapl.tick_size, aapl.session.timezone, aapl.trading_days_per_year) == \
        (0.01, "America/New_York", 252)
    mnq, eur = BUILTIN_INSTRUMENTS["MNQ"], BUILTIN_INSTRUMENTS["EURUSD"]
    assert (mnq.tick_size, mnq.point_value, mnq.reference_price, mnq.daily_volatility) == \
        (0.25, 2.0, 18_000.0, 0.013)
    assert (eur.tick_size, eur.point_value, eur.reference_price, eur.trading_days_per_year) == \
        (0.00001, 100_000.0, 1.08, 260)
    assert all(BUILTIN_INSTRUMENTS[s].synthetic_timeframe is None
               for s in ("NQ", "MES", "ES", "SPY", "EQUITY"))


# --- determinism --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", SYNTHETIC_KINDS)
@pytest.mark.parametrize("symbol", sorted(KINDS))
def test_same_arguments_same_bytes_and_prefix_days_are_the_shorter_market(symbol, kind):
    days = 40 if symbol == "AAPL" else 6
    first = generate_market(BUILTIN_INSTRUMENTS[symbol], days=days, seed=5, kind=kind)
    again = generate_market(BUILTIN_INSTRUMENTS[symbol], days=days, seed=5, kind=kind)
    pd.testing.assert_frame_equal(first.bars, again.bars, check_exact=True)
    assert first.spec == again.spec
    other = generate_market(BUILTIN_INSTRUMENTS[symbol], days=days, seed=6, kind=kind)
    assert not np.array_equal(other.bars["close"].to_numpy(), first.bars["close"].to_numpy())
    short = generate_market(BUILTIN_INSTRUMENTS[symbol], days=days // 2, seed=5, kind=kind)
    pd.testing.assert_frame_equal(short.bars, first.bars.iloc[:len(short.bars)],
                                  check_exact=True)


# --- the bars contract and the calendar ---------------------------------------------------------

@pytest.mark.parametrize("symbol", sorted(KINDS))
def test_bars_are_valid_on_the_tick_grid_and_open_at_the_previous_close(symbol):
    instrument = BUILTIN_INSTRUMENTS[symbol]
    bars = market(symbol, 20, kind="planted").bars
    validate_bars(bars, "synthetic")
    o, h, lo, c = (in_ticks(bars[k].to_numpy(), instrument.tick_size)
                   for k in ("open", "high", "low", "close"))
    assert (h >= np.maximum(o, c)).all() and (lo <= np.minimum(o, c)).all()
    assert (bars["volume"] >= 1).all() and (bars["volume"] % 1 == 0).all()
    continuous = np.diff(ts_ns(bars)) == parse_timeframe(KINDS[symbol][0]).nanoseconds
    if symbol != "AAPL":  # inside a session every bar opens at the close before it
        assert continuous.mean() > 0.9
        assert np.array_equal(o[1:][continuous], c[:-1][continuous])
    assert 0.9 * instrument.reference_price < bars["open"].iloc[0] < \
        1.1 * instrument.reference_price


def test_fx_hourly_bars_cover_every_hour_of_the_24x5_week_and_nothing_else():
    days, start = 30, date(2024, 3, 4)  # the US spring-forward of 2024-03-10 is inside
    bars = market("EURUSD", days, start=start).bars
    expected = []
    for trade_date in pd.bdate_range(start, periods=days):
        opens = pd.Timestamp(trade_date - pd.Timedelta(days=1)).replace(hour=17)
        closes = pd.Timestamp(trade_date).replace(hour=17)
        first = opens.tz_localize(NEW_YORK).tz_convert("UTC")
        last = closes.tz_localize(NEW_YORK).tz_convert("UTC")
        expected.extend(pd.date_range(first, last, freq="1h", inclusive="left"))
    assert list(bars["ts"]) == expected
    local = bars["ts"].dt.tz_convert(NEW_YORK)
    assert not (local.dt.day_of_week == 5).any()
    assert not ((local.dt.day_of_week == 6) & (local.dt.hour < 17)).any()
    assert not ((local.dt.day_of_week == 4) & (local.dt.hour >= 17)).any()


def test_daily_equity_bars_are_one_per_session_stamped_like_the_resampled_1d_bar():
    days, start = 300, date(2023, 1, 2)
    bars = market("AAPL", days, start=start).bars
    # the NYSE's sessions straight from the calendar library: weekdays without holidays
    import exchange_calendars

    sessions = exchange_calendars.get_calendar("XNYS").sessions_in_range(
        pd.Timestamp(start), pd.Timestamp(start) + pd.Timedelta(days=600))[:days]
    midnight = sessions.tz_localize(NEW_YORK).tz_convert("UTC")  # 1D bars start the date
    assert list(bars["ts"]) == list(midnight)
    session = BUILTIN_INSTRUMENTS["AAPL"].session
    pd.testing.assert_frame_equal(resample_bars(bars, parse_timeframe("1D"), session), bars)
    # the same trade date's intraday bars resample to a daily bar with the same stamp
    hourly = market("AAPL", 5, start=start, resolution="1h").bars
    daily = resample_bars(hourly, parse_timeframe("1D"), session)
    assert list(daily["ts"]) == list(bars["ts"][:5])


def test_crypto_bars_come_every_minute_of_every_day():
    days, start = 10, date(2024, 3, 8)  # over a weekend and the US DST switch
    bars = market("BTCUSD", days, start=start).bars
    expected = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=days * 1440, freq="1min")
    assert list(bars["ts"]) == list(expected)


def test_fx_daily_bars_are_the_resampled_hourly_market_stamps():
    start = date(2024, 3, 4)
    hourly = market("EURUSD", 15, start=start).bars
    daily = market("EURUSD", 15, start=start, resolution="1D").bars
    session = BUILTIN_INSTRUMENTS["EURUSD"].session
    assert list(daily["ts"]) == list(resample_bars(hourly, parse_timeframe("1D"), session)["ts"])


# --- price level, range and volatility ----------------------------------------------------------

@pytest.mark.parametrize("symbol", sorted(KINDS))
def test_price_level_daily_range_and_volatility_fit_the_instrument(symbol):
    instrument = BUILTIN_INSTRUMENTS[symbol]
    days = 500 if symbol == "AAPL" else KINDS[symbol][1]  # two years: the price stays close
    daily = per_trade_date(market(symbol, days).bars, instrument)
    assert len(daily) == days
    expected_range = instrument.reference_price * instrument.daily_volatility * 1.5
    assert expected_range / 3 < (daily["high"] - daily["low"]).median() < 3 * expected_range
    relative = ((daily["high"] - daily["low"]) / daily["close"]).median()
    assert instrument.daily_volatility * 1.5 / 3 < relative < 3 * instrument.daily_volatility * 1.5
    realized = np.log(daily["close"]).diff().std()
    assert 0.7 * instrument.daily_volatility < realized < 1.4 * instrument.daily_volatility
    closes = daily["close"]
    assert 0.4 * instrument.reference_price < closes.min()
    assert closes.max() < 2.5 * instrument.reference_price


def test_ten_years_of_daily_bars_keep_the_relative_range():
    instrument = BUILTIN_INSTRUMENTS["AAPL"]
    bars = market("AAPL", 2520).bars
    relative = ((bars["high"] - bars["low"]) / bars["close"]).median()
    assert 0.5 < relative / (instrument.daily_volatility * 1.5) < 2
    assert (bars["low"] > 0).all()


def test_fx_is_busier_in_london_and_new_york_hours_crypto_only_mildly():
    eur = market("EURUSD", 260).bars
    moves = np.abs(np.diff(in_ticks(eur["close"].to_numpy(), 0.00001))).astype(float)
    hour = eur["ts"].dt.tz_convert(NEW_YORK).dt.hour.to_numpy()[1:]
    by_hour = pd.Series(moves).groupby(hour).mean()
    overlap = by_hour.loc[8:11].mean()     # London and New York both open
    asia_evening = by_hour.loc[18:22].mean()  # only Tokyo (or nobody)
    assert overlap > 1.8 * asia_evening
    btc = market("BTCUSD", 30).bars
    moves = np.abs(np.diff(in_ticks(btc["close"].to_numpy(), 0.01))).astype(float)
    by_hour = pd.Series(moves).groupby(btc["ts"].dt.hour.to_numpy()[1:]).mean()
    assert 1.05 < by_hour.max() / by_hour.min() < 1.6


@pytest.mark.parametrize("symbol", sorted(KINDS))
def test_realistic_market_has_volatility_clustering(symbol):
    days = KINDS[symbol][2]
    seeds = (11, 12, 13) if symbol == "AAPL" else (11,)
    rhos, ses = [], []
    for seed in seeds:
        close = market(symbol, days, seed=seed).bars["close"].to_numpy()
        rho, se = acf_and_robust_se(np.abs(np.diff(np.log(close))), 1)
        rhos.append(rho)
        ses.append(se)
    assert np.mean(rhos) > 0.04 and np.mean(rhos) > 3 * np.mean(ses) / np.sqrt(len(seeds))


@pytest.mark.parametrize(("symbol", "kind"), [("EURUSD", "null"), ("EURUSD", "realistic"),
                                          ("AAPL", "realistic"), ("BTCUSD", "realistic")])
def test_wicks_give_no_edge_to_limit_orders(symbol, kind):
    """A level beyond the open that the high (low) reached is, on average, where the bar
    closes: what a Brownian path inside the bar would give (optional stopping)."""
    tick = BUILTIN_INSTRUMENTS[symbol].tick_size
    bars = market(symbol, KINDS[symbol][2], kind=kind).bars
    o, h, lo, c = (in_ticks(bars[k].to_numpy(), tick) for k in ("open", "high", "low", "close"))
    unit = max(1, int(np.median(np.abs(c - o)) // 2))
    assert ((h - np.maximum(o, c)) > 0).mean() > 0.5, "wicks exist"
    for j in range(1, 5):
        for side, touched in ((1, h >= o + j * unit), (-1, lo <= o - j * unit)):
            edge = (side * (c - (o + side * j * unit)))[touched].astype(np.float64)
            t = edge.mean() / edge.std() * np.sqrt(len(edge))
            assert len(edge) > 200 and abs(t) < 4, (j, side, t)


# --- no edge in null, a measurable one in planted -----------------------------------------------

@pytest.mark.parametrize("symbol", sorted(KINDS))
def test_null_market_returns_have_no_autocorrelation(symbol):
    instrument = BUILTIN_INSTRUMENTS[symbol]
    bars = market(symbol, KINDS[symbol][2], kind="null").bars
    returns = np.diff(in_ticks(bars["close"].to_numpy(), instrument.tick_size)).astype(float)
    for lag in range(1, 6):
        rho, se = acf_and_robust_se(returns, lag)
        assert abs(rho) < 4 * se, (lag, rho, se)
        assert se < 3 / np.sqrt(len(returns))


def fade_statistic(bars: pd.DataFrame, tick: float, horizon: int = 5, threshold: float = 3.5,
                   window: int = 50) -> tuple[int, float]:
    """From the bars alone: fade every bar move beyond ``threshold`` local sigmas (the root
    mean square of the previous ``window`` moves) and hold ``horizon`` bars; the count and
    t-statistic of the outcomes in local sigmas."""
    close = in_ticks(bars["close"].to_numpy(), tick).astype(float)
    move = np.diff(close)
    sigma = np.sqrt(pd.Series(move ** 2).rolling(window, min_periods=window // 2).mean()
                    .shift(1).to_numpy())
    ahead = np.full(len(move), np.nan)
    ahead[:-horizon] = close[1 + horizon:] - close[1:-horizon]
    chosen = (np.abs(move / sigma) > threshold) & np.isfinite(ahead)
    outcome = -np.sign(move[chosen]) * ahead[chosen] / sigma[chosen]
    return len(outcome), outcome.mean() / outcome.std() * np.sqrt(len(outcome))


@pytest.mark.parametrize(("symbol", "planted_t"), [("EURUSD", 5), ("AAPL", 3), ("BTCUSD", 4)])
def test_planted_edge_is_measurable_from_bars_and_absent_from_the_null_twin(symbol, planted_t):
    tick, days = BUILTIN_INSTRUMENTS[symbol].tick_size, KINDS[symbol][2]
    found, t_planted = fade_statistic(market(symbol, days, seed=2024, kind="planted").bars, tick)
    control, t_null = fade_statistic(market(symbol, days, seed=2024, kind="null").bars, tick)
    assert found > 25 and t_planted > planted_t, (found, t_planted)
    assert control > 3 and abs(t_null) < 3, (control, t_null)


@pytest.mark.parametrize("symbol", sorted(KINDS))
def test_planted_events_follow_the_documented_rule(symbol):
    instrument = BUILTIN_INSTRUMENTS[symbol]
    days = KINDS[symbol][2]
    m = market(symbol, days, seed=8, kind="planted")
    rule, spec = BarPlantedRule(), m.spec["planted"]
    assert spec["rule"] == "shock_reversion_bars" and spec["horizon_bars"] == rule.horizon_bars
    events = pd.DataFrame(spec["events"])
    bars = m.bars.set_index("ts")
    bars_per_day = round(len(bars) / days)
    expected = len(bars) * rule.rate_per_bar(bars_per_day)
    assert 0.5 * expected < len(events) < 1.15 * expected  # running windows block new events
    position = bars.index.get_indexer(pd.to_datetime(events["ts"], utc=True))
    assert (position >= 0).all()
    assert (np.diff(position) >= rule.window_bars).all(), "event windows overlap"
    close = in_ticks(bars["close"].to_numpy(), instrument.tick_size)
    chosen, position = events[position >= 1], position[position >= 1]
    shock = (close[position] - close[position - 1]) * chosen["direction"].to_numpy()
    assert (shock > 0).mean() > 0.95
    assert (chosen["shock_ticks"] == np.maximum(
        1, np.rint(rule.k_sigma * chosen["sigma_ticks"]))).all()
    assert ((chosen["reversion_ticks"] == np.rint(rule.revert_fraction * chosen["shock_ticks"]))
            | ~chosen["reverted"]).all()
    assert 0.55 < events["reverted"].mean() < 0.85
    if symbol == "EURUSD":  # intraday windows stay inside one trade date
        dates = per_trade_date_labels(bars.index, instrument)
        start = bars.index.get_indexer(pd.to_datetime(events["ts"], utc=True))
        assert (dates[start] == dates[start + rule.horizon_bars]).all()


def per_trade_date_labels(stamps: pd.DatetimeIndex, instrument: Instrument) -> np.ndarray:
    """The FX trade date of each stamp (it rolls at 17:00 New York)."""
    local = stamps.tz_convert(NEW_YORK)
    return (local + pd.to_timedelta((local.hour >= 17).astype(int), unit="D")).date


def test_daily_planted_reversion_runs_over_the_next_trade_dates():
    m = market("AAPL", 2520, seed=8, kind="planted")
    twin = market("AAPL", 2520, seed=8, kind="realistic").bars
    events = m.spec["planted"]["events"]
    first = pd.Timestamp(events[0]["ts"])
    position = int(np.flatnonzero(m.bars["ts"] == first)[0])
    close = in_ticks(m.bars["close"].to_numpy(), 0.01)
    base = in_ticks(twin["close"].to_numpy(), 0.01)
    assert np.array_equal(close[:position], base[:position]), "no drift before the first event"
    event = events[0]
    moved = (close[position] - close[position - 1]) - (base[position] - base[position - 1])
    assert moved == event["direction"] * event["shock_ticks"]


# --- spec, arguments ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", SYNTHETIC_KINDS)
def test_spec_is_json_and_names_the_engine_and_rule(kind):
    m = market("BTCUSD", 2, kind=kind)
    spec = json.loads(json.dumps(m.spec))
    assert spec == m.spec
    assert (spec["engine"], spec["resolution"], spec["days"], spec["bars"]) == \
        (PATH_ENGINE, "1m", 2, 2 * 1440)
    assert spec["model"]["daily_step_seconds"] > 0
    if kind == "planted":
        assert {"k_sigma", "p_revert", "revert_fraction", "horizon_bars", "events_per_day",
                "max_rate_per_bar", "events", "description"} <= set(spec["planted"])
    else:
        assert spec["planted"] is None


@pytest.mark.parametrize(("symbol", "resolution", "says"), [
    ("MNQ", "1D", "intraday"), ("EURUSD", "1W", "coarser than one trade date"),
    ("AAPL", "fast", "or 1D"),
])
def test_resolutions_an_engine_cannot_make_are_refused(symbol, resolution, says):
    with pytest.raises(ConfigError, match=says):
        generate_market(BUILTIN_INSTRUMENTS[symbol], days=2, seed=1, resolution=resolution)


def test_an_invalid_synthetic_timeframe_names_the_instrument():
    broken = Instrument("XYZ", 0.01, 1.0, "USD", BUILTIN_INSTRUMENTS["AAPL"].session,
                        synthetic_timeframe="2D")
    with pytest.raises(ConfigError, match="instrument XYZ: synthetic_timeframe '2D'"):
        generate_market(broken, days=2, seed=1)
