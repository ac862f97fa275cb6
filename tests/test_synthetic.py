"""The synthetic market against independent references: zoneinfo calendars, pandas resampling,
and statistical properties (martingale, clustering, a measurable planted edge)."""

from __future__ import annotations

import json
from datetime import date, datetime, time
from functools import cache
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratforge.data.bars import bars_from_arrays, ts_ns, validate_bars
from stratforge.data.synthetic import SYNTHETIC_KINDS, PlantedRule, generate_market
from stratforge.errors import ConfigError
from stratforge.instruments import BUILTIN_INSTRUMENTS

MNQ = BUILTIN_INSTRUMENTS["MNQ"]
CHICAGO = ZoneInfo("America/Chicago")
NS_MINUTE = 60_000_000_000


@cache
def market(symbol: str = "MNQ", days: int = 5, seed: int = 11, kind: str = "realistic",
           resolution: str = "1s", start: date | None = None):
    """Generated once per argument set and shared by the tests (never mutate the result)."""
    return generate_market(BUILTIN_INSTRUMENTS[symbol], days=days, seed=seed, kind=kind,
                           resolution=resolution, start=start)


def ticks(prices: np.ndarray, tick: float = 0.25) -> np.ndarray:
    out = np.rint(np.asarray(prices) / tick)
    assert np.allclose(out * tick, prices, rtol=0, atol=tick * 1e-6)
    return out.astype(np.int64)


def local_times(ts: np.ndarray, zone: ZoneInfo) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weekday, seconds of the local day, local date ordinal) of UTC ns stamps, via zoneinfo
    on each distinct minute (all our stamps within one minute share the local minute)."""
    minutes, inverse = np.unique(ts // NS_MINUTE, return_inverse=True)
    weekday, seconds, ordinal = (np.empty(len(minutes), dtype=np.int64) for _ in range(3))
    for i, minute in enumerate(minutes):
        local = datetime.fromtimestamp(int(minute) * 60, tz=zone)
        weekday[i], ordinal[i] = local.weekday(), local.toordinal()
        seconds[i] = local.hour * 3600 + local.minute * 60
    extra = (ts // 1_000_000_000) % 60
    return weekday[inverse], seconds[inverse] + extra, ordinal[inverse]


def clock(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def minute_bars(bars: pd.DataFrame) -> pd.DataFrame:
    """1-minute OHLCV of 1s bars, by plain pandas on the UTC minute."""
    return bars.groupby(bars["ts"].dt.floor("1min")).agg(
        open=("open", "first"), high=("high", "max"), low=("low", "min"),
        close=("close", "last"), volume=("volume", "sum")).reset_index()


def acf_and_robust_se(x: np.ndarray, lag: int) -> tuple[float, float]:
    """Sample autocorrelation at ``lag`` and its heteroscedasticity-consistent standard error
    (sqrt(sum (x_t x_{t-k})^2) / sum x_t^2; equals 1/sqrt(n) for i.i.d. data)."""
    x = x - x.mean()
    products = x[lag:] * x[:-lag]
    denominator = (x * x).sum()
    return products.sum() / denominator, np.sqrt((products * products).sum()) / denominator


def session_minute_returns(bars: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Minute stamps and close-to-close tick returns between consecutive minutes."""
    m = minute_bars(bars)
    stamp = ts_ns(m) // NS_MINUTE
    close = ticks(m["close"].to_numpy())
    consecutive = np.diff(stamp) == 1
    return stamp[1:][consecutive], np.diff(close)[consecutive]


# --- determinism -----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", SYNTHETIC_KINDS)
def test_same_arguments_give_identical_bars_and_spec(kind):
    first = generate_market(MNQ, days=3, seed=5, kind=kind)
    again = generate_market(MNQ, days=3, seed=5, kind=kind)
    pd.testing.assert_frame_equal(first.bars, again.bars, check_exact=True)
    assert first.spec == again.spec
    other = generate_market(MNQ, days=3, seed=6, kind=kind)
    assert len(other.bars) != len(first.bars) or not np.array_equal(
        other.bars["close"].to_numpy(), first.bars["close"].to_numpy())


def test_first_days_of_a_longer_market_equal_the_shorter_market():
    short, long = market(days=4, kind="planted"), market(days=7, kind="planted")
    pd.testing.assert_frame_equal(short.bars, long.bars.iloc[:len(short.bars)],
                                  check_exact=True)
    assert long.spec["planted"]["events"][:len(short.spec["planted"]["events"])] == \
        short.spec["planted"]["events"]


