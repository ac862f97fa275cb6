"""Null twins (``stratforge.data.twins``): what they keep and what they remove, as properties.

Two instrument kinds from the project's synthetic generator, both with the documented planted
shock-and-reversion edge: a one-minute MNQ market (tick engine) and an hourly EURUSD market
(bar-path engine). Kept: timestamps, volume, every bar's range, volatility clustering (the
autocorrelation of |moves|) and the intraday volatility profile. Removed: autocorrelation of
signed moves and the planted edge (the move after a planted shock, which reverts on the
real series, is a coin flip on a twin).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratforge.data.bars import validate_bars
from stratforge.data.synthetic import generate_market
from stratforge.data.twins import make_twins
from stratforge.errors import ConfigError, DataError
from stratforge.instruments import get_instrument

KINDS = ("MNQ", "EURUSD")
SEEDS = st.integers(min_value=0, max_value=2**31)
PROPERTY = settings(max_examples=6, deadline=None)


@pytest.fixture(scope="module")
def markets() -> dict[str, tuple]:
    """Per kind: the instrument, the planted market's bars and its planted event stamps."""
    out = {}
    for symbol, days, resolution in (("MNQ", 40, "1m"), ("EURUSD", 520, None)):
        instrument = get_instrument(symbol)
        market = generate_market(instrument, days=days, seed=11, kind="planted",
                                 resolution=resolution)
        events = pd.to_datetime(pd.DataFrame(market.spec["planted"]["events"])["ts"], utc=True)
        out[symbol] = (instrument, market.bars,
                       events.astype("datetime64[ns, UTC]").array.asi8)
    return out


