"""The exit simulator against its contract: hand-worked cases and property tests that compare
the numba kernels with the plain-Python reference (tests/reference_simulator.py) trade for
trade on random bars, signals, parameters, fill modes, price paths and sessions."""

from __future__ import annotations

import math
from datetime import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference_simulator import reference_simulate, session_flags
from stratforge.errors import ConfigError, DataError
from stratforge.instruments import BUILTIN_INSTRUMENTS, Instrument
from stratforge.sessions import Session
from stratforge.sim import TRADE_COLUMNS, Costs, ExitParams, simulate
from stratforge.sim.session_flags import session_last_flags

MNQ = BUILTIN_INSTRUMENTS["MNQ"]
# A day session in New York with a tick that is not a power of two (prices are inexact floats)
DAY_DIME = Instrument("DIME", 0.1, 3.0, "USD",
                      Session("America/New_York", time(9, 30), time(16, 0), time(15, 55)))
ALWAYS_OPEN = Instrument("TEST", 0.25, 2.0, "USD",  # flat time never reached in hand cases
                         Session("UTC", time(0, 0), time(23, 59, 59), time(23, 59, 59)))

PROPERTY = settings(max_examples=500, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---------------------------------------------------------------------------------------------
# helpers

def make_bars(rows, start="2024-03-05 14:00", step="1min"):
    """Bars from (open, high, low, close) rows on a regular grid (UTC)."""
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"], dtype=np.float64)
    frame.insert(0, "ts", pd.date_range(start, periods=len(rows), freq=step, tz="UTC"))
    frame["volume"] = 1.0
    return frame


def one(bars, entries, sides, instrument=ALWAYS_OPEN, **kwargs):
    params = kwargs.pop("params", ExitParams())
    return simulate(bars, np.asarray(entries, dtype=np.int64), np.asarray(sides), params,
                    instrument=instrument, **kwargs)


def assert_same_trades(frame: pd.DataFrame, expected: list[dict]) -> None:
    assert list(frame.columns) == list(TRADE_COLUMNS)
    assert len(frame) == len(expected), (frame, expected)
    for column in TRADE_COLUMNS:
        got = frame[column]
        if column.endswith("_time"):
            got = got.array.asi8
        want = [trade[column] for trade in expected]
        if got.dtype == np.float64:
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-9, err_msg=column)
        else:
            assert list(got) == want, (column, frame, expected)


# ---------------------------------------------------------------------------------------------
# random inputs

# Local start times around the daily flat time (15:55 for both sessions used), across the
# maintenance break, weekends and daylight-saving changes.
START_TIMES = ["2024-03-05 15:20", "2024-03-08 15:45", "2024-03-10 16:30", "2024-11-01 15:40",
               "2024-11-03 09:00", "2024-06-12 03:00", "2024-06-13 15:50", "2024-06-13 16:55",
               "2024-06-14 15:10", "2024-06-17 10:00", "2024-06-18 14:50"]
DAY_START_TIMES = ["2024-03-05 09:20", "2024-03-08 15:30", "2024-11-01 13:40",
                   "2024-11-04 00:10", "2024-06-13 15:45", "2024-06-14 04:00",
                   "2024-03-11 10:00", "2024-06-17 23:50"]
STEP_SECONDS = [60] * 20 + [120, 300, 900, 3600, 4200, 86_400]


