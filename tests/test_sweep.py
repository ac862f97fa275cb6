"""``sweep`` against ``simulate``: every summary row equals the statistics of the trades that
``simulate`` returns for the same parameters, on random inputs; plus hand-worked statistics,
the parameter-table rules and its errors."""

from __future__ import annotations

import importlib
import math
from unittest import mock

import numba
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_simulator import reference_simulate, reference_summary
from stratforge.errors import ConfigError
from stratforge.sim import SUMMARY_COLUMNS, Costs, ExitParams, simulate, sweep
from test_simulator import (
    ALWAYS_OPEN,
    DAY_DIME,
    FLAT,
    MNQ,
    PROPERTY,
    cases,
    exit_params,
    make_bars,
)

COUNTS = ("trades", "wins", "losses")
SWEEP_MODULE = importlib.import_module("stratforge.sim.backtest")


def force_parallel():
    """Run even tiny sweeps through the parallel (prange) kernel."""
    return mock.patch.object(SWEEP_MODULE, "PARALLEL_MIN_CELLS", 0)


def assert_summary_equal(row: pd.Series, expected: dict) -> None:
    for column in SUMMARY_COLUMNS:
        got, want = row[column], expected[column]
        if column in COUNTS:
            assert got == want, (column, row, expected)
        elif math.isnan(want) or math.isinf(want):
            assert (math.isnan(got) and math.isnan(want)) or got == want, (column, got, want)
        else:
            assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9), (column, got, want)


@st.composite
def tables(draw) -> pd.DataFrame:
    """1 to 6 parameter sets; some columns left out (rule off). Costs are the case's, the
    same for every row (a parameter table never holds a cost)."""
    rows = draw(st.lists(exit_params(), min_size=1, max_size=6))
    frame = pd.DataFrame(rows)
    dropped = draw(st.lists(st.sampled_from(list(frame.columns)), max_size=3, unique=True))
    frame = frame.drop(columns=dropped)
    frame.index = [f"set{k}" for k in range(len(frame))]
    return frame




def check_sweep(case: dict, table: pd.DataFrame, instrument) -> None:
    options = {"instrument": instrument, "fill": case["fill"],
               "delay_bars": case["delay_bars"], "price_path": case["price_path"]}
    result = sweep(case["bars"], case["entries"], case["sides"], table,
                   costs=Costs(**case["costs"]), **options)
    assert list(result.columns) == list(table.columns) + list(SUMMARY_COLUMNS)
    assert list(result.index) == list(table.index)
    pd.testing.assert_frame_equal(result[list(table.columns)], table)
    for label in table.index:
        trades = simulate(case["bars"], case["entries"], case["sides"],
                          table.loc[label].to_dict(), costs=Costs(**case["costs"]), **options)
        assert_summary_equal(result.loc[label], reference_summary(trades.to_dict("records")))


@PROPERTY
@given(cases(MNQ), tables())
def test_sweep_matches_simulate_mnq(case, table):
    check_sweep(case, table, MNQ)


@settings(max_examples=100, deadline=None)
@given(cases(MNQ), tables())
def test_parallel_kernel_matches_the_serial_one(case, table):
    args = (case["bars"], case["entries"], case["sides"], table)
    options = {"instrument": MNQ, "costs": Costs(**case["costs"]), "fill": case["fill"],
               "delay_bars": case["delay_bars"], "price_path": case["price_path"]}
    serial = sweep(*args, **options)
    with force_parallel():
        pd.testing.assert_frame_equal(sweep(*args, **options), serial)


@settings(max_examples=200, deadline=None)
@given(cases(DAY_DIME), tables())
def test_sweep_matches_simulate_day_session(case, table):
    check_sweep(case, table, DAY_DIME)