def test_frame_is_canonical_like_bars_from_arrays():
    bars = market().bars
    rebuilt = bars_from_arrays(ts_ns(bars), *(bars[c].to_numpy() for c in
                                             ("open", "high", "low", "close", "volume")))
    pd.testing.assert_frame_equal(bars, rebuilt, check_exact=True)
    assert list(bars.columns) == ["ts", "open", "high", "low", "close", "volume"]


# --- the bars contract and the calendar --------------------------------------------------------

def test_bars_are_valid_on_the_tick_grid_and_open_at_the_previous_close():
    bars = market().bars
    validate_bars(bars, "synthetic")
    for column in ("open", "high", "low", "close"):
        ticks(bars[column].to_numpy())
    stamps = ts_ns(bars)
    same_session = np.diff(stamps) < 3600 * 1_000_000_000
    assert np.array_equal(bars["open"].to_numpy()[1:][same_session],
                          bars["close"].to_numpy()[:-1][same_session])
    assert (bars["volume"] >= 1).all() and (bars["volume"] % 1 == 0).all()
    assert 0.8 * MNQ.reference_price < bars["close"].iloc[0] < 1.2 * MNQ.reference_price


@pytest.mark.parametrize("resolution", ["1s", "1m"])
def test_mnq_bars_only_inside_globex_sessions(resolution):
    days = 8
    start = date(2023, 3, 6)  # crosses the US daylight-saving switch of 2023-03-12
    bars = market(days=days, resolution=resolution, start=start).bars
    stamps = ts_ns(bars)
    weekday, seconds, ordinal = local_times(stamps, CHICAGO)
    break_start, open_ = clock(time(16)), clock(time(17))
    evening = seconds >= open_
    assert not ((seconds >= break_start) & (seconds < open_)).any(), "bar in the daily break"
    assert not (weekday == 5).any(), "bar on a Saturday"
    assert not ((weekday == 6) & ~evening).any(), "bar on Sunday before the open"
    assert not ((weekday == 4) & evening).any(), "bar on Friday evening"
    trade_date = ordinal + evening  # Globex rolls the trade date at 17:00
    dates = [date.fromordinal(int(d)) for d in np.unique(trade_date)]
    assert len(dates) == days and all(d.weekday() < 5 for d in dates)
    assert dates[0] == start
    step = 1_000_000_000 * (1 if resolution == "1s" else 60)
    assert (stamps % step == 0).all()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(symbol=st.sampled_from(["MNQ", "SPY", "EURUSD"]),
       resolution=st.sampled_from(["1s", "5s", "1m", "5m", "1h"]),
       days=st.integers(1, 3), seed=st.integers(0, 2**32),
       kind=st.sampled_from(SYNTHETIC_KINDS),
       start=st.dates(date(2022, 1, 1), date(2025, 12, 31)))
def test_any_market_respects_its_session_and_resolution(symbol, resolution, days, seed, kind,
                                                        start):
    instrument = BUILTIN_INSTRUMENTS[symbol]
    session = instrument.session
    bars = generate_market(instrument, days=days, seed=seed, kind=kind, resolution=resolution,
                           start=start).bars
    validate_bars(bars, "synthetic")
    for column in ("open", "high", "low", "close"):
        ticks(bars[column].to_numpy(), instrument.tick_size)
    weekday, seconds, _ = local_times(ts_ns(bars), ZoneInfo(session.timezone))
    open_, close = clock(session.open), clock(session.close)
    if open_ >= close:  # overnight: evening part books to the next day
        inside = ((seconds >= open_) & np.isin((weekday + 1) % 7, session.weekdays)) | (
            (seconds < close) & np.isin(weekday, session.weekdays))
    else:
        inside = (seconds >= open_) & (seconds < close) & np.isin(weekday, session.weekdays)
    assert inside.all()
    step = int(resolution[:-1]) * {"s": 1, "m": 60, "h": 3600}[resolution[-1]]
    assert ((seconds - open_) % step == 0).all(), "bars anchored at the session open"


def test_mnq_one_second_bars_are_sparse_like_real_data():
    days = 10
    bars = market(days=days, start=date(2023, 1, 23)).bars  # ten regular CME days
    _, seconds, _ = local_times(ts_ns(bars), CHICAGO)
    rth = (seconds >= clock(time(8, 30))) & (seconds < clock(time(15)))
    assert 27_000 < len(bars) / days < 38_000
    assert rth.sum() / (days * 6.5 * 3600) > 0.93
    assert 0.10 < (~rth).sum() / (days * 16.5 * 3600) < 0.25