def twin_of(markets: dict, kind: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    instrument, bars, _ = markets[kind]
    return bars, make_twins(bars, 1, seed, tick_size=instrument.tick_size)[0]


def moves(bars: pd.DataFrame) -> np.ndarray:
    """Close-to-close moves in points."""
    return np.diff(bars["close"].to_numpy())


def acf(x: np.ndarray, lag: int) -> float:
    x = x - x.mean()
    return float((x[:-lag] * x[lag:]).sum() / (x * x).sum())


def hourly_profile(bars: pd.DataFrame) -> pd.Series:
    """Mean |close-to-close move| by UTC hour of the bar."""
    return pd.Series(np.abs(moves(bars))).groupby(bars["ts"].dt.hour.to_numpy()[1:]).mean()


def fade_after_events(bars: pd.DataFrame, event_ns: np.ndarray, horizon: int = 15):
    """The move over ``horizon`` bars after each planted event bar, signed by that bar's own
    body (negative: the shock reverts), in units of the mean shock size, and its t-stat."""
    stamps = bars["ts"].array.asi8
    at = np.searchsorted(stamps, event_ns)
    at = at[at + horizon < len(bars)]
    close, open_ = bars["close"].to_numpy(), bars["open"].to_numpy()
    shock = close[at] - open_[at]
    at, shock = at[shock != 0], shock[shock != 0]
    after = (close[at + horizon] - close[at]) * np.sign(shock)
    return (float(after.mean() / np.abs(shock).mean()),
            float(after.mean() / after.std() * np.sqrt(len(after))))


@PROPERTY
@given(kind=st.sampled_from(KINDS), seed=SEEDS)
def test_twins_keep_timestamps_volume_ranges_and_the_tick_grid(markets, kind, seed):
    bars, twin = twin_of(markets, kind, seed)
    tick = markets[kind][0].tick_size
    validate_bars(twin, "twin")  # a valid bar everywhere
    assert twin["ts"].equals(bars["ts"])
    assert twin["volume"].equals(bars["volume"])
    real_range = np.rint((bars["high"] - bars["low"]).to_numpy() / tick)
    assert np.array_equal(np.rint((twin["high"] - twin["low"]).to_numpy() / tick), real_range)
    body = np.rint((bars["close"] - bars["open"]).abs().to_numpy() / tick)
    assert np.array_equal(np.rint((twin["close"] - twin["open"]).abs().to_numpy() / tick), body)
    prices = twin[["open", "high", "low", "close"]].to_numpy() / tick
    assert np.abs(prices - np.rint(prices)).max() < 1e-6
    assert (prices > 0).all()
    assert twin["open"].iat[0] == bars["open"].iat[0]


@PROPERTY
@given(kind=st.sampled_from(KINDS), seed=SEEDS)
def test_twins_keep_volatility_clustering_and_the_intraday_profile(markets, kind, seed):
    bars, twin = twin_of(markets, kind, seed)
    real, fake = np.abs(moves(bars)), np.abs(moves(twin))
    assert acf(real, 1) > 0.1  # the markets cluster: the property is not vacuous
    for lag in (1, 2, 5, 10):
        assert abs(acf(fake, lag) - acf(real, lag)) < 0.03, lag
    ratio = hourly_profile(twin) / hourly_profile(bars)
    assert ratio.between(0.9, 1.1).all(), ratio.round(3).to_dict()
    profile = hourly_profile(bars)
    assert profile.max() > 1.5 * profile.min()  # there is a profile to keep


@PROPERTY
@given(kind=st.sampled_from(KINDS), seed=SEEDS)
def test_twins_remove_autocorrelation_of_signed_moves(markets, kind, seed):
    bars, twin = twin_of(markets, kind, seed)
    fake = moves(twin)
    bound = 4.5 / np.sqrt(len(fake))
    for lag in (1, 2, 3, 5, 10):
        assert abs(acf(fake, lag)) < bound, (lag, acf(fake, lag))
    if kind == "EURUSD":  # hourly bars: the planted reversion shows in the real lag-1 acf
        assert acf(moves(bars), 1) < -bound


@PROPERTY
@given(kind=st.sampled_from(KINDS), seed=SEEDS)
def test_twins_remove_the_planted_edge(markets, kind, seed):
    bars, twin = twin_of(markets, kind, seed)
    events = markets[kind][2]
    real_mean, real_t = fade_after_events(bars, events)
    assert real_mean < -0.25 and real_t < -4  # the real series reverts after a shock
    twin_mean, twin_t = fade_after_events(twin, events)
    assert abs(twin_mean) < 0.15 and abs(twin_t) < 3.5, (twin_mean, twin_t)


def test_same_seed_same_twins_and_twins_do_not_depend_on_n(markets):
    instrument, bars, _ = markets["EURUSD"]
    three = make_twins(bars, 3, 5, tick_size=instrument.tick_size)
    again = make_twins(bars, 2, 5, tick_size=instrument.tick_size)
    for a, b in zip(again, three[:2], strict=True):
        pd.testing.assert_frame_equal(a, b)
    assert not three[0]["close"].equals(three[1]["close"])
    other = make_twins(bars, 1, 6, tick_size=instrument.tick_size)[0]
    assert not other["close"].equals(three[0]["close"])
    for method in ("sign", "blocks"):
        first = make_twins(bars, 2, 9, method=method, session=instrument.session)
        second = make_twins(bars, 2, 9, method=method, session=instrument.session)
        for a, b in zip(first, second, strict=True):
            pd.testing.assert_frame_equal(a, b)


def trending(n: int = 400, start: float = 10.0, step: float = 2.5) -> pd.DataFrame:
    """A series that climbs ``step`` every bar from ``start``: its twins wander below zero
    in points (the walk's spread, about step * sqrt(n) = 50, exceeds the start)."""
    ts = pd.date_range("2024-01-02 14:30", periods=n, freq="1min", tz="UTC").as_unit("ns")
    close = start + step * np.arange(1, n + 1)
    open_ = close - step
    return pd.DataFrame({"ts": ts, "open": open_, "high": close + 0.5,
                         "low": np.maximum(open_ - 0.25, 0.25), "close": close,
                         "volume": np.full(n, 3.0)})


def test_a_twin_that_would_go_below_zero_is_chained_in_log_prices_on_the_grid():
    bars = trending()
    twins = make_twins(bars, 20, 1, tick_size=0.25)
    spaces = [t.attrs["twin_space"] for t in twins]
    assert "log" in spaces and "points" in spaces
    for twin in twins:
        validate_bars(twin, "twin")
        prices = twin[["open", "high", "low", "close"]].to_numpy()
        assert (prices > 0).all()
        assert np.array_equal(prices / 0.25, np.rint(prices / 0.25))
        assert twin["ts"].equals(bars["ts"])
    log_twin = twins[spaces.index("log")]
    # In log prices every move keeps its relative size: the log body is the real one, mirrored
    # (up to the rounding to ticks).
    real = np.log(bars["close"] / bars["open"]).to_numpy()
    fake = np.log(log_twin["close"] / log_twin["open"]).to_numpy()
    large = log_twin["close"].to_numpy() > 100  # where a tick's rounding is small
    assert np.allclose(np.abs(fake[large]), np.abs(real[large]), atol=0.01)


def test_points_off_the_grid_are_chained_as_they_are():
    bars = trending(50, start=1000.0, step=0.1)  # 0.1 steps are off a 0.25 grid
    twin = make_twins(bars, 1, 3, tick_size=0.25)[0]
    validate_bars(twin, "twin")
    assert np.allclose(np.abs(twin["close"] - twin["open"]), 0.1)


def test_day_blocks_keep_each_day_whole_and_remove_the_trend():
    days = pd.date_range("2024-01-02", periods=120, freq="D")
    ts = (days.values[:, None] + pd.to_timedelta(np.arange(6), "h").values[None, :]).ravel()
    n = len(ts)
    rng = np.random.default_rng(0)
    step = np.rint(rng.uniform(1, 9, n)) * 0.25  # every bar climbs: a strong trend
    close = 500 + np.cumsum(step)
    stamps = pd.DatetimeIndex(ts).tz_localize("UTC").as_unit("ns")
    bars = pd.DataFrame({"ts": stamps, "open": close - step,
                         "high": close + 0.25, "low": close - step - 0.5, "close": close,
                         "volume": np.arange(n, dtype=float)})
    for twin in make_twins(bars, 5, 2, method="blocks", tick_size=0.25):
        validate_bars(twin, "twin")
        assert twin["ts"].equals(bars["ts"])
        day_move = twin["close"].to_numpy().reshape(120, 6)
        body = (twin["close"] - twin["open"]).to_numpy().reshape(120, 6)
        assert ((body > 0).all(axis=1) | (body < 0).all(axis=1)).all()  # whole days mirrored
        up = (np.diff(day_move[:, -1], prepend=500) > 0).mean()
        assert 0.3 < up < 0.7  # the real series goes up every day
        source_day = (twin["volume"].to_numpy().reshape(120, 6) // 6).astype(int)
        assert (source_day == source_day[:, :1]).all()  # each day's bars come from one day
        assert len(np.unique(source_day[:, 0])) < 120  # drawn with replacement


def test_daily_bars_are_bootstrapped_in_blocks_of_days():
    ts = pd.date_range("2020-01-01", periods=200, freq="D", tz="UTC").as_unit("ns")
    close = 100 + np.arange(200) * 0.5
    bars = pd.DataFrame({"ts": ts, "open": close - 0.5, "high": close, "low": close - 0.5,
                         "close": close, "volume": np.arange(200, dtype=float)})
    twin = make_twins(bars, 1, 4, method="blocks", tick_size=0.01)[0]
    source = twin["volume"].to_numpy()
    runs = np.diff(source)[:180]
    assert (runs[np.arange(180) % 20 != 19] == 1).all()  # 20 consecutive days per block


def test_bad_arguments_and_bad_bars_are_refused():
    bars = trending(10, start=100.0)
    with pytest.raises(ConfigError, match="unknown twin method 'shuffle'"):
        make_twins(bars, 1, 0, method="shuffle")
    with pytest.raises(ConfigError, match="n >= 0"):
        make_twins(bars, -1, 0)
    broken = bars.copy()
    broken.loc[3, "high"] = broken.loc[3, "low"] - 1
    with pytest.raises(DataError, match="bars to twin row 4"):
        make_twins(broken, 1, 0)
    assert make_twins(bars, 0, 0) == []
