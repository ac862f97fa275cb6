"""The stats table against a week of trades worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from stratforge.errors import ConfigError
from stratforge.instruments import get_instrument
from stratforge.sim.metrics import compute_metrics, daily_pnl, sqn_band

MNQ = get_instrument("MNQ")  # CME Globex, point value 2, 252 trading days
CAPITAL = 10_000.0
UTC = "UTC"


def make_trades(rows: list[tuple]) -> pd.DataFrame:
    """Trades from (entry_time, exit_time, side, entry, exit, bars, pnl_points, fees) rows;
    pnl = pnl_points * 2 (MNQ point value, one contract) - fees."""
    frame = pd.DataFrame(rows, columns=["entry_time", "exit_time", "side", "entry_price",
                                        "exit_price", "bars_held", "pnl_points", "fees"])
    for column in ("entry_time", "exit_time"):
        frame[column] = pd.to_datetime(frame[column]).dt.tz_localize(UTC).dt.as_unit("ns")
    frame["pnl"] = frame["pnl_points"] * 2.0 - frame["fees"]
    frame["reason"] = "target"
    frame["quantity"] = 1.0
    return frame


# Monday 4 to Friday 8 March 2024, Chicago on CST (UTC-6): trade date D starts 23:00 UTC on D-1.
#  #  side  entry -> exit   pnl_points            pnl = 2*points - 1   exit booked to
#  1  long  100 -> 110      10                    19                   Mon 07:00 UTC -> Mon
#  2  short 120 -> 125      -5                    -11                  Tue 23:30 UTC = 17:30 CST
#                                                                      Tue -> trade date Wed
#  3  long  100 -> 100.25   0.25 - 0.5 cost       -1.5                 Wed
#  4  short 130 -> 120      10                    19                   Fri
#  5  long  100 -> 100.5    0.5                   0 (scratch)          Fri
WEEK = make_trades([
    ("2024-03-04 02:00", "2024-03-04 07:00", 1, 100.0, 110.0, 10, 10.0, 1.0),
    ("2024-03-05 21:30", "2024-03-05 23:30", -1, 120.0, 125.0, 4, -5.0, 1.0),
    ("2024-03-06 09:00", "2024-03-06 10:00", 1, 100.0, 100.25, 2, -0.25, 1.0),
    ("2024-03-08 01:00", "2024-03-08 04:00", -1, 130.0, 120.0, 6, 10.0, 1.0),
    ("2024-03-08 10:00", "2024-03-08 11:30", 1, 100.0, 100.5, 3, 0.5, 1.0),
])


def week_bars() -> pd.DataFrame:
    """30-minute bars Mon 00:00 to Fri 20:00 UTC: 4 * 48 + 41 = 233 bars, close 100 + 0.1 i."""
    ts = pd.date_range("2024-03-04 00:00", "2024-03-08 20:00", freq="30min", tz=UTC)
    close = 100.0 + 0.1 * np.arange(len(ts))
    return pd.DataFrame({"ts": ts.as_unit("ns"), "open": close, "high": close + 0.5,
                         "low": close - 0.5, "close": close, "volume": 1.0})


def test_week_of_trades_by_hand():
    m = compute_metrics(WEEK, instrument=MNQ, capital=CAPITAL, bars=week_bars())
    assert (m.trades, m.wins, m.losses, m.scratches) == (5, 2, 2, 1)
    assert m.win_rate == pytest.approx(2 / 5)             # the scratch counts in trades
    assert m.avg_win == pytest.approx(19.0)               # (19 + 19) / 2
    assert m.avg_loss == pytest.approx(-6.25)             # (-11 - 1.5) / 2
    assert (m.largest_win, m.largest_loss) == (19.0, -11.0)
    assert m.total_pnl == pytest.approx(25.5)             # 19 - 11 - 1.5 + 19 + 0
    assert m.total_pnl_points == pytest.approx(15.25)     # 10 - 5 - 0.25 + 10 + 0.5
    assert m.expectancy == pytest.approx(5.1)             # 25.5 / 5
    assert m.expectancy_points == pytest.approx(3.05)     # 15.25 / 5
    assert (m.gross_profit, m.gross_loss) == (38.0, 12.5)
    assert m.profit_factor == pytest.approx(3.04)         # 38 / 12.5
    # SQN: deviations from 5.1 are 13.9 -16.1 -6.6 13.9 -5.1, squares sum to 715.2
    assert m.sqn == pytest.approx(math.sqrt(5) * 5.1 / math.sqrt(715.2 / 4))  # 0.8529
    assert m.sqn_band == "poor"
    assert m.total_fees == 5.0
    assert m.fees_pct_of_capital == pytest.approx(0.05)   # 5 / 10 000 in percent
    # equity 10019, 10008, 10006.5, 10025.5, 10025.5; deepest fall 10019 -> 10006.5
    assert m.max_drawdown == pytest.approx(12.5)
    assert m.max_drawdown_pct == pytest.approx(12.5 / 10019 * 100)
    assert m.exposure == pytest.approx(25 / 233)          # bars held 10+4+2+6+3 of 233 bars
    assert m.avg_win_bars == pytest.approx(8.0)           # (10 + 6) / 2
    assert m.avg_loss_bars == pytest.approx(3.0)          # (4 + 2) / 2
    assert m.avg_win_duration == pd.Timedelta(hours=4)    # (5 h + 3 h) / 2
    assert m.avg_loss_duration == pd.Timedelta(minutes=90)  # (2 h + 1 h) / 2
    # hit: long 100->110 yes, short 120->125 no, long 100->100.25 yes (loss only after
    # costs), short 130->120 yes, long 100->100.5 yes
    assert m.hit_rate == pytest.approx(4 / 5)
    assert m.strategy_return == pytest.approx(0.00255)    # 25.5 / 10 000
    assert m.buy_hold_return == pytest.approx(0.232)      # (123.2 - 100) / 100
    assert m.alpha == pytest.approx(0.00255 - 0.232)
    assert m.days == 5
    assert m.start == pd.Timestamp("2024-03-04", tz=UTC)
    assert m.end == pd.Timestamp("2024-03-08 20:00", tz=UTC)


def test_daily_pnl_books_trade_dates_and_keeps_flat_days():
    daily = daily_pnl(WEEK, instrument=MNQ, bars=week_bars())
    assert daily.index.strftime("%a %d").tolist() == ["Mon 04", "Tue 05", "Wed 06", "Thu 07",
                                                      "Fri 08"]
    # trade 2 closed 17:30 Chicago on Tuesday: it belongs to Wednesday's trade date
    np.testing.assert_allclose(daily.to_numpy(), [19.0, 0.0, -12.5, 0.0, 19.0])


def test_sharpe_and_sortino_use_every_trading_day():
    m = compute_metrics(WEEK, instrument=MNQ, capital=CAPITAL, bars=week_bars())
    # daily pnl 19, 0, -12.5, 0, 19: mean 5.1, deviations 13.9 -5.1 -17.6 -5.1 13.9,
    # squares 193.21 + 26.01 + 309.76 + 26.01 + 193.21 = 748.2, sample variance 187.05
    # (capital divides mean and std alike, so it cancels)
    assert m.sharpe == pytest.approx(5.1 / math.sqrt(187.05) * math.sqrt(252))  # 5.92
    # downside deviation sqrt((0 + 0 + 12.5^2 + 0 + 0) / 5) = sqrt(31.25)
    assert m.sortino == pytest.approx(5.1 / math.sqrt(31.25) * math.sqrt(252))  # 14.48
    # the three days with exits alone (19, -12.5, 19: mean 8.5, squared deviations 110.25 +
    # 441 + 110.25 = 661.5) would inflate it to 8.5 / sqrt(330.75) * sqrt(252) = 7.42
    assert m.sharpe < 8.5 / math.sqrt(330.75) * math.sqrt(252) - 1
    # annual return = 0.00255 * 252 / 5 days; Calmar = that / (12.5 / 10019)
    assert m.annual_return == pytest.approx(0.00255 * 252 / 5)
    assert m.calmar == pytest.approx(0.00255 * 252 / 5 / (12.5 / 10019))


def test_without_bars_the_days_are_session_weekdays_between_first_entry_and_last_exit():
    same = compute_metrics(WEEK, instrument=MNQ, capital=CAPITAL)
    assert same.days == 5 and same.sharpe == pytest.approx(5.1 / math.sqrt(187.05)
                                                            * math.sqrt(252))
    assert math.isnan(same.exposure) and math.isnan(same.buy_hold_return)
    assert math.isnan(same.alpha)
    assert same.start == WEEK["entry_time"].iloc[0] and same.end == WEEK["exit_time"].iloc[-1]
    # held over a weekend: Friday 14:00 UTC to Monday 14:00 UTC -> Fri 0, Mon pnl; no Sat/Sun
    weekend = make_trades([("2024-03-08 14:00", "2024-03-11 14:00", 1, 100.0, 104.0, 9, 4.0,
                            0.0)])
    daily = daily_pnl(weekend, instrument=MNQ)
    assert daily.index.strftime("%a").tolist() == ["Fri", "Mon"]
    np.testing.assert_allclose(daily.to_numpy(), [0.0, 8.0])


def test_daily_pnl_of_a_day_session_uses_the_local_date():
    spy = get_instrument("SPY")  # New York 09:30-16:00: trade date = New York calendar date
    trades = make_trades([("2024-03-05 15:00", "2024-03-06 03:00", 1, 1.0, 2.0, 1, 1.0, 0.0)])
    # 03:00 UTC on Wednesday is 22:00 Tuesday in New York
    assert daily_pnl(trades, instrument=spy).index.strftime("%a").tolist() == ["Tue"]


def test_trades_are_ordered_by_exit_for_the_equity_curve():
    shuffled = WEEK.iloc[[3, 0, 4, 2, 1]].reset_index(drop=True)
    m = compute_metrics(shuffled, instrument=MNQ, capital=CAPITAL)
    assert m.max_drawdown == pytest.approx(12.5)


def test_drawdown_in_money_and_percent_are_separate_maxima():
    # capital 1000: -100 (equity 900, 10 % below 1000), +1100 (2000), -150 (1850, 7.5 %)
    trades = make_trades([
        ("2024-03-04 01:00", "2024-03-04 02:00", 1, 100.0, 50.0, 1, -50.0, 0.0),
        ("2024-03-05 01:00", "2024-03-05 02:00", 1, 100.0, 650.0, 1, 550.0, 0.0),
        ("2024-03-06 01:00", "2024-03-06 02:00", 1, 100.0, 25.0, 1, -75.0, 0.0),
    ])
    m = compute_metrics(trades, instrument=MNQ, capital=1000.0)
    assert m.max_drawdown == pytest.approx(150.0)
    assert m.max_drawdown_pct == pytest.approx(10.0)


def test_profit_factor_calmar_and_sortino_without_losses_are_infinite():
    winners = make_trades([
        ("2024-03-04 01:00", "2024-03-04 02:00", 1, 100.0, 101.0, 2, 1.0, 0.0),
        ("2024-03-05 01:00", "2024-03-05 02:00", 1, 100.0, 103.0, 2, 3.0, 0.0),
    ])
    m = compute_metrics(winners, instrument=MNQ, capital=CAPITAL)
    assert m.profit_factor == math.inf
    assert m.calmar == math.inf and m.max_drawdown == 0.0
    assert m.sortino == math.inf
    assert math.isnan(m.avg_loss) and math.isnan(m.largest_loss)
    assert m.avg_loss_duration is pd.NaT
    # SQN of pnl 2 and 6: mean 4, std sqrt(8) -> sqrt(2) * 4 / sqrt(8) = 2.0 exactly
    assert m.sqn == pytest.approx(2.0)


def test_no_trades_and_only_scratches():
    empty = compute_metrics(pd.DataFrame(), instrument=MNQ, capital=CAPITAL, bars=week_bars())
    assert empty.trades == 0 and empty.total_pnl == 0.0 and empty.max_drawdown == 0.0
    for name in ("win_rate", "expectancy", "profit_factor", "sqn", "sharpe", "sortino",
                 "hit_rate", "calmar", "avg_win"):
        assert math.isnan(getattr(empty, name)), name
    assert empty.days == 5 and empty.exposure == 0.0 and empty.sqn_band == "n/a"
    assert empty.alpha == pytest.approx(-0.232)
    scratch = make_trades([("2024-03-04 01:00", "2024-03-04 02:00", 1, 100.0, 100.5, 2, 0.5,
                            1.0)])
    m = compute_metrics(scratch, instrument=MNQ, capital=CAPITAL)
    assert (m.trades, m.wins, m.losses, m.scratches) == (1, 0, 0, 1)
    assert math.isnan(m.profit_factor) and math.isnan(m.sqn)  # 0 / 0; one trade
    assert m.win_rate == 0.0 and m.hit_rate == 1.0


@pytest.mark.parametrize(("value", "band"), [
    (-1.0, "poor"), (1.5999, "poor"), (1.6, "below average"), (1.95, "below average"),
    (1.9999, "below average"), (2.0, "average"), (2.45, "average"), (2.5, "good"),
    (2.95, "good"), (3.0, "excellent"), (5.0, "excellent"), (5.05, "excellent"),
    (5.1, "superb"), (6.95, "superb"), (7.0, "holy grail"), (42.0, "holy grail"),
    (math.nan, "n/a"),
])
def test_sqn_band_boundaries(value, band):
    assert sqn_band(value) == band


def test_to_dict_and_rows_for_printing():
    m = compute_metrics(WEEK.iloc[[0, 3]], instrument=MNQ, capital=CAPITAL)
    plain = m.to_dict()
    assert plain["profit_factor"] == math.inf and plain["trades"] == 2
    safe = m.to_dict(json_safe=True)
    assert safe["profit_factor"] == "inf" and safe["avg_loss"] is None
    assert safe["avg_win_duration"] == 4 * 3600.0 and safe["start"].startswith("2024-03-04")
    rows = dict(m.as_rows())
    assert rows["Profit factor"] == "inf" and rows["Avg. loss [USD]"] == "n/a"
    assert rows["Win rate [%]"] == "100.00" and rows["Net PnL [USD]"] == "38.00"
    assert rows["SQN rating"] == "n/a"  # equal pnl: zero spread


def test_bad_input_is_named():
    with pytest.raises(ConfigError, match="capital"):
        compute_metrics(WEEK, instrument=MNQ, capital=0.0)
    with pytest.raises(ValueError, match="lacks column"):
        compute_metrics(WEEK.drop(columns=["fees"]), instrument=MNQ)
    naive = WEEK.assign(exit_time=WEEK["exit_time"].dt.tz_localize(None))
    with pytest.raises(ValueError, match="exit_time must hold time-zone aware"):
        compute_metrics(naive, instrument=MNQ)
    with pytest.raises(ValueError, match="NaN"):
        compute_metrics(WEEK.assign(pnl=np.nan), instrument=MNQ)
