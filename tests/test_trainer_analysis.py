"""The trainer's pattern analyzer and its HTML report, against hand-computed cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from stratforge.errors import DataError
from stratforge.search.brain import BayesianBrain
from stratforge.trainer import report as report_module
from stratforge.trainer.analysis import (
    Z_BANDS,
    breakdowns,
    compare_periods,
    learning_progression,
    oos_distribution,
    parameter_evolution,
    strongest_states,
    z_band,
)
from stratforge.trainer.report import render_training_report, write_training_report


def make_trades() -> pd.DataFrame:
    rows = [  # state, zone, z, reason, timeframe, pnl, bars_held
        ("A_1m", "up", 2.0, "target", "1m", 10.0, 4),
        ("A_1m", "up", 2.49, "stop", "1m", -5.0, 2),
        ("A_1m", "down", 2.5, "target", "1m", 6.0, 6),
        ("B_5m", "down", -6.0, "trail", "5m", 3.0, 10),
        ("B_5m", "", 1.99, "stop", "5m", -4.0, 8),
        ("C_1m", "<b>zone</b>", -3.0, "timeout", "1m", 0.0, 20),
    ]
    frame = pd.DataFrame(rows, columns=["state", "zone", "z", "reason", "timeframe", "pnl",
                                        "bars_held"])
    frame["bars_held"] = frame["bars_held"].astype(np.int64)
    n = len(frame)
    start = pd.Timestamp("2023-01-04 14:30", tz="UTC")
    frame["entry_time"] = [start + pd.Timedelta(minutes=5 * i) for i in range(n)]
    frame["exit_time"] = frame["entry_time"] + pd.Timedelta(minutes=3)
    frame["side"] = np.array([1, -1, 1, -1, 1, -1], dtype=np.int8)
    frame["day"] = ["2023-01-04"] * 3 + ["2023-01-05"] * 3
    frame["day_index"] = np.array([0, 0, 0, 1, 1, 1], dtype=np.int64)
    frame["template_id"] = frame["state"].str.split("_").str[0]
    return frame


def make_days(oos: list[float] | None = None, n: int = 12) -> pd.DataFrame:
    oos = oos if oos is not None else [float((-1) ** i) for i in range(n)]
    n = len(oos)
    trades = np.arange(1, n + 1, dtype=np.int64)
    return pd.DataFrame({
        "day_index": np.arange(n, dtype=np.int64),
        "day": [str(pd.Timestamp("2023-01-02") + pd.Timedelta(days=i))[:10] for i in range(n)],
        "candidates": trades * 3, "fired": trades * 2, "trades": trades,
        "wins": trades // 2, "win_rate": (trades // 2) / trades,
        "pnl": np.linspace(-5.0, 6.0, n), "sharpe": [math.nan] + [0.1 * i for i in range(1, n)],
        "oos_trades": trades, "oos_pnl": np.asarray(oos, dtype=np.float64),
        "states_learned": np.arange(n, dtype=np.int64) * 2,
        "high_confidence": np.arange(n, dtype=np.int64) // 3,
        "avg_win_bars": 5.0, "avg_loss_bars": 3.0,
        "mean_efficiency": np.linspace(0.2, 0.8, n), "share_early": 0.3, "share_late": 0.2,
        "target_scale": 1.0, "trail_scale": 1.0,
        "params": [json.dumps({"stop_ticks": 20 + i, "target_ticks": 40.0})
                   for i in range(n)],
        "seconds": 0.5})


def test_z_bands_at_their_boundaries():
    assert len(Z_BANDS) == 5 and math.isinf(Z_BANDS[-1][1])
    cases = {2.0: "2-2.5", 2.49: "2-2.5", 2.5: "2.5-3", 3.0: "3-4", 4.0: "4-6", 6.0: "6+",
             99.0: "6+", 1.99: "<2", 0.0: "<2", -2.0: "2-2.5", -6.0: "6+", -1.99: "<2"}
    for z, label in cases.items():
        assert z_band(z) == label, z
    assert z_band(math.nan) == "(unknown)"


def test_strongest_states_orders_filters_and_joins_trades():
    brain = BayesianBrain()
    brain.batch_update_counts(["A_1m", "B_5m", "C_1m", "D_1h"], [8, 12, 9, 3], [2, 8, 1, 0])
    table = strongest_states(brain, make_trades(), top=10, min_samples=10)
    # D_1h has 3 outcomes only; C (10/12) > A (9/12) > B (13/22) by posterior mean
    assert table["state"].tolist() == ["C_1m", "A_1m", "B_5m"]
    assert table["samples"].tolist() == [10, 10, 20]
    assert table["wins"].tolist() == [9, 8, 12]
    assert table["posterior_mean"].tolist() == pytest.approx([10 / 12, 9 / 12, 13 / 22])
    assert (table["lo"] < table["posterior_mean"]).all()
    assert (table["posterior_mean"] < table["hi"]).all()
    assert table.loc[1, "lo"] == pytest.approx(brain.credible_interval("A_1m", 0.9)[0])
    assert table["avg_pnl"].tolist() == pytest.approx([0.0, 11 / 3, -0.5])
    assert table["avg_duration_bars"].tolist() == pytest.approx([20.0, 4.0, 9.0])
    assert table["trades"].tolist() == [1, 3, 2]
    assert strongest_states(brain, make_trades(), top=1)["state"].tolist() == ["C_1m"]
    assert len(strongest_states(brain, make_trades(), min_samples=3)) == 4
    untraded = strongest_states(brain, make_trades().iloc[0:0])
    assert untraded["trades"].tolist() == [0, 0, 0] and untraded["avg_pnl"].isna().all()
    empty = strongest_states(BayesianBrain(), make_trades().iloc[0:0])
    assert empty.empty and "posterior_mean" in empty.columns


def test_breakdowns_by_hand():
    tables = breakdowns(make_trades())
    assert set(tables) == {"zone", "z_band", "reason", "timeframe"}
    zone = tables["zone"].set_index("group")
    assert zone.loc["up", "trades"] == 2 and zone.loc["up", "win_rate"] == 0.5
    assert zone.loc["down", "total_pnl"] == 9.0 and zone.loc["down", "avg_bars"] == 8.0
    assert zone.loc["(unknown)", "trades"] == 1
    assert tables["zone"]["group"].tolist() == ["down", "up", "(unknown)", "<b>zone</b>"]
    band = tables["z_band"].set_index("group")
    assert band["trades"].to_dict() == {"2-2.5": 2, "2.5-3": 1, "3-4": 1, "6+": 1, "<2": 1}
    assert band.loc["2-2.5", "avg_pnl"] == 2.5 and band.loc["6+", "win_rate"] == 1.0
    reason = tables["reason"].set_index("group")
    assert reason.loc["stop", "win_rate"] == 0.0 and reason.loc["target", "win_rate"] == 1.0
    assert reason.loc["timeout", "win_rate"] == 0.0  # pnl 0 is not a win
    tf = tables["timeframe"]
    assert tf["group"].tolist() == ["1m", "5m"] and tf["trades"].tolist() == [4, 2]
    assert tf.loc[0, "win_rate"] == 0.5 and tf.loc[1, "avg_bars"] == 9.0
    assert all(t.empty for t in breakdowns(make_trades().iloc[0:0]).values())


def test_learning_progression_and_parameter_evolution():
    days = make_days()
    progression = learning_progression(days, last=10)
    assert len(progression) == 10 and progression["day"].iloc[-1] == days["day"].iloc[-1]
    assert list(progression.columns) == ["day", "states_learned", "high_confidence",
                                         "win_rate", "pnl", "oos_pnl", "mean_efficiency"]
    assert len(learning_progression(days.head(3))) == 3
    evolution = parameter_evolution(days)
    assert list(evolution.columns) == ["day", "stop_ticks", "target_ticks"]
    assert evolution["stop_ticks"].tolist() == list(range(20, 32))


def test_compare_periods_by_hand():
    days = make_days()
    result = compare_periods(days, n=5)
    first, last = result["first"], result["last"]
    assert first["trades"] == 1 + 2 + 3 + 4 + 5 and first["wins"] == 0 + 1 + 1 + 2 + 2
    assert first["win_rate"] == pytest.approx(6 / 15)
    assert last["trades"] == 8 + 9 + 10 + 11 + 12 and last["wins"] == 4 + 4 + 5 + 5 + 6
    assert last["win_rate"] == pytest.approx(24 / 50)
    assert first["pnl"] == pytest.approx(days["pnl"].head(5).sum())
    assert last["oos_pnl"] == pytest.approx(days["oos_pnl"].tail(5).sum())
    assert first["avg_sharpe"] == pytest.approx((0.1 + 0.2 + 0.3 + 0.4) / 4)  # NaN skipped
    assert last["mean_efficiency"] == pytest.approx(days["mean_efficiency"].tail(5).mean())
    assert first["from"] == days["day"].iloc[0] and last["to"] == days["day"].iloc[-1]


def test_oos_distribution_by_hand():
    centred = oos_distribution(make_days([100.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5]))
    values = np.array([1.0, -1.0, 2.0, -2.0, 0.5, -0.5])  # the first day is left out
    assert centred["n_days"] == 6 and centred["mean"] == pytest.approx(0.0)
    assert centred["std"] == pytest.approx(values.std(ddof=1))
    assert centred["t_stat"] == pytest.approx(0.0)
    assert centred["share_positive"] == pytest.approx(0.5)
    assert not centred["edge_claimed"] and centred["verdict"].startswith("no edge: ")
    assert "centred near zero" in centred["verdict"]
    positive = np.array([5.0, 6.0, 4.0, 5.5, 4.5, 5.0, 6.5, 3.5])
    result = oos_distribution(make_days([0.0, *positive]))
    se = positive.std(ddof=1) / math.sqrt(8)
    assert result["t_stat"] == pytest.approx(positive.mean() / se)
    assert result["ci95"] == pytest.approx((positive.mean() - 1.96 * se,
                                            positive.mean() + 1.96 * se))
    assert result["median"] == pytest.approx(5.0)
    assert result["edge_claimed"] and result["verdict"].startswith("edge: ")
    assert not oos_distribution(make_days([1.0, 2.0]))["edge_claimed"]


def write_folder(folder, days, trades, log=None):
    days.to_parquet(folder / "days.parquet")
    trades.to_parquet(folder / "trades.parquet")
    if log is not None:
        (folder / "training_log.json").write_text(json.dumps(log))


def test_report_is_self_contained_deterministic_and_escaped(tmp_path, monkeypatch):
    log = {"symbol": "<script>alert(1)</script>", "timeframe": "1m",
           "summary": {"days": 12, "note": "a & b"},
           "strongest_states": [{"state": "<i>S</i>_1m", "samples": 12, "wins": 9,
                                 "posterior_mean": 0.71, "lo": 0.5, "hi": 0.86,
                                 "avg_pnl": 1.5, "avg_duration_bars": 4.0, "trades": 12}]}
    write_folder(tmp_path, make_days(), make_trades(), log)
    writes = []
    real = report_module.atomic_write_bytes
    monkeypatch.setattr(report_module, "atomic_write_bytes",
                        lambda path, data: (writes.append(path), real(path, data)))
    path = write_training_report(tmp_path)
    assert writes == [path] and path.name == "training_report.html"
    text = path.read_text(encoding="utf-8")
    again = write_training_report(tmp_path).read_text(encoding="utf-8")
    assert text == again
    assert "<script src" not in text
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)" in text
    assert "<b>zone</b>" not in text and "&lt;b&gt;zone&lt;/b&gt;" in text
    assert "<i>S</i>" not in text and "&lt;i&gt;S&lt;/i&gt;_1m" in text
    assert "a &amp; b" in text
    for div in ("fig-daily-pnl", "fig-cumulative", "fig-win-rate", "fig-sharpe", "fig-regret",
                "fig-param-1", "fig-param-2"):
        assert f'id="{div}"' in text
    assert "Out-of-sample verdict" in text and "no edge" in text
    assert "Strongest states" in text and "First 5 days" in text
    assert not list(tmp_path.glob(".*.tmp"))


def test_report_plotly_inlined_once(tmp_path):
    write_folder(tmp_path, make_days(), make_trades())
    text = render_training_report(tmp_path)
    marker = get_plotlyjs()[:200]
    assert text.count(marker) == 1
    assert "Strongest states" not in text  # no brain records in the log


def test_report_with_empty_trades_and_missing_days(tmp_path):
    write_folder(tmp_path, make_days(n=3), make_trades().iloc[0:0])
    text = render_training_report(tmp_path)
    assert "no trades in this run" in text and 'id="fig-daily-pnl"' in text
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"days\.parquet is missing"):
        render_training_report(empty)


# ---------------------------------------------------------------- issue 18, item 7

def _timed_trades() -> pd.DataFrame:
    # entries in UTC; Chicago is UTC-6 in January (CST) and UTC-5 in July (CDT)
    return pd.DataFrame({
        "entry_time": pd.to_datetime(["2024-01-02T14:30Z", "2024-01-02T15:10Z",
                                      "2024-01-02T15:50Z", "2024-07-02T13:30Z"]),
        "exit_time": pd.to_datetime(["2024-01-02T14:40Z", "2024-01-02T15:30Z",
                                     "2024-01-02T16:20Z", "2024-07-02T13:34Z"]),
        "pnl": [10.0, -5.0, 20.0, 0.0], "bars_held": [2, 4, 6, 1]})


def test_hour_of_day_groups_trades_by_entry_hour_in_the_session_zone():
    from stratforge.trainer.analysis import HOUR_COLUMNS, hour_of_day

    hours = hour_of_day(_timed_trades(), "America/Chicago")
    assert list(hours.columns) == HOUR_COLUMNS
    # 14:30Z and 13:30Z (summer) are 08:xx in Chicago; 15:10Z and 15:50Z are 09:xx
    assert hours["hour"].tolist() == [8, 9]
    assert hours["trades"].tolist() == [2, 2] and hours["wins"].tolist() == [1, 1]
    assert hours["win_rate"].tolist() == [0.5, 0.5]  # a 0.0 PnL trade is not a win
    assert hours["avg_pnl"].tolist() == [5.0, 7.5] and hours["total_pnl"].tolist() == [10, 15]
    utc = hour_of_day(_timed_trades())
    assert utc["hour"].tolist() == [13, 14, 15] and utc["trades"].tolist() == [1, 1, 2]
    assert hour_of_day(pd.DataFrame()).empty


def test_trade_durations_are_the_mean_bars_and_minutes():
    from stratforge.trainer.analysis import trade_durations

    d = trade_durations(_timed_trades())
    assert d["trades"] == 4
    assert d["avg_bars"] == pytest.approx((2 + 4 + 6 + 1) / 4)
    assert d["avg_win_bars"] == pytest.approx((2 + 6) / 2)
    assert d["avg_loss_bars"] == pytest.approx((4 + 1) / 2)
    assert d["avg_minutes"] == pytest.approx((10 + 20 + 30 + 4) / 4)
    empty = trade_durations(pd.DataFrame())
    assert empty["trades"] == 0 and math.isnan(empty["avg_minutes"])


def test_confident_states_are_those_above_the_level_most_confident_first():
    from stratforge.trainer.analysis import confident_states

    brain = BayesianBrain()  # uniform prior: the posterior mean is (wins+1)/(n+2)
    for key, wins, losses in (("A", 9, 1), ("B", 18, 2), ("C", 3, 0), ("D", 5, 5)):
        brain.batch_update([key] * (wins + losses), [True] * wins + [False] * losses)
    states = confident_states(brain, pd.DataFrame(), level=0.8)
    # means: A 10/12 = 0.833, B 19/22 = 0.864, C 4/5 = 0.8 (at the level), D 0.5
    assert states["state"].tolist() == ["B", "A", "C"]
    assert states["posterior_mean"].tolist() == pytest.approx([19 / 22, 10 / 12, 4 / 5])
    # C's posterior is Beta(4, 1), whose CDF is x^4: its 5% quantile is 0.05 ** (1/4)
    assert states["lo"].iloc[2] == pytest.approx(0.05 ** 0.25)
    assert confident_states(brain, pd.DataFrame(), level=0.85)["state"].tolist() == ["B"]
    with pytest.raises(ValueError, match="level"):
        confident_states(brain, pd.DataFrame(), level=1.0)


def test_report_shows_time_of_day_durations_and_confident_states(tmp_path):
    log = {"symbol": "MNQ", "session_timezone": "America/Chicago", "confident_level": 0.8,
           "confident_states": [{"state": "T0001_1m", "samples": 20, "wins": 18,
                                 "posterior_mean": 19 / 22, "lo": 0.71, "hi": 0.96,
                                 "avg_pnl": 3.0, "avg_duration_bars": 4.0, "trades": 20}]}
    write_folder(tmp_path, make_days(), _timed_trades(), log)
    text = render_training_report(tmp_path)
    assert "Confident states: P(win) &gt;= 80%" in text and "T0001_1m" in text
    assert "Time of day" in text and "America/Chicago" in text
    assert "<td>08:00</td>" in text and "<td>09:00</td>" in text
    assert "Average duration (minutes)" in text and "16.00" in text  # (10+20+30+4)/4


def test_report_says_why_a_chart_is_empty_and_names_the_currency(tmp_path):
    days = make_days().assign(sharpe=math.nan)  # no day had 2 trades with differing PnL
    write_folder(tmp_path, days, make_trades(),
                 {"symbol": "EURUSD", "cost_model": {"currency": "USD"}})
    text = render_training_report(tmp_path)
    assert 'id="fig-sharpe-empty"' in text and "needs at least 2 trades" in text
    assert "PnL (USD)" in text and "cumulative PnL (USD)" in text
    assert "Avg PnL (USD)" in text  # the tables' PnL columns too


def test_report_day_axis_ticks_whole_days_with_readable_dates():
    axis = report_module.day_axis([f"2017-09-{d:02d}" for d in range(1, 31)])
    assert axis["type"] == "date" and axis["tickformat"] == "%d %b %Y"
    assert axis["dtick"] == 4 * report_module.DAY_MS  # 30 days: at most 8 ticks
    assert report_module.day_axis(["2017-09-05"])["dtick"] == report_module.DAY_MS
