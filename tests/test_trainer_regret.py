"""End-of-day regret analysis against a day worked out by hand and a plain-Python reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratforge.timeframes import ATLAS_TIMEFRAMES
from stratforge.trainer.regret import (
    REGRET_COLUMNS,
    DayRegret,
    RegretBias,
    day_regret,
    higher_timeframes,
    next_bias,
    trade_regret,
)

DAY = "2024-03-04 "
NAN = float("nan")


def utc(clock: str) -> pd.Timestamp:
    return pd.Timestamp(DAY + clock, tz="UTC")


def make_bars(rows: list[tuple]) -> pd.DataFrame:
    """Canonical bars from (HH:MM, open, high, low, close) rows."""
    frame = pd.DataFrame(rows, columns=["ts", "open", "high", "low", "close"])
    frame["ts"] = pd.to_datetime(DAY + frame["ts"]).dt.tz_localize("UTC").dt.as_unit("ns")
    frame["volume"] = 1.0
    return frame


def make_trades(rows: list[tuple]) -> pd.DataFrame:
    """1m trades from (entry HH:MM, exit HH:MM, side, entry_price, exit_price) rows."""
    frame = pd.DataFrame(rows, columns=["entry_time", "exit_time", "side", "entry_price",
                                        "exit_price"])
    for column in ("entry_time", "exit_time"):
        frame[column] = pd.to_datetime(DAY + frame[column]).dt.tz_localize("UTC").dt.as_unit("ns")
    frame["side"] = frame["side"].astype(np.int8)
    frame["reason"] = "target"
    return frame


#          ts      open   high   low   close
BARS_5M = make_bars([
    ("14:00", 100.0, 101.0, 99.0, 100.5),
    ("14:05", 100.5, 103.0, 100.0, 102.5),
    ("14:10", 102.5, 108.0, 102.0, 107.0),
    ("14:15", 107.0, 107.5, 104.0, 105.0),
    ("14:20", 105.0, 106.0, 103.0, 104.0),
    ("14:25", 104.0, 105.0, 97.0, 98.0),
    ("14:30", 98.0, 99.0, 95.0, 96.0),
    ("14:35", 96.0, 98.0, 94.0, 97.0),
    ("14:40", 97.0, 99.0, 96.0, 98.0),
])
BARS_15M = make_bars([
    ("14:00", 100.0, 108.0, 99.0, 107.0),
    ("14:15", 107.0, 107.5, 97.0, 98.0),
    ("14:30", 98.0, 99.0, 94.0, 98.0),
    ("14:45", 98.0, 100.0, 97.0, 99.0),
])
TRADES = make_trades([
    ("14:02", "14:06", +1, 100.0, 102.0),   # 0 long, leaves before the 14:10 push to 108
    ("14:11", "14:27", +1, 104.0, 100.0),   # 1 long, rides the 108 top down to 100
    ("14:26", "14:36", -1, 104.0, 95.0),    # 2 short, 9 of the 10 points down to 94
    ("14:07", "14:08", -1, 99.0, 100.0),    # 3 short, price never traded below 99 on 5m
    ("16:00", "16:05", +1, 100.0, 101.0),   # 4 long, no higher bars that late
])

# Windows (after_bars = 3): 5m bars from the bar holding the entry to exit + 15 min,
# 15m bars from the bar holding the entry to exit + 45 min.
# trade tf   window bars          peak (bar)     potential actual left given_back eff  class
# 0     5m   14:00..14:20         108 (14:10)    8         2      6    103->1     .25  early
# 0     15m  14:00..14:45         108 (14:00)    8         2      6    108->6     .25  late
# 1     5m   14:10..14:40         108 (14:10)    4         -4     8    108->8     -1   late
# 1     15m  14:00..14:45         108 (14:00)    4         -4     8    108->8     -1   late
# 2     5m   14:25..14:40 (short) 94 (14:35)     10        9      1    94->1      .9   optimal
# 2     15m  14:15..14:45         94 (14:30)     10        9      1    94->1      .9   optimal
# 3     5m   14:05..14:20         100 (14:05)    0         -1     1    100->0     NaN  no_move
# 3     15m  14:00..14:45         94 (14:30)     5         -1     6    99->1      -.2  early
# continued (after-exit extreme beyond the exit): 0/5m 108 > 102, 0/15m 107.5 > 102,
# 1: 99 < 100 no; 2/5m low 96 > 95 no, 2/15m 97 no; 3/5m 102 no, 3/15m 94 < 100 yes.
EXPECTED = [
    (0, "5m", 108.0, "14:10", 8.0, 2.0, 6.0, 1.0, 0.25, "early", True),
    (0, "15m", 108.0, "14:00", 8.0, 2.0, 6.0, 6.0, 0.25, "late", True),
    (1, "5m", 108.0, "14:10", 4.0, -4.0, 8.0, 8.0, -1.0, "late", False),
    (1, "15m", 108.0, "14:00", 4.0, -4.0, 8.0, 8.0, -1.0, "late", False),
    (2, "5m", 94.0, "14:35", 10.0, 9.0, 1.0, 1.0, 0.9, "optimal", False),
    (2, "15m", 94.0, "14:30", 10.0, 9.0, 1.0, 1.0, 0.9, "optimal", False),
    (3, "5m", 100.0, "14:05", 0.0, -1.0, 1.0, 0.0, NAN, "no_move", False),
    (3, "15m", 94.0, "14:30", 5.0, -1.0, 6.0, 1.0, -0.2, "early", True),
    (4, "5m", NAN, None, NAN, NAN, NAN, NAN, NAN, "no_data", False),
    (4, "15m", NAN, None, NAN, NAN, NAN, NAN, NAN, "no_data", False),
]
FIELDS = ("trade", "higher_tf", "peak_price", "peak_time", "potential_points", "actual_points",
          "left_on_table_points", "given_back_points", "efficiency", "classification",
          "continued")


def test_hand_worked_day() -> None:
    regret = trade_regret(TRADES, {"5m": BARS_5M, "15m": BARS_15M})
    assert list(regret.columns) == list(REGRET_COLUMNS)
    assert len(regret) == len(EXPECTED)
    for row, expected in zip(regret.itertuples(index=False), EXPECTED, strict=True):
        got = row._asdict()
        for name, want in zip(FIELDS, expected, strict=True):
            value = got[name]
            if name == "peak_time":
                assert (pd.isna(value) if want is None else value == utc(want)), (expected, name)
            elif isinstance(want, float):
                assert value == pytest.approx(want, nan_ok=True), (expected, name)
            else:
                assert value == want, (expected, name)
    assert (regret["entry_time"] == TRADES["entry_time"].repeat(2).to_numpy()).all()
    assert (regret["side"].to_numpy() == TRADES["side"].repeat(2).to_numpy()).all()
    assert (regret["reason"] == "target").all()
    assert str(regret["peak_time"].dtype) == "datetime64[ns, UTC]"


def test_after_bars_and_efficiency_threshold() -> None:
    long_early = TRADES.iloc[[0]]
    # after_bars = 0: the 5m window ends at the exit, 14:00 and 14:05 -> peak 103, late
    row = trade_regret(long_early, {"5m": BARS_5M}, after_bars=0).iloc[0]
    assert (row["peak_price"], row["classification"], row["continued"]) == (103.0, "late", False)
    assert row["efficiency"] == pytest.approx(2 / 3)
    row = trade_regret(long_early, {"5m": BARS_5M}, after_bars=0, optimal_efficiency=0.6).iloc[0]
    assert row["classification"] == "optimal"


def test_entry_in_a_gap_starts_at_the_next_bar() -> None:
    gapped = BARS_5M.drop(index=[1]).reset_index(drop=True)   # no 14:05 bar
    trade = make_trades([("14:06", "14:12", +1, 102.0, 104.0)])
    row = trade_regret(trade, {"5m": gapped}, after_bars=0).iloc[0]
    # 14:00 does not hold 14:06 (it ends at 14:05): window is the 14:10 bar alone
    assert (row["peak_price"], row["peak_time"]) == (108.0, utc("14:10"))
    assert row["given_back_points"] == 4.0


def test_higher_timeframes() -> None:
    atlas = [tf.name for tf in ATLAS_TIMEFRAMES]
    assert higher_timeframes("1m", atlas) == ["5m", "15m"]
    assert higher_timeframes("5m", atlas) == ["15m", "1h"]
    assert higher_timeframes("4h", ["1m", "4h", "1D", "1W"]) == ["1D", "1W"]
    assert higher_timeframes("1W", atlas) == []
    assert higher_timeframes("1h", ["1m", "1h", "4h"]) == ["4h"]
    assert higher_timeframes("1m", ["1h", "1m", "15m"]) == ["15m", "1h"]
    assert higher_timeframes("1m", atlas, count=3) == ["5m", "15m", "1h"]


def test_empty_inputs() -> None:
    for regret in (trade_regret(TRADES.iloc[:0], {"5m": BARS_5M}), trade_regret(TRADES, {})):
        assert list(regret.columns) == list(REGRET_COLUMNS) and len(regret) == 0
    no_bars = trade_regret(TRADES, {"5m": BARS_5M.iloc[:0]})
    assert (no_bars["classification"] == "no_data").all() and len(no_bars) == 5
    report = day_regret(trade_regret(TRADES.iloc[:0], {"5m": BARS_5M}))
    assert report.trades == 0 and report.findings == ["no trades today"]
    assert report.adjustment["target_scale"] == 1.0
    assert json.dumps(report.to_json())
    assert day_regret(pd.DataFrame()).findings == ["no trades today"]


def test_bad_input_is_reported() -> None:
    with pytest.raises(ValueError, match="exit_price"):
        trade_regret(TRADES.drop(columns="exit_price"), {"5m": BARS_5M})
    with pytest.raises(ValueError, match="strictly increasing"):
        trade_regret(TRADES, {"5m": BARS_5M.iloc[::-1]})


def regret_frame(rows: list[tuple]) -> pd.DataFrame:
    """A regret frame from (trade, tf, classification, efficiency, continued, left, given)."""
    return pd.DataFrame(rows, columns=["trade", "higher_tf", "classification", "efficiency",
                                       "continued", "left_on_table_points", "given_back_points"])


# 5 trades x 2 timeframes; 8 rows with data: early 4, late 2, optimal 1, no_move 1
DAY_ROWS = regret_frame([
    (0, "5m", "early", 0.25, True, 6.0, 1.0), (0, "15m", "late", 0.25, True, 6.0, 6.0),
    (1, "15m", "early", 0.5, True, 2.0, 0.0), (1, "5m", "early", 0.5, False, 2.0, 0.0),
    (2, "5m", "optimal", 0.9, False, 1.0, 1.0), (2, "15m", "early", 0.75, False, 2.0, 1.0),
    (3, "5m", "no_move", NAN, False, 1.0, 0.0), (3, "15m", "late", -0.2, False, 6.0, 1.0),
    (4, "5m", "no_data", NAN, False, NAN, NAN), (4, "15m", "no_data", NAN, False, NAN, NAN),
])
TREND_BARS = make_bars([("14:00", 100.0, 104.0, 98.0, 103.0), ("14:05", 103.0, 110.0, 102.0,
                                                                    106.0)])


def test_day_regret_aggregates() -> None:
    report = day_regret(DAY_ROWS, day_bars=TREND_BARS)
    assert report.trades == 5
    assert report.mean_efficiency == pytest.approx((0.25 * 2 + 0.5 * 2 + 0.9 + 0.75 - 0.2) / 7)
    assert (report.share_early, report.share_late, report.share_optimal) == (0.5, 0.25, 0.125)
    assert report.share_no_move == 0.125
    assert report.continuation_ratio == 3 / 8
    assert report.left_on_table_points == 6.0 + 2.0 + 1.0 + 1.0   # 5m rows only
    assert report.given_back_points == 1.0 + 0.0 + 1.0 + 0.0
    assert report.trend_day is True   # |106 - 100| = 6 >= 0.5 * (110 - 98)
    text = " | ".join(report.findings)
    for phrase in ("50% of exits were early: the move continued after the exit",
                   "25% of exits were late", "12% of exits were optimal",
                   "50% of exits in trending days were early", "mean exit efficiency 42%",
                   "10 points left on the table", "continued after 38% of exits"):
        assert phrase in text
    assert report.adjustment == {"target_scale": 1.2, "trail_scale": 1.2,
                                 "reason": report.adjustment["reason"]}
    data = report.to_json()
    assert json.loads(json.dumps(data)) == data


def test_trend_day() -> None:
    assert day_regret(DAY_ROWS).trend_day is None
    ranging = TREND_BARS.assign(close=[103.0, 103.0])   # |103 - 100| = 3 < 6
    assert day_regret(DAY_ROWS, day_bars=ranging).trend_day is False
    flat = make_bars([("14:00", 100.0, 100.0, 100.0, 100.0)])
    assert day_regret(DAY_ROWS, day_bars=flat).trend_day is False
    assert not any("trending" in f for f in day_regret(DAY_ROWS, day_bars=ranging).findings)


@pytest.mark.parametrize(("early", "late", "scale"), [
    (0.5, 0.5, 1.2),     # early 50% >= 50%, late 25% < 50%
    (0.6, 0.5, 1.0),     # neither
    (0.6, 0.25, 0.85),   # late only
    (0.5, 0.25, 1.2),    # both: early 50% > late 25%
    (0.1, 0.25, 1.2),
])
def test_adjustment(early: float, late: float, scale: float) -> None:
    adjustment = day_regret(DAY_ROWS, early_threshold=early, late_threshold=late).adjustment
    assert adjustment["target_scale"] == adjustment["trail_scale"] == scale
    assert adjustment["reason"]


def test_adjustment_tie_and_late_wins() -> None:
    tie = DAY_ROWS.assign(classification=["early", "late"] * 5)
    assert day_regret(tie, early_threshold=0.3, late_threshold=0.3).adjustment[
        "target_scale"] == 1.0
    late = DAY_ROWS.assign(classification=["late"] * 6 + ["early"] * 4)
    assert day_regret(late, early_threshold=0.3, late_threshold=0.3).adjustment[
        "trail_scale"] == 0.85


def test_day_without_data_rows() -> None:
    report = day_regret(DAY_ROWS.iloc[8:])
    assert report.trades == 1 and math.isnan(report.share_early)
    assert report.findings and "no higher-timeframe bars" in report.findings[0]
    assert report.adjustment["target_scale"] == 1.0
    assert report.to_json()["share_early"] is None


def test_next_bias_clips() -> None:
    report = day_regret(DAY_ROWS)   # widen 1.2
    assert next_bias(RegretBias(), report) == RegretBias(1.2, 1.2)
    assert next_bias(RegretBias(2.8, 1.0), report) == RegretBias(3.0, 1.2)
    tighten = DayRegret(1, NAN, NAN, NAN, NAN, NAN, NAN, 0.0, 0.0, None, [],
                        {"target_scale": 0.85, "trail_scale": 0.85, "reason": ""})
    assert next_bias(RegretBias(0.55, 1.0), tighten) == RegretBias(0.5, 0.85)
    assert next_bias(RegretBias(2.0, 2.0), report, low=0.5, high=2.0) == RegretBias(2.0, 2.0)
    bias = RegretBias(1.44, 0.7)
    assert RegretBias.from_json(json.loads(json.dumps(bias.to_json()))) == bias
    assert RegretBias.from_json(None) == RegretBias()


# -- property: the vectorised windows and peaks against a plain-Python reference --------------

MINUTE = 60_000_000_000
BASE = utc("14:00").value


def reference_row(trade: dict, ts: list[int], high: list[float], low: list[float], d: int,
                  after_bars: int, optimal: float) -> dict:
    """One trade through one timeframe, bar by bar."""
    entry, exit_, side = trade["entry_ns"], trade["exit_ns"], trade["side"]
    holder = None   # the last bar starting at or before the entry
    for i, start in enumerate(ts):
        if start <= entry:
            holder = i
    if holder is None:
        first = 0
    elif entry < ts[holder] + d:
        first = holder
    else:           # the entry lies in a gap after the holder bar
        first = holder + 1
    window = [i for i in range(first, len(ts)) if ts[i] < exit_ + after_bars * d]
    if not window:
        return {"classification": "no_data", "continued": False}

    def extreme(i: int) -> float:
        return high[i] if side > 0 else low[i]

    def best(bars: list[int]) -> int | None:
        chosen = None
        for i in bars:
            if chosen is None or (extreme(i) - extreme(chosen)) * side > 0:
                chosen = i
        return chosen

    peak = best(window)
    peak_price = extreme(peak)
    potential = max(0.0, (peak_price - trade["entry_price"]) * side)
    actual = (trade["exit_price"] - trade["entry_price"]) * side
    inside = best([i for i in window if ts[i] <= exit_])
    after = best([i for i in window if ts[i] > exit_])
    efficiency = actual / potential if potential > 0 else NAN
    if potential == 0:
        kind = "no_move"
    elif efficiency >= optimal:
        kind = "optimal"
    else:
        kind = "early" if ts[peak] > exit_ else "late"
    return {"peak_price": peak_price, "peak_ns": ts[peak], "potential_points": potential,
            "actual_points": actual, "left_on_table_points": max(0.0, potential - actual),
            "given_back_points": NAN if inside is None else
            max(0.0, (extreme(inside) - trade["exit_price"]) * side),
            "efficiency": efficiency, "classification": kind,
            "continued": after is not None and (extreme(after) - trade["exit_price"]) * side > 0}


@st.composite
def random_bars(draw: st.DrawFn, minutes: int) -> pd.DataFrame:
    slots = draw(st.lists(st.integers(0, 40), max_size=20, unique=True))
    lows = draw(st.lists(st.integers(0, 12), min_size=len(slots), max_size=len(slots)))
    spans = draw(st.lists(st.integers(0, 6), min_size=len(slots), max_size=len(slots)))
    ts = BASE + np.array(sorted(slots), dtype=np.int64) * minutes * MINUTE
    low = np.array(lows, dtype=float)
    return pd.DataFrame({"ts": pd.DatetimeIndex(ts.view("datetime64[ns]"), tz="UTC"),
                         "open": low, "high": low + np.array(spans, dtype=float), "low": low,
                         "close": low, "volume": 1.0})


@st.composite
def random_trades(draw: st.DrawFn) -> pd.DataFrame:
    count = draw(st.integers(1, 8))
    rows = []
    for _ in range(count):
        entry = draw(st.integers(-20, 400))
        rows.append((BASE + entry * MINUTE, BASE + (entry + draw(st.integers(0, 90))) * MINUTE,
                     draw(st.sampled_from([-1, 1])), float(draw(st.integers(0, 18))),
                     float(draw(st.integers(0, 18)))))
    frame = pd.DataFrame(rows, columns=["entry_time", "exit_time", "side", "entry_price",
                                        "exit_price"])
    for column in ("entry_time", "exit_time"):
        frame[column] = pd.to_datetime(frame[column], utc=True).dt.as_unit("ns")
    frame["reason"] = "trail"
    return frame


@settings(max_examples=150, deadline=None)
@given(trades=random_trades(), bars_5m=random_bars(5), bars_15m=random_bars(15),
       after_bars=st.integers(0, 4), optimal=st.sampled_from([0.5, 0.9, 1.0]))
def test_matches_reference(trades: pd.DataFrame, bars_5m: pd.DataFrame,
                           bars_15m: pd.DataFrame, after_bars: int, optimal: float) -> None:
    higher = {"5m": bars_5m, "15m": bars_15m}
    regret = trade_regret(trades, higher, after_bars=after_bars, optimal_efficiency=optimal)
    assert len(regret) == 2 * len(trades)
    rows = iter(regret.to_dict("records"))
    for t, trade in enumerate(trades.to_dict("records")):
        trade.update(entry_ns=trade["entry_time"].value, exit_ns=trade["exit_time"].value)
        for name, bars in higher.items():
            got, want = next(rows), reference_row(
                trade, bars["ts"].array.asi8.tolist(), bars["high"].tolist(),
                bars["low"].tolist(), (5 if name == "5m" else 15) * MINUTE, after_bars, optimal)
            assert (got["trade"], got["higher_tf"]) == (t, name)
            assert got["classification"] == want["classification"]
            assert got["continued"] == want["continued"]
            if want["classification"] == "no_data":
                assert pd.isna(got["peak_time"]) and math.isnan(got["potential_points"])
                continue
            assert got["peak_time"].value == want.pop("peak_ns")
            for key, value in want.items():
                if isinstance(value, float):
                    assert got[key] == pytest.approx(value, nan_ok=True), key