@settings(max_examples=300, deadline=None)
@given(cases(MNQ))
def test_sweep_summary_matches_the_reference(case):
    table = pd.DataFrame([case["params"]])
    result = sweep(case["bars"], case["entries"], case["sides"], table, instrument=MNQ,
                   costs=Costs(**case["costs"]), fill=case["fill"],
                   delay_bars=case["delay_bars"], price_path=case["price_path"])
    trades = reference_simulate(
        case["bars"], case["entries"], case["sides"], case["params"], tick=MNQ.tick_size,
        point_value=MNQ.point_value, session=MNQ.session, costs=case["costs"],
        fill=case["fill"], delay_bars=case["delay_bars"], price_path=case["price_path"])
    assert_summary_equal(result.iloc[0], reference_summary(trades))


# ---------------------------------------------------------------------------------------------
# hand-worked statistics

def trending_bars():
    """Bars 0..9 climbing 1 point per bar, then flat: longs win, shorts lose."""
    rows = [(100 + k, 100.5 + k, 99.75 + k, 100 + k) for k in range(10)]
    return make_bars(rows + [(109, 109, 109, 109)] * 3)


def test_statistics_by_hand():
    bars = trending_bars()
    # three one-bar trades: +1 pt (long), -1 pt (short), +1 pt (long), MNQ-like money
    table = pd.DataFrame({"max_hold_bars": [1]})
    result = sweep(bars, np.array([0, 2, 4]), np.array([1, -1, 1]), table,
                   instrument=ALWAYS_OPEN, costs=Costs(commission=0.25))
    row = result.iloc[0]
    pnl = [1 * 2 - 0.5, -1 * 2 - 0.5, 1 * 2 - 0.5]  # 1.5, -2.5, 1.5
    assert (row["trades"], row["wins"], row["losses"]) == (3, 2, 1)
    assert row["total_pnl"] == pytest.approx(sum(pnl))
    assert row["pnl_per_trade"] == pytest.approx(sum(pnl) / 3)
    assert row["win_rate"] == pytest.approx(2 / 3)
    assert row["profit_factor"] == pytest.approx(3.0 / 2.5)
    assert row["sharpe_per_trade"] == pytest.approx(np.mean(pnl) / np.std(pnl, ddof=1))
    assert row["max_drawdown"] == pytest.approx(2.5)
    assert row["avg_bars_held"] == 1.0


def test_profit_factor_and_empty_rows():
    bars = trending_bars()
    table = pd.DataFrame({"max_hold_bars": [1, 1]}, index=["a", "b"])
    wins_only = sweep(bars, np.array([0, 3]), 1, table, instrument=ALWAYS_OPEN).iloc[0]
    assert wins_only["profit_factor"] == math.inf and wins_only["max_drawdown"] == 0
    nothing = sweep(bars, np.array([], dtype=np.int64), 1, table, instrument=ALWAYS_OPEN)
    assert (nothing["trades"] == 0).all() and (nothing["total_pnl"] == 0).all()
    for column in ["pnl_per_trade", "win_rate", "profit_factor", "sharpe_per_trade",
                   "avg_bars_held"]:
        assert nothing[column].isna().all()
    # a loss on the first trade is a drawdown from the starting equity of 0
    first_loss = sweep(bars, np.array([0]), -1, table.iloc[:1], instrument=ALWAYS_OPEN)
    assert first_loss.iloc[0]["max_drawdown"] == pytest.approx(2.0)


def test_columns_dtypes_and_order():
    bars = trending_bars()
    table = pd.DataFrame({"target_ticks": [4.0, 8.0, np.nan], "stop_ticks": [4, 0, 2]},
                         index=[7, 3, 5])
    result = sweep(bars, np.array([0, 5]), 1, table, instrument=ALWAYS_OPEN)
    assert list(result.columns) == ["target_ticks", "stop_ticks", *SUMMARY_COLUMNS]
    assert list(result.index) == [7, 3, 5]
    assert result["trades"].dtype == np.int64 and result["total_pnl"].dtype == np.float64
    assert sweep(bars, np.array([0]), 1, table.iloc[:0], instrument=ALWAYS_OPEN).empty