@pytest.mark.parametrize(("resolution", "rule"), [("1m", "1min"), ("5m", "5min")])
def test_coarser_resolution_is_the_resample_of_the_one_second_market(resolution, rule):
    fine = market(days=4, kind="planted").bars
    coarse = market(days=4, kind="planted", resolution=resolution).bars
    reference = fine.groupby(fine["ts"].dt.floor(rule)).agg(
        open=("open", "first"), high=("high", "max"), low=("low", "min"),
        close=("close", "last"), volume=("volume", "sum")).reset_index()
    pd.testing.assert_frame_equal(coarse, reference, check_exact=True)
    _, seconds, _ = local_times(ts_ns(coarse), CHICAGO)
    rth = (seconds >= clock(time(8, 30))) & (seconds < clock(time(15)))
    expected = 4 * 6.5 * 3600 / (60 if resolution == "1m" else 300)
    assert rth.sum() >= 0.99 * expected


def test_hourly_bars_of_a_day_session_start_at_the_open():
    bars = market(symbol="SPY", days=3, resolution="1h").bars
    local = bars["ts"].dt.tz_convert("America/New_York")
    assert sorted(set(local.dt.strftime("%H:%M"))) == [
        "09:30", "10:30", "11:30", "12:30", "13:30", "14:30", "15:30"]


# --- statistics --------------------------------------------------------------------------------

def test_null_market_returns_have_no_autocorrelation():
    bars = market(days=20, kind="null").bars
    stamps = ts_ns(bars)
    close = ticks(bars["close"].to_numpy())
    same_session = np.diff(stamps) < 3600 * 1_000_000_000
    one_second = np.diff(close)[same_session].astype(np.float64)
    _, one_minute = session_minute_returns(bars)
    for returns in (one_second, one_minute.astype(np.float64)):
        for lag in range(1, 6):
            rho, se = acf_and_robust_se(returns, lag)
            assert abs(rho) < 4 * se, (len(returns), lag, rho, se)
            assert se < 3 / np.sqrt(len(returns))  # the error bar itself is not inflated away


def test_realistic_market_has_volatility_clustering_beyond_the_intraday_profile():
    stamps, returns = session_minute_returns(market(days=30).bars)
    _, seconds, _ = local_times(stamps * NS_MINUTE, CHICAGO)
    slot = seconds // 1800
    scale = pd.Series(np.abs(returns)).groupby(slot).transform("mean").to_numpy()
    deseasoned = np.abs(returns) / scale
    for lag in (1, 5, 30):
        rho, se = acf_and_robust_se(deseasoned, lag)
        assert rho > 0.05 and rho > 6 * se, (lag, rho, se)


def test_intraday_profile_quiet_overnight_u_shaped_in_regular_hours():
    """Per trade date, the realized variance (1-second returns) of a window relative to midday;
    averaged in logs over the days so volatility clustering averages out."""
    bars = market(days=30, kind="null").bars
    stamps = ts_ns(bars)
    close = ticks(bars["close"].to_numpy())
    squared = np.diff(close).astype(np.float64) ** 2
    squared[np.diff(stamps) > 1800 * 1_000_000_000] = 0.0  # no gaps between sessions
    _, seconds, ordinal = local_times(stamps[1:], CHICAGO)
    hours = seconds / 3600
    windows = {"overnight": (18, 24), "opening": (8.5, 9), "midday": (11, 13),
               "closing": (14.5, 15)}
    label = np.full(len(squared), "", dtype=object)
    for name, (lo, hi) in windows.items():
        label[(hours >= lo) & (hours < hi)] = name
    frame = pd.DataFrame({"day": ordinal + (hours >= 17), "window": label, "sq": squared})
    per_minute = frame[label != ""].pivot_table("sq", "day", "window", "sum").dropna()
    per_minute /= pd.Series({k: 60 * (hi - lo) for k, (lo, hi) in windows.items()})
    sd_ratio = np.exp(0.5 * np.log(per_minute.div(per_minute["midday"], axis=0)).mean())
    assert sd_ratio["overnight"] < 0.5
    assert sd_ratio["opening"] > 1.1 and sd_ratio["closing"] > 1.0, sd_ratio.to_dict()


def test_daily_volatility_and_price_level_follow_the_instrument():
    bars = market(days=40).bars
    _, returns = session_minute_returns(bars)
    price = bars["close"].to_numpy()
    realized = np.sqrt((returns.astype(np.float64) ** 2).sum() / 40) * 0.25 / price.mean()
    assert 0.65 * MNQ.daily_volatility < realized < 1.5 * MNQ.daily_volatility
    assert 0.6 * MNQ.reference_price < price.min() and price.max() < 1.4 * MNQ.reference_price


