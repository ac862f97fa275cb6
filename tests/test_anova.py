"""ANOVA factor analysis (search.anova) against independent computations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from stratforge.search.anova import (
    AnovaResult,
    analyze,
    quantile_buckets,
    stars,
    write_anova,
)


def _hand_f(groups: list[np.ndarray]) -> tuple[float, float, float]:
    """F, p and eta squared by hand: (SS_b/(k-1)) / (SS_w/(N-k)), SS_b/SS_t."""
    pooled = np.concatenate(groups)
    grand = pooled.mean()
    k, n = len(groups), len(pooled)
    ss_b = sum(len(g) * (g.mean() - grand) ** 2 for g in groups)
    ss_w = sum(((g - g.mean()) ** 2).sum() for g in groups)
    f = (ss_b / (k - 1)) / (ss_w / (n - k))
    return f, stats.f.sf(f, k - 1, n - k), ss_b / (ss_b + ss_w)


def _small_table() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows = []
    for tf, shift, size in (("1m", 0.0, 12), ("5m", 0.8, 10), ("15m", -0.5, 11), ("1h", 3.0, 4)):
        for v in rng.normal(shift, 1.0, size):
            rows.append({"timeframe": tf, "trades": 8, "pnl_per_trade": float(v)})
    return pd.DataFrame(rows)


def test_one_way_matches_scipy_and_hand_computation() -> None:
    table = _small_table()
    res = analyze(table)
    row = res.one_way.set_index("factor").loc["timeframe"]
    groups = [table.loc[table.timeframe == tf, "pnl_per_trade"].to_numpy()
              for tf in ("15m", "1m", "5m")]
    f_hand, p_hand, eta_hand = _hand_f(groups)
    ref = stats.f_oneway(*groups)
    assert row["status"] == "tested"
    assert row["n_groups"] == 3 and row["n_rows"] == 33
    assert row["F"] == pytest.approx(ref.statistic, rel=1e-12)
    assert row["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert row["F"] == pytest.approx(f_hand, rel=1e-10)
    assert row["p_value"] == pytest.approx(p_hand, rel=1e-9)
    assert row["eta_squared"] == pytest.approx(eta_hand, rel=1e-10)
    # the 4-row group is dropped and listed
    assert row["dropped_groups"] == ["1h"]
    assert sorted(row["groups"]) == ["15m", "1m", "5m"]


def test_absent_and_untestable_factors_reported() -> None:
    table = _small_table()
    table["template"] = "T1"
    res = analyze(table)
    ow = res.one_way.set_index("factor")
    assert ow.loc["stop_bucket", "status"] == "skipped: column absent"
    assert "stop_bucket" in res.skipped_factors and "timeframe" not in res.skipped_factors
    assert ow.loc["template", "status"].startswith("not testable")
    assert np.isnan(ow.loc["template", "p_value"])


def test_excluded_rows_counted() -> None:
    table = _small_table()
    extra = pd.DataFrame({"timeframe": ["1m"] * 3, "trades": [0, 5, 3],
                          "pnl_per_trade": [0.0, np.nan, 1.0]})
    res = analyze(pd.concat([table, extra], ignore_index=True))
    assert res.excluded_rows == 2
    assert res.n_rows == len(table) + 1


def _planted(seed: int = 3, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    stop = rng.integers(4, 40, n)
    target = rng.integers(4, 80, n)
    pnl = 0.5 * stop + rng.normal(0.0, 2.0, n)  # strong stop effect, none from target
    return pd.DataFrame({
        "template": rng.choice(["A", "B"], n), "timeframe": rng.choice(["1m", "5m"], n),
        "stop_ticks": stop, "target_ticks": target, "max_hold_bars": rng.integers(5, 50, n),
        "trail_widen_yardsticks": rng.uniform(0.5, 3.0, n), "trades": rng.integers(1, 30, n),
        "pnl_per_trade": pnl, "sharpe_per_trade": rng.normal(0, 1, n),
    })


def test_planted_effect_found_one_way_and_multi() -> None:
    res = analyze(_planted())
    ow = res.one_way.set_index("factor")
    assert ow.loc["stop_bucket", "n_groups"] == 4
    assert ow.loc["stop_bucket", "p_value"] < 1e-30
    assert ow.loc["stop_bucket", "eta_squared"] > 0.5
    assert ow.loc["stop_bucket", "stars"] == "***"
    assert ow.loc["target_bucket", "p_value"] > 0.1
    assert ow.loc["target_bucket", "eta_squared"] < 0.05
    multi = res.multi.set_index("factor")
    assert set(multi.index) == {"timeframe", "template", "stop_bucket", "target_bucket",
                                "hold_bucket", "trail_regime", "Residual"}
    assert multi.loc["stop_bucket", "p_value"] < 1e-30
    assert multi.loc["target_bucket", "p_value"] > 0.1
    assert multi.loc["stop_bucket", "eta_squared"] > 0.5
    assert (multi.loc["stop_bucket", "partial_eta_squared"]
            >= multi.loc["stop_bucket", "eta_squared"])
    # the multi-factor sums of squares are consistent with their F statistics
    resid_ms = multi.loc["Residual", "sum_sq"] / multi.loc["Residual", "df"]
    stop = multi.loc["stop_bucket"]
    assert stop["F"] == pytest.approx(stop["sum_sq"] / stop["df"] / resid_ms, rel=1e-9)


def test_multi_single_factor_equals_one_way() -> None:
    table = _small_table()
    table = table[table.timeframe != "1h"]
    res = analyze(table)
    one = res.one_way.set_index("factor").loc["timeframe"]
    multi = res.multi.set_index("factor").loc["timeframe"]
    assert multi["F"] == pytest.approx(one["F"], rel=1e-9)
    assert multi["p_value"] == pytest.approx(one["p_value"], rel=1e-9)
    assert multi["eta_squared"] == pytest.approx(one["eta_squared"], rel=1e-9)


def test_quantile_buckets_labels() -> None:
    b = quantile_buckets(pd.Series([1.0, 2, 3, 4, 5, 6, 7, 8]), 4)
    assert list(b.cat.categories) == ["[1, 2.75]", "(2.75, 4.5]", "(4.5, 6.25]", "(6.25, 8]"]
    assert list(b.astype(str)) == ["[1, 2.75]"] * 2 + ["(2.75, 4.5]"] * 2 + [
        "(4.5, 6.25]"] * 2 + ["(6.25, 8]"] * 2
    const = quantile_buckets(pd.Series([3.0, 3.0, np.nan]), 4)
    assert list(const.cat.categories) == ["[3, 3]"]
    assert const.isna().tolist() == [False, False, True]
    few = quantile_buckets(pd.Series([0.5, 1.0, 1.0, 0.5, 1.0]), 4)
    assert list(few.cat.categories) == ["[0.5, 0.5]", "[1, 1]"]
    assert list(few.astype(str)) == ["[0.5, 0.5]", "[1, 1]", "[1, 1]", "[0.5, 0.5]", "[1, 1]"]


def test_top_combos_min_trades_and_order() -> None:
    rows = []
    spec = {("A", "1m"): (10, 0.9), ("A", "5m"): (3, 5.0), ("B", "1m"): (6, 0.2),
            ("B", "5m"): (5, 0.5)}
    for (tpl, tf), (trades, sharpe) in spec.items():
        for i in range(3):
            rows.append({"template": tpl, "timeframe": tf, "stop_ticks": 8 + i,
                         "trades": trades, "pnl_per_trade": sharpe * 2,
                         "sharpe_per_trade": sharpe + 0.1 * (i - 1)})
    res = analyze(pd.DataFrame(rows), min_trades=5, top_n=2)
    top = res.top_combos
    assert list(zip(top.template, top.timeframe, strict=True)) == [("A", "1m"), ("B", "5m")]
    assert list(top["rank"]) == [1, 2]
    assert top["mean_sharpe_per_trade"].iloc[0] == pytest.approx(0.9)
    assert top["mean_trades"].iloc[0] == 10
    assert top["param_sets"].iloc[0][0]["stop_ticks"] == 10  # best set first
    everyone = analyze(pd.DataFrame(rows), min_trades=0).top_combos
    assert everyone.iloc[0]["template"] == "A" and everyone.iloc[0]["timeframe"] == "5m"


def test_files_written_and_readable(tmp_path) -> None:
    res = analyze(_planted())
    assert isinstance(res, AnovaResult)
    json_path, report_path = write_anova(res, tmp_path / "out")
    doc = json.loads(json_path.read_text())
    assert doc["n_rows"] == res.n_rows and doc["excluded_rows"] == 0
    assert {r["factor"] for r in doc["one_way"]} >= {"stop_bucket", "target_bucket"}
    assert doc["top_combos"] and "param_sets" in doc["top_combos"][0]
    text = report_path.read_text()
    assert "stop_bucket" in text and "***" in text and "Signif. codes" in text
    assert not list((tmp_path / "out").glob("*.tmp"))


@pytest.mark.parametrize(("p", "expected"), [
    (0.0, "***"), (0.000999, "***"), (0.001, "**"), (0.00999, "**"), (0.01, "*"),
    (0.0499, "*"), (0.05, "."), (0.0999, "."), (0.1, ""), (0.5, ""), (float("nan"), ""),
    (None, ""),
])
def test_stars_thresholds(p, expected) -> None:
    assert stars(p) == expected


def test_multi_factor_model_on_a_seeded_sample_of_rows() -> None:
    table = _planted(n=2000)
    sampled = analyze(table, max_model_rows=500, random_state=1)
    again = analyze(table, max_model_rows=500, random_state=1)
    pd.testing.assert_frame_equal(sampled.multi, again.multi)
    assert "random sample of 500 rows" in sampled.multi_note
    residual = sampled.multi.set_index("factor").loc["Residual", "df"]
    full = analyze(table, max_model_rows=None)
    assert residual < full.multi.set_index("factor").loc["Residual", "df"]
    # the sample is the same model on 500 of the rows: the planted effect still dominates
    multi = sampled.multi.set_index("factor")
    assert multi.loc["stop_bucket", "p_value"] < 1e-20
    assert multi.loc["target_bucket", "p_value"] > 0.01
    # the one-way tests and the ranking still use every row
    pd.testing.assert_frame_equal(sampled.one_way, full.one_way)
    pd.testing.assert_frame_equal(sampled.top_combos, full.top_combos)