def test_missing_columns_switch_rules_off_and_every_row_pays_the_run_costs():
    bars = trending_bars()
    table = pd.DataFrame({"target_ticks": [4, 8]})
    costs = Costs(commission=1.0, spread_ticks=1, slippage_ticks=2)
    result = sweep(bars, np.array([0, 5]), np.array([1, -1]), table, instrument=MNQ,
                   costs=costs)
    for k in range(2):
        trades = simulate(bars, np.array([0, 5]), np.array([1, -1]),
                          ExitParams(target_ticks=table["target_ticks"][k]), instrument=MNQ,
                          costs=costs)
        assert result["total_pnl"][k] == pytest.approx(trades["pnl"].sum())


@pytest.mark.parametrize("column", ["cost_points", "slippage_ticks", "commission",
                                    "spread_ticks", "fee_bps", "quantity"])
def test_a_cost_column_in_a_parameter_table_is_refused(column):
    # a cost is a fact about the market: per-row costs would let a search pick the cheapest
    table = pd.DataFrame({"target_ticks": [4, 8], column: [0.25, 1.0]})
    with pytest.raises(ConfigError, match=f"{column} is a cost.*instruments.yaml"):
        sweep(trending_bars(), np.array([0, 5]), 1, table, instrument=MNQ)


def test_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(3)
    n = 3000
    close = 100 + np.cumsum(rng.integers(-3, 4, n)) * 0.25
    open_ = np.concatenate(([100.0], close[:-1]))
    bars = make_bars(list(zip(open_, np.maximum(open_, close) + 0.5,
                              np.minimum(open_, close) - 0.5, close, strict=True)))
    entries = np.sort(rng.choice(n, 300, replace=False))
    sides = rng.choice([1, -1], 300)
    table = pd.DataFrame({"stop_ticks": rng.integers(0, 20, 40),
                          "target_ticks": rng.integers(0, 20, 40),
                          "trail_tight_ticks": rng.integers(0, 6, 40)})
    serial = sweep(bars, entries, sides, table, instrument=MNQ)
    before = numba.get_num_threads()
    with force_parallel():
        try:
            numba.set_num_threads(1)
            single = sweep(bars, entries, sides, table, instrument=MNQ)
        finally:
            numba.set_num_threads(before)
        parallel = sweep(bars, entries, sides, table, instrument=MNQ)
    pd.testing.assert_frame_equal(single, serial)
    pd.testing.assert_frame_equal(parallel, serial)


# ---------------------------------------------------------------------------------------------
# bad parameter tables

@pytest.mark.parametrize(("column", "values", "words"), [
    ("stop_ticks", [4, -1], "row 'b' (position 1): stop_ticks must be >= 0"),
    ("max_hold_bars", [1.5, 2], "row 'a' (position 0): max_hold_bars must be a whole number"),
    ("target_ticks", [np.inf, 1], "target_ticks must be finite"),
    ("trail_widen_points", ["x", 1], "trail_widen_points must be a number"),
    ("stop_tick", [1, 2], "unknown column(s) stop_tick"),
])
def test_bad_tables_name_the_parameter_and_row(column, values, words):
    table = pd.DataFrame({column: values}, index=["a", "b"])
    with pytest.raises(ConfigError) as info:
        sweep(make_bars(FLAT * 3), np.array([0]), 1, table, instrument=ALWAYS_OPEN)
    assert words in str(info.value)


def test_wide_trail_below_tight_is_an_error():
    table = pd.DataFrame({"trail_tight_ticks": [4, 8, 8], "trail_wide_ticks": [8, 0, 6]})
    with pytest.raises(ConfigError, match=r"row 2 \(position 2\): trail_wide_ticks \(6.0\)"):
        sweep(make_bars(FLAT * 3), np.array([0]), 1, table, instrument=ALWAYS_OPEN)


def test_param_table_must_be_a_frame():
    with pytest.raises(ConfigError, match="DataFrame"):
        sweep(make_bars(FLAT * 3), np.array([0]), 1, [{"stop_ticks": 1}],
              instrument=ALWAYS_OPEN)