def test_volume_follows_activity_and_the_size_of_moves():
    m = minute_bars(market(days=10).bars)
    _, seconds, _ = local_times(ts_ns(m), CHICAGO)
    rth = (seconds >= clock(time(8, 30))) & (seconds < clock(time(15)))
    volume = m["volume"].to_numpy()
    assert np.median(volume[rth]) > 10 * np.median(volume[~rth])
    moves = np.abs(np.diff(m["close"].to_numpy()))
    assert np.corrcoef(moves[rth[1:]], volume[1:][rth[1:]])[0, 1] > 0.2


@pytest.mark.parametrize("kind", ["null", "realistic"])
def test_wicks_give_no_edge_to_limit_orders(kind):
    """A level j ticks beyond the open that the high (low) reached is, on average, where the
    bar closes: what a Brownian path inside the bar would give (optional stopping)."""
    bars = market(days=10, kind=kind).bars
    o, h, lo, c = (ticks(bars[k].to_numpy()) for k in ("open", "high", "low", "close"))
    assert ((h - np.maximum(o, c)) > 0).mean() > 0.3, "wicks exist"
    for j in range(1, 6):
        for side, touched in ((1, h >= o + j), (-1, lo <= o - j)):
            edge = (side * (c - (o + side * j)))[touched].astype(np.float64)
            t = edge.mean() / edge.std() * np.sqrt(len(edge))
            assert len(edge) > 10_000 and abs(t) < 4, (j, side, t)


# --- the planted edge --------------------------------------------------------------------------