@st.composite
def markets(draw, zone: str, tick: float, max_bars: int = 40,
            starts: tuple[str, ...] = tuple(START_TIMES)) -> pd.DataFrame:
    """Random bars: tick-grid prices with gaps (open far from the previous close), irregular
    time steps that cross the flat time and trade dates. The bulk comes from a numpy
    generator seeded by hypothesis (fast; failures still reproduce from the printed seed)."""
    n = draw(st.integers(2, max_bars))
    start = pd.Timestamp(draw(st.sampled_from(starts)), tz=zone).tz_convert("UTC")
    start += pd.Timedelta(minutes=draw(st.integers(0, 20)))
    gap_chance = draw(st.sampled_from([0.0, 0.2, 0.5]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    steps = rng.choice(STEP_SECONDS, size=n - 1)
    ts = start.value + np.concatenate(([0], np.cumsum(steps))).astype(np.int64) * 10**9
    moves = rng.integers(-6, 7, n)
    gaps = np.where(rng.random(n) < gap_chance, rng.integers(-30, 31, n), 0)
    ups = rng.integers(0, 6, n)
    downs = rng.integers(0, 6, n)
    open_ = 4000 + np.concatenate(([0], np.cumsum(moves + gaps)[:-1])) + gaps
    close = open_ + moves
    frame = pd.DataFrame({
        "ts": pd.DatetimeIndex(ts.view("datetime64[ns]"), tz="UTC"),
        "open": open_ * tick, "high": (np.maximum(open_, close) + ups) * tick,
        "low": (np.minimum(open_, close) - downs) * tick, "close": close * tick,
        "volume": np.ones(n)})
    return frame


TICKS = st.one_of(st.just(0.0), st.just(math.nan), st.integers(1, 24).map(float),
                  st.sampled_from([0.5, 1.5, 2.5, 7.5]))


@st.composite
def exit_params(draw) -> dict:
    """Random exit parameters, zeros and NaNs (rule off) included; wide trail >= tight."""
    tight = draw(TICKS)
    base = 0.0 if math.isnan(tight) else tight
    wide = draw(st.one_of(st.just(0.0), st.just(math.nan),
                          st.integers(0, 12).map(lambda k: base + k)))
    return {
        "stop_ticks": draw(TICKS),
        "target_ticks": draw(TICKS),
        "trail_tight_ticks": tight,
        "trail_wide_ticks": wide,
        "trail_widen_points": draw(st.one_of(st.just(0.0), st.just(math.nan),
                                             st.integers(1, 16).map(lambda k: k * 0.25),
                                             st.sampled_from([0.3, 1.7]))),
        "trail_activation_ticks": draw(st.one_of(st.just(0.0), st.integers(1, 10).map(float))),
        "max_hold_bars": draw(st.one_of(st.just(0.0), st.just(math.nan),
                                        st.integers(1, 12).map(float))),
    }


COSTS = st.builds(
    dict, spread_ticks=st.sampled_from([0.0, 1.0, 4.4]),
    slippage_ticks=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
    fee_bps=st.sampled_from([0.0, 0.0, 2.5]),
    velocity_slippage=st.sampled_from([0.0, 0.0, 0.1, 0.5]),
    velocity_cap_ticks=st.sampled_from([0.0, 3.0]),
    commission=st.sampled_from([0.0, 0.62]), quantity=st.sampled_from([1.0, 2.0, 3.5]))
FILLS = st.one_of(st.tuples(st.sampled_from(["close", "next_open"]), st.just(1)),
                  st.tuples(st.just("delayed_mid"), st.integers(1, 5)))


@st.composite
def signals(draw, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random signal bars (sparse or dense) and sides."""
    density = draw(st.sampled_from([0.1, 0.3, 0.7, 1.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    entries = np.flatnonzero(rng.random(n) < density).astype(np.int64)
    sides = rng.choice(np.array([1, -1]), size=len(entries))
    return entries, sides


@st.composite
def cases(draw, instrument: Instrument) -> dict:
    """One random simulator case for ``instrument``."""
    starts = START_TIMES if instrument.session.overnight else DAY_START_TIMES
    bars = draw(markets(instrument.session.timezone, instrument.tick_size, starts=tuple(starts)))
    entries, sides = draw(signals(len(bars)))
    fill, delay = draw(FILLS)
    return {"bars": bars, "entries": entries, "sides": sides, "params": draw(exit_params()),
            "costs": draw(COSTS), "fill": fill, "delay_bars": delay,
            "price_path": draw(st.sampled_from(["ohlc", "close"]))}


def check_against_reference(case: dict, instrument: Instrument) -> pd.DataFrame:
    frame = simulate(case["bars"], case["entries"], case["sides"], case["params"],
                     instrument=instrument, costs=Costs(**case["costs"]), fill=case["fill"],
                     delay_bars=case["delay_bars"], price_path=case["price_path"])
    expected = reference_simulate(
        case["bars"], case["entries"], case["sides"], case["params"],
        tick=instrument.tick_size, point_value=instrument.point_value,
        session=instrument.session, costs=case["costs"], fill=case["fill"],
        delay_bars=case["delay_bars"], price_path=case["price_path"])
    assert_same_trades(frame, expected)
    return frame


# ---------------------------------------------------------------------------------------------
# property tests

@PROPERTY
@given(cases(MNQ))
def test_simulate_matches_reference_mnq(case):
    check_against_reference(case, MNQ)


@PROPERTY
@given(cases(DAY_DIME))
def test_simulate_matches_reference_day_session_inexact_tick(case):
    check_against_reference(case, DAY_DIME)


@PROPERTY
@given(cases(MNQ))
def test_shorts_mirror_longs(case):
    """Reflecting prices (p -> K - p) and flipping every side gives mirrored trades."""
    bars = case["bars"]
    mirrored = bars.copy()
    top = 2 * 4000 * MNQ.tick_size
    mirrored["open"] = top - bars["open"]
    mirrored["close"] = top - bars["close"]
    mirrored["high"] = top - bars["low"]
    mirrored["low"] = top - bars["high"]
    # a notional fee depends on the price level, which the reflection changes
    costs = Costs(**{**case["costs"], "fee_bps": 0.0})
    args = {"instrument": MNQ, "costs": costs, "fill": case["fill"],
            "delay_bars": case["delay_bars"], "price_path": case["price_path"]}
    straight = simulate(bars, case["entries"], case["sides"], case["params"], **args)
    flipped = simulate(mirrored, case["entries"], -case["sides"], case["params"], **args)
    same = ["entry_bar", "exit_bar", "reason", "bars_held"]
    pd.testing.assert_frame_equal(straight[same], flipped[same])
    assert (straight["side"] == -flipped["side"]).all()
    for column in ["mfe_points", "mae_points", "pnl_points", "pnl"]:
        np.testing.assert_allclose(straight[column], flipped[column], rtol=0, atol=1e-9)
    np.testing.assert_allclose(straight["entry_price"], top - flipped["entry_price"], atol=1e-9)


@settings(max_examples=300, deadline=None)
@given(markets("America/Chicago", 0.25, max_bars=80))
def test_session_flags_match_reference(bars):
    stamps = bars["ts"].dt.as_unit("ns").array.asi8
    flags = session_last_flags(stamps, MNQ.session)
    assert flags.tolist() == session_flags([int(x) for x in stamps], MNQ.session)


# ---------------------------------------------------------------------------------------------
# hand-worked cases (ALWAYS_OPEN: no session flat inside the data)

FLAT = [(100, 100, 100, 100)]


def test_gap_through_stop_exits_at_the_open_with_slippage():
    bars = make_bars([*FLAT, (95, 96, 94, 95.5), (95, 95, 95, 95)])
    trades = one(bars, [0], [1], params=ExitParams(stop_ticks=8),
                 costs=Costs(slippage_ticks=1))
    row = trades.iloc[0]
    assert row["entry_price"] == 100.25  # entry moves against the long
    assert row["exit_price"] == 94.75 and row["reason"] == "stop" and row["exit_bar"] == 1
    assert row["pnl_points"] == pytest.approx(-5.5)


def test_stop_touched_exits_at_the_stop():
    bars = make_bars([*FLAT, (100, 100.5, 97.5, 99), (99, 99, 99, 99)])
    row = one(bars, [0], [1], params=ExitParams(stop_ticks=8)).iloc[0]
    assert (row["exit_price"], row["reason"], row["mae_points"]) == (98.0, "stop", 2.5)


def test_stop_and_target_in_one_bar_stop_wins():
    bars = make_bars([*FLAT, (100, 104, 97, 101), (101, 101, 101, 101)])
    row = one(bars, [0], [1], params=ExitParams(stop_ticks=8, target_ticks=8)).iloc[0]
    assert (row["exit_price"], row["reason"]) == (98.0, "stop")


def test_target_fills_at_the_limit_or_the_gap_open_without_slippage():
    bars = make_bars([*FLAT, (100, 103, 99.5, 101), (104, 105, 104, 104), (104, 104, 104, 104)])
    costs = Costs(slippage_ticks=2)
    touched = one(bars, [0], [1], params=ExitParams(target_ticks=8), costs=costs).iloc[0]
    assert (touched["exit_price"], touched["reason"]) == (102.5, "target")  # 100.5 + 2 points
    gapped = one(bars, [0], [1], params=ExitParams(target_ticks=12), costs=costs).iloc[0]
    assert (gapped["exit_bar"], gapped["exit_price"], gapped["reason"]) == (2, 104.0, "target")


def test_trailing_activation_and_widening():
    # long from 100; trail tight 4 ticks (1 pt), wide 8 ticks (2 pts) once MFE >= 3 pts,
    # trailing starts at MFE >= 8 ticks (2 pts).
    params = ExitParams(trail_tight_ticks=4, trail_wide_ticks=8, trail_widen_points=3,
                        trail_activation_ticks=8)
    rows = [
        *FLAT,
        (100, 101.5, 100, 101),   # bar 1: MFE 1.5 < activation: no trail yet
        (101, 101, 100.25, 100.5),  # bar 2: still inactive (low 100.25 would hit a 1-pt trail)
        (100.5, 102.5, 100.5, 102),  # bar 3: MFE becomes 2.5 -> active, tight
        (102, 102, 101.5, 101.75),  # bar 4: stop 102.5 - 1 = 101.5 touched -> trail exit
    ]
    row = one(make_bars(rows), [0], [1], params=params).iloc[0]
    assert (row["exit_bar"], row["exit_price"], row["reason"]) == (4, 101.5, "trail")
    rows_wide = [
        *FLAT,
        (100, 103.5, 100, 103),   # MFE 3.5 >= 3 -> wide trail 2 pts: level 101.5
        (103, 103, 102, 102.5),   # low 102 > 101.5: held (a tight trail would exit at 102.5)
        (102.5, 102.5, 101.25, 101.5),  # touches 101.5 -> trail exit
    ]
    row = one(make_bars(rows_wide), [0], [1], params=params).iloc[0]
    assert (row["exit_bar"], row["exit_price"], row["reason"]) == (3, 101.5, "trail")
    assert row["mfe_points"] == 3.5 and row["mae_points"] == 0.0


def test_trail_below_the_fixed_stop_leaves_reason_stop():
    params = ExitParams(stop_ticks=4, trail_tight_ticks=12)  # stop 99, trail 3 pts
    rows = [*FLAT, (100, 101, 100, 100.5), (100.5, 100.5, 98.5, 99)]  # level 98 < 99
    row = one(make_bars(rows), [0], [1], params=params).iloc[0]
    assert (row["exit_price"], row["reason"]) == (99.0, "stop")


def test_timeout_exits_at_the_close_after_max_hold_bars():
    rows = FLAT + [(100, 101, 99, 100.5)] * 5
    row = one(make_bars(rows), [0], [1], params=ExitParams(max_hold_bars=3),
              costs=Costs(slippage_ticks=1)).iloc[0]
    assert (row["exit_bar"], row["bars_held"], row["reason"]) == (3, 3, "timeout")
    assert row["exit_price"] == 100.25


def test_end_of_data_and_no_reentry_before_the_exit_bar():
    rows = FLAT + [(100, 101, 99, 100.5)] * 5
    trades = one(make_bars(rows), [0, 2, 4], [1, -1, -1], params=ExitParams(max_hold_bars=2))
    # first trade exits at bar 2 (timeout); the signal at bar 2 is not strictly after it
    assert trades["entry_bar"].tolist() == [0, 4]
    assert trades["reason"].tolist() == ["timeout", "end"]
    assert trades["exit_bar"].tolist() == [2, 5]


def test_shorts_mirrored_by_hand():
    bars = make_bars([*FLAT, (100, 102.5, 99, 101), (101, 101, 101, 101)])
    row = one(bars, [0], [-1], params=ExitParams(stop_ticks=8, target_ticks=4),
              costs=Costs(slippage_ticks=1, commission=0.5, quantity=2)).iloc[0]
    assert row["side"] == -1 and row["entry_price"] == 99.75
    assert (row["exit_price"], row["reason"]) == (102.0, "stop")  # stop 101.75 + 1 tick
    assert row["pnl_points"] == -2.25
    assert row["fees"] == 2.0 and row["pnl"] == -2.25 * 2.0 * 2 - 2.0
    assert (row["mfe_points"], row["mae_points"]) == (0.75, 2.75)


def test_fill_modes():
    rows = [(100, 100, 100, 100), (101, 103, 100, 102), (102, 102, 102, 102),
            (103, 104, 103, 104), (104, 106, 104, 105), (110, 110, 110, 110),
            (110, 110, 110, 110)]
    bars = make_bars(rows)
    assert one(bars, [0], [1]).iloc[0]["entry_price"] == 100
    nxt = one(bars, [0], [1], fill="next_open").iloc[0]
    assert (nxt["entry_bar"], nxt["entry_price"]) == (1, 101)
    mid = one(bars, [0], [1], fill="delayed_mid", delay_bars=4).iloc[0]
    assert (mid["entry_bar"], mid["entry_price"], mid["bars_held"]) == (4, 104.5, 2)
    # a fill on the last bar (or beyond) leaves nothing to exit on: dropped
    assert one(bars, [2], [1], fill="delayed_mid", delay_bars=4).empty
    assert one(bars, [6], [1]).empty


def test_price_path_close_checks_closes_only():
    bars = make_bars([*FLAT, (100, 100.5, 97, 99.5), (99.5, 99.5, 97.5, 97.75), (97, 97, 97, 97)])
    ohlc = one(bars, [0], [1], params=ExitParams(stop_ticks=8)).iloc[0]
    closes = one(bars, [0], [1], params=ExitParams(stop_ticks=8), price_path="close").iloc[0]
    assert (ohlc["exit_bar"], ohlc["exit_price"]) == (1, 98.0)
    assert (closes["exit_bar"], closes["exit_price"]) == (2, 97.75)  # close through the stop
    assert closes["mae_points"] == 2.25


def test_session_flat_and_signals_after_the_flat_time():
    # MNQ flat 15:55 Chicago = 21:55 UTC on 2024-03-05 (CST).
    ts = pd.to_datetime(["2024-03-05 21:50", "2024-03-05 21:52", "2024-03-05 21:54",
                         "2024-03-05 21:56", "2024-03-05 23:00", "2024-03-05 23:01",
                         "2024-03-05 23:02"], utc=True)
    bars = make_bars([(100 + k, 101 + k, 99 + k, 100.5 + k) for k in range(7)])
    bars["ts"] = ts
    flags = session_last_flags(bars["ts"].dt.as_unit("ns").array.asi8, MNQ.session)
    assert flags.tolist() == [False, False, True, True, False, False, False]
    trades = one(bars, [0, 3, 4], [1, 1, 1], instrument=MNQ)
    assert trades["entry_bar"].tolist() == [0, 4]  # bar 3 (15:56) is after the flat time
    assert trades["reason"].tolist() == ["session", "end"]
    assert trades["exit_bar"].tolist() == [2, 6]  # flattened at 15:54's close
    # a signal on the bar that is flattened opens nothing; a next-open fill may not cross it
    assert one(bars, [2], [1], instrument=MNQ).empty
    assert one(bars, [1], [1], instrument=MNQ, fill="next_open").empty
    assert one(bars, [1], [1], instrument=MNQ, fill="delayed_mid", delay_bars=2).empty


def test_sparse_data_flattens_at_the_last_price_before_the_flat_time():
    ts = pd.to_datetime(["2024-03-05 21:00", "2024-03-05 21:30", "2024-03-06 00:00",
                         "2024-03-06 00:01"], utc=True)  # last bar before flat at 15:30
    bars = make_bars([(100, 101, 99, 100)] * 4)
    bars["ts"] = ts
    trades = one(bars, [0], [1], instrument=MNQ)
    assert (trades.iloc[0]["exit_bar"], trades.iloc[0]["reason"]) == (1, "session")


def test_costs_and_money():
    bars = make_bars([*FLAT, (100, 102, 100, 101.5), (101.5, 101.5, 101.5, 101.5)])
    row = one(bars, [0], [1], params=ExitParams(max_hold_bars=1),
              costs=Costs(spread_ticks=2, commission=1.25, quantity=3)).iloc[0]
    assert row["pnl_points"] == 1.5 - 2 * ALWAYS_OPEN.tick_size
    assert row["fees"] == 7.5 and row["quantity"] == 3.0
    assert row["pnl"] == row["pnl_points"] * ALWAYS_OPEN.point_value * 3 - 7.5
    assert (row["mfe_points"], row["mae_points"]) == (2.0, 0.0)


def test_empty_result_has_the_trade_columns_and_dtypes():
    trades = one(make_bars(FLAT * 3), [], [])
    assert list(trades.columns) == list(TRADE_COLUMNS) and trades.empty
    assert str(trades["entry_time"].dtype) == "datetime64[ns, UTC]"
    assert trades["side"].dtype == np.int8 and trades["entry_bar"].dtype == np.int64


# ---------------------------------------------------------------------------------------------
# bad input

@pytest.mark.parametrize(("params", "words"), [
    ({"stop_ticks": -1}, "stop_ticks must be >= 0"),
    ({"max_hold_bars": 2.5}, "whole number"),
    ({"target_ticks": math.inf}, "finite"),
    ({"trail_tight_ticks": 8, "trail_wide_ticks": 4}, "trail_wide_ticks (4.0) is below"),
    ({"stop_tick": 4}, "unknown exit parameter"),
])
def test_bad_parameters_are_config_errors(params, words):
    with pytest.raises(ConfigError, match=None) as info:
        one(make_bars(FLAT * 3), [0], [1], params=params)
    assert words in str(info.value)


@pytest.mark.parametrize(("entries", "sides", "words"), [
    ([1, 0], [1, 1], "strictly increasing"),
    ([0, 0], [1, 1], "strictly increasing"),
    ([0, 5], [1, 1], "outside the bars"),
    ([0], [2], "sides[0]"),
    ([0, 1], [1], "one value per entry"),
    ([True, False, True], [1, 1, 1], "boolean mask"),
    ([0.0], [1], "integer"),
])
def test_bad_signals_are_config_errors(entries, sides, words):
    with pytest.raises(ConfigError) as info:
        simulate(make_bars(FLAT * 3), np.asarray(entries), np.asarray(sides),
                 instrument=ALWAYS_OPEN)
    assert words in str(info.value)


def test_bad_options_and_bars():
    bars = make_bars(FLAT * 3)
    with pytest.raises(ConfigError, match="fill must be"):
        one(bars, [0], [1], fill="vwap")
    with pytest.raises(ConfigError, match="delay_bars"):
        one(bars, [0], [1], fill="delayed_mid", delay_bars=0)
    with pytest.raises(ConfigError, match="price_path"):
        one(bars, [0], [1], price_path="hl")
    with pytest.raises(ConfigError, match="quantity"):
        one(bars, [0], [1], costs=Costs(quantity=0))
    broken = bars.copy()
    broken.loc[1, "high"] = 50.0
    with pytest.raises(DataError, match="high"):
        one(broken, [0], [1])


def test_scalar_side_and_symbol_instrument():
    bars = make_bars(FLAT * 4)
    trades = simulate(bars, np.array([0, 2]), -1, instrument="MNQ")
    assert trades["side"].tolist() == [-1]