def fade_statistic(bars: pd.DataFrame, threshold: float = 3.5,
                   horizon: int = 5) -> tuple[int, float]:
    """From the bars alone: in regular hours, fade every 1-minute move beyond ``threshold``
    local sigmas and hold ``horizon`` minutes; the count and t-statistic of the outcomes.

    The local sigma is a minute-of-day profile of 1-second realized variance times the
    market's recent level relative to that profile (the previous 30 minutes).
    """
    stamps = ts_ns(bars)
    close = ticks(bars["close"].to_numpy()).astype(np.float64)
    step = np.diff(close, prepend=close[0])
    step[1:][np.diff(stamps) > 1800 * 1_000_000_000] = 0.0
    per_minute = pd.DataFrame({"m": stamps // NS_MINUTE, "c": close, "q": step ** 2}).groupby(
        "m").agg(c=("c", "last"), q=("q", "sum"))
    minute, c, q = per_minute.index.to_numpy(), per_minute["c"].to_numpy(), \
        per_minute["q"].to_numpy()
    _, seconds, _ = local_times(minute * NS_MINUTE, CHICAGO)
    tod = seconds // 60
    profile = pd.Series(q).groupby(tod).transform("mean").to_numpy()
    level = pd.Series(q / profile).rolling(30, min_periods=15).mean().shift(1).to_numpy()
    sigma = np.sqrt(profile * level)
    move = np.full(len(c), np.nan)
    move[1:] = np.where(np.diff(minute) == 1, np.diff(c), np.nan)
    ahead = np.full(len(c), np.nan)
    ahead[:-horizon] = np.where(minute[horizon:] - minute[:-horizon] == horizon,
                                c[horizon:] - c[:-horizon], np.nan)
    rth = (seconds >= clock(time(8, 30))) & (seconds < clock(time(15)))
    chosen = rth & (np.abs(move / sigma) > threshold) & np.isfinite(ahead)
    outcome = -np.sign(move[chosen]) * ahead[chosen] / sigma[chosen]
    return len(outcome), outcome.mean() / outcome.std() * np.sqrt(len(outcome))


def test_planted_edge_is_measurable_from_bars_and_absent_from_the_null_twin():
    planted = market(days=60, seed=2024, kind="planted").bars
    null = market(days=60, seed=2024, kind="null").bars
    found, t_planted = fade_statistic(planted)
    control, t_null = fade_statistic(null)
    assert found > 100 and t_planted > 4, (found, t_planted)
    assert control > 10 and abs(t_null) < 3, (control, t_null)


def test_planted_events_line_up_with_big_moves():
    m = market(days=30, seed=8, kind="planted")
    rule = m.spec["planted"]
    events = pd.DataFrame(rule["events"])
    assert 0.7 * 30 * rule["rate_per_day"] < len(events) <= 30 * rule["rate_per_day"] * 1.3
    closes = minute_bars(m.bars).set_index("ts")["close"]
    start = pd.to_datetime(events["ts"], utc=True).dt.as_unit("ns")
    before = closes.reindex(start - pd.Timedelta(minutes=1)).to_numpy()
    after = closes.reindex(start).to_numpy()
    shock = (after - before) / 0.25 * events["direction"].to_numpy() / events["sigma_ticks"]
    shock = shock[np.isfinite(shock)]
    assert len(shock) > 0.9 * len(events)
    assert (shock > 0).mean() > 0.97 and (shock > 2.5).mean() > 0.9
    assert abs(np.median(shock) - rule["k_sigma"]) < 0.5
    _, seconds, _ = local_times(start.astype("int64").to_numpy(), CHICAGO)
    in_core = (seconds >= clock(time(8, 30))) & (seconds < clock(time(15)))
    assert 0.65 < in_core.mean() < 0.95
    assert 0.55 < events["reverted"].mean() < 0.85


def test_planted_market_is_its_realistic_twin_plus_the_documented_drift():
    planted = market(days=10, seed=3, kind="planted")
    twin = market(days=10, seed=3, kind="realistic").bars
    bars = planted.bars
    assert np.array_equal(ts_ns(bars), ts_ns(twin))
    drift = ticks(bars["close"].to_numpy()) - ticks(twin["close"].to_numpy())
    stamps = ts_ns(bars) // 1_000_000_000
    rule = PlantedRule()
    events = planted.spec["planted"]["events"]
    assert planted.spec["planted"]["k_sigma"] == rule.k_sigma
    begins = [int(pd.Timestamp(e["ts"]).timestamp()) for e in events] + [int(stamps[-1]) + 1]
    assert np.all(np.diff(begins) >= rule.window_seconds), "event windows overlap"
    settled = 0
    assert (drift[stamps < begins[0]] == 0).all()
    for event, begin, following in zip(events, begins, begins[1:], strict=False):
        end = begin + rule.window_seconds
        window = drift[(stamps >= begin) & (stamps < end)] - settled
        assert np.all((window * event["direction"] >= 0)
                      & (window * event["direction"] <= event["shock_ticks"]))
        if event["reverted"]:
            assert event["reversion_ticks"] == round(rule.revert_fraction * event["shock_ticks"])
        else:
            assert event["reversion_ticks"] == 0
        assert event["shock_ticks"] == max(1, round(rule.k_sigma * event["sigma_ticks"]))
        settled += event["direction"] * (event["shock_ticks"] - event["reversion_ticks"])
        assert (drift[(stamps >= end) & (stamps < following)] == settled).all()
    assert drift[-1] == settled


# --- spec, progress, bad arguments -------------------------------------------------------------

@pytest.mark.parametrize("kind", SYNTHETIC_KINDS)
def test_spec_is_json_and_describes_the_market(kind):
    m = market(kind=kind)
    spec = json.loads(json.dumps(m.spec))
    assert spec == m.spec
    assert {"kind", "seed", "days", "resolution", "symbol", "start", "version",
            "first_trade_date", "last_trade_date", "bars", "model", "planted"} <= set(spec)
    assert (spec["kind"], spec["seed"], spec["days"], spec["resolution"], spec["symbol"]) == \
        (kind, 11, 5, "1s", "MNQ")
    assert spec["start"] == "2023-01-02" and spec["bars"] == len(m.bars)
    if kind == "planted":
        assert {"k_sigma", "p_revert", "revert_fraction", "horizon_minutes", "rate_per_day",
                "events"} <= set(spec["planted"])
        assert {"ts", "direction", "reverted"} <= set(spec["planted"]["events"][0])
    else:
        assert spec["planted"] is None


def test_progress_reports_days_until_done():
    calls = []
    generate_market(MNQ, days=6, seed=1, resolution="1m",
                    progress=lambda *args: calls.append(args))
    assert calls and all(c[0] == "synth" and c[2] == 6 for c in calls)
    done = [c[1] for c in calls]
    assert done == sorted(done) and done[-1] == 6


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"days": 0}, "days"), ({"days": -3}, "days"), ({"days": 2.5}, "days"),
    ({"seed": -1}, "seed"), ({"kind": "bullish"}, "realistic, null, planted"),
    ({"resolution": "1D"}, "intraday"), ({"resolution": "7m"}, "intraday"),
    ({"resolution": "fast"}, "1s"),
])
def test_bad_arguments_raise_config_error_saying_what_is_valid(kwargs, says):
    arguments = {"days": 2, "seed": 1} | kwargs
    with pytest.raises(ConfigError, match=says):
        generate_market(MNQ, **arguments)
