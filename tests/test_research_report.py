"""The HTML report of a research run (research.report) on a hand-built run folder."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from stratforge.data.atomic import json_ready
from stratforge.discovery.library import FeatureScaler, Template, TemplateLibrary
from stratforge.errors import DataError
from stratforge.features.vectors import FEATURE_NAMES
from stratforge.research.outputs import MEASURED_RATES
from stratforge.research.report import SECTION_TITLES, render_report, write_report
from stratforge.research.report_charts import anova_figure, equal_width_bins, heatmap_figure
from stratforge.search.anova import MULTI_COLUMNS, ONE_WAY_COLUMNS, TOP_COLUMNS, AnovaResult
from stratforge.search.judgement import judge_run
from stratforge.search.validation import CandidateResult, ValidationSettings

TRAIN_END = "2024-01-01T00:00:00+00:00"
TEMPLATES = ("T0001", "T0002", "T<b>3")
PARAM_COLUMNS = ("stop_ticks", "target_ticks", "max_hold_bars")


def _summary(symbol: str = "MNQ", best: bool = True) -> dict:
    out = {
        "run_id": "run_20261122_101500_ab12cd34", "symbol": symbol,
        "created": "2026-11-22T10:15:00+00:00",
        "config": {"timeframes": ["1m", "5m"], "mc_iters": 20, "seed": 7},
        "data": {"first": "2023-01-02T23:00:00+00:00", "last": "2024-06-28T21:00:00+00:00",
                 "train_end": TRAIN_END, "bars": {"1m": 82565, "5m": 16513}},
        "phases": {"discovery": {"seconds": 3.1, "patterns": 4831, "templates": 3},
                   "sweep": {"seconds": 40.2, "pairs": 6, "backtests": 120},
                   "validation": {"seconds": 5.0, "candidates": 6}},
        "tiers": {"PRODUCTION": 1, "CANDIDATE": 1, "UNPROVEN": 2, "TOXIC": 2},
        "overfitting": _overfitting_block(),
        "discovery_levels": [
            {"level": 0, "timeframe": "5m", "bars_scanned": 9000, "windows": 0, "patterns": 80,
             "in_sample_patterns": 55, "full_scan": True, "skipped": False},
            {"level": 1, "timeframe": "1m", "bars_scanned": 7000, "windows": 60,
             "patterns": 150, "in_sample_patterns": 100, "full_scan": False,
             "skipped": False}],
    }
    if best:
        out["best"] = [{
            "strategy_id": "T0001_1m", "template_id": "T0001", "timeframe": "1m",
            "direction": 1, "tier": 1, "tier_name": "PRODUCTION",
            "params": {"stop_ticks": 40, "target_ticks": 120, "max_hold_bars": 12},
            "in_sample": {"trades": 256, "win_rate": 0.55, "pnl": 1234.5, "sharpe": 1.9},
            "out_of_sample": {"trades": 92, "win_rate": 0.53, "pnl": 543.2, "sharpe": 1.2},
            "dsr": 0.97, "pbo": 0.21}]
    return out


def _overfitting_block() -> dict:
    """The overfitting block through the real judgement, from two hand-made candidates."""
    rng = np.random.default_rng(9)
    days = pd.date_range("2023-01-02", periods=60)
    results = []
    for k, name in enumerate(("T0001_1m", "T0002_1m")):
        row = {"strategy_id": name, "is_pnl": 10.0, "is_sharpe": 1.0, "oos_trades": 40,
               "oos_win_rate": 0.5, "oos_pnl": 5.0, "oos_sharpe": 0.5, "pbo": 0.3,
               "pbo_note": ""}
        empty = pd.DataFrame({"exit_time": [], "pnl": []})
        daily = pd.DataFrame(rng.normal(size=(60, 4)) + k, index=days)
        results.append(CandidateResult(row, empty, empty, rng.normal(0.2, 1.0, 40), daily,
                                       300))
    trials = pd.DataFrame({"trades": rng.integers(5, 60, 900),
                           "sharpe_per_trade": rng.normal(0.0, 0.2, 900)})
    _, block = judge_run(trials, results, ValidationSettings(pbo_splits=4))
    return json.loads(json.dumps(json_ready({**block, "measured_rates": MEASURED_RATES})))


def _sweep(rng: np.random.Generator, n_sets: int = 20) -> pd.DataFrame:
    rows = []
    for template in TEMPLATES:
        for tf in ("1m", "5m"):
            for set_id in range(n_sets):
                stop, target = int(rng.integers(8, 80)), int(rng.integers(8, 200))
                trades = int(rng.integers(0, 40))
                pnl = float(rng.normal(0.5, 3.0)) if trades else math.nan
                rows.append({"template_id": template, "timeframe": tf, "set_id": set_id,
                             "stop_ticks": stop, "target_ticks": target,
                             "max_hold_bars": int(rng.integers(5, 50)),
                             "trades": trades, "wins": trades // 2, "losses": trades - trades // 2,
                             "total_pnl": pnl * trades if trades else 0.0,
                             "pnl_per_trade": pnl, "win_rate": 0.5, "profit_factor": 1.1,
                             "sharpe_per_trade": pnl / 3.0 if trades else math.nan,
                             "max_drawdown": 10.0, "avg_bars_held": 4.0})
    return pd.DataFrame(rows)


def _anova_json() -> dict:
    """anova.json through the real serialiser (AnovaResult.to_json), from hand-made tables."""
    nan = math.nan
    multi = pd.DataFrame([
        {"factor": "stop_bucket", "df": 3.0, "sum_sq": 30.0, "F": 12.0, "p_value": 0.0004,
         "eta_squared": 0.30, "partial_eta_squared": 0.35, "stars": "***"},
        {"factor": "timeframe", "df": 1.0, "sum_sq": 5.0, "F": 2.0, "p_value": 0.2,
         "eta_squared": 0.05, "partial_eta_squared": 0.06, "stars": ""},
        {"factor": "Residual", "df": 100.0, "sum_sq": 65.0, "F": nan, "p_value": nan,
         "eta_squared": 0.65, "partial_eta_squared": nan, "stars": ""},
    ], columns=list(MULTI_COLUMNS))
    one_way = pd.DataFrame([
        {"factor": "stop_bucket", "column": "stop_ticks", "status": "tested", "n_rows": 100,
         "n_groups": 4, "F": 10.0, "p_value": 0.003, "eta_squared": 0.25, "stars": "**",
         "groups": ["[8, 20]", "(20, 40]"], "dropped_groups": []},
    ], columns=list(ONE_WAY_COLUMNS))
    top = pd.DataFrame([
        {"rank": 1, "template": "T0002", "timeframe": "5m", "n_param_sets": 20,
         "mean_trades": 10.0, "mean_sharpe_per_trade": 0.2, "mean_pnl_per_trade": 0.5,
         "param_sets": []},
    ], columns=list(TOP_COLUMNS))
    result = AnovaResult(one_way=one_way, multi=multi, top_combos=top, excluded_rows=3,
                         n_rows=117, multi_note="fitted: pnl_per_trade ~ C(stop_bucket)")
    return result.to_json()


def _validation() -> pd.DataFrame:
    rows = []
    tiers = {"T0001": (1, "PRODUCTION"), "T0002": (2, "CANDIDATE"), "T<b>3": (4, "TOXIC")}
    for i, template in enumerate(TEMPLATES):
        for j, tf in enumerate(("1m", "5m")):
            tier, name = tiers[template] if j == 0 else (3, "UNPROVEN")
            rows.append({
                "strategy_id": f"{template}_{tf}", "template_id": template, "timeframe": tf,
                "direction": np.int8(1 if i % 2 == 0 else -1),
                "params": json.dumps({"stop_ticks": 40, "target_ticks": 120}),
                "n_trials": 100, "is_trades": 200 + i, "is_win_rate": 0.5, "is_pnl": 100.0 * i,
                "is_sharpe": 1.0, "is_sharpe_per_trade": 0.1 + 0.01 * i + 0.001 * j,
                "oos_trades": 50, "oos_p_value": 0.01, "oos_accepted": True,
                "oos_win_rate": 0.52, "oos_pnl": 50.0 - 10 * i - j, "oos_sharpe": 0.8,
                "oos_sharpe_per_trade": 0.05, "dsr": 0.9, "pbo": math.nan,
                "wf_positive_folds": 3, "wf_folds": 4, "wf_oos_pnl": 42.0,
                "wf_efficiency": 0.8,
                "tier": np.int8(tier), "tier_name": name, "reasons": "dsr < 0.95"})
    frame = pd.DataFrame(rows)
    return frame.astype({"direction": "int8", "tier": "int8"})


def _curves() -> pd.DataFrame:
    times = pd.date_range("2023-06-01", periods=12, freq="30D", tz="UTC")
    rows = []
    for sid in ("T0001_1m", "T0002_1m"):
        for k, t in enumerate(times):
            segment = "in_sample" if t < pd.Timestamp(TRAIN_END) else "out_of_sample"
            rows.append({"strategy_id": sid, "segment": segment, "exit_time": t,
                         "pnl": float((-1) ** k * 10 + k)})
    return pd.DataFrame(rows)


def _library() -> TemplateLibrary:
    templates = []
    for i, template_id in enumerate(TEMPLATES):
        raw = [0.1 * (k + 1) for k in range(len(FEATURE_NAMES))]
        raw[0], raw[2] = 1.5 + i, 0.2 * (i + 1)
        members = 5 * (i + 1)
        templates.append(Template(
            template_id=template_id, timeframes=["1m", "5m"], centroid_scaled=[0.0] * 14,
            centroid_raw=raw, members=members,
            member_ids=[f"P{i}_{m}" for m in range(members)], direction=1 if i != 1 else -1))
    scaler = FeatureScaler(mean=[0.0] * 14, scale=[1.0] * 14, n_fit=10)
    return TemplateLibrary(templates, {"1m": scaler, "5m": scaler})


def _optimize_report() -> pd.DataFrame:
    """The optimize phase's report of the library: no split tried on any template."""
    return pd.DataFrame([{"template_id": t, "parent_id": None, "depth": 0, "members": 5 * (i + 1),
                          "fission_members": 0, "silhouette": math.nan, "k": 0,
                          "holdout_members": 0, "holdout_gain": math.nan,
                          "holdout_p": math.nan, "split": False, "stop_ticks": 40.0,
                          "target_ticks": 120.0} for i, t in enumerate(TEMPLATES)])


def _write_full_run(folder: Path, symbol: str = "MNQ") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    (folder / "summary.json").write_text(json.dumps(_summary(symbol)))
    sweep = _sweep(rng)
    (folder / "sweep").mkdir()
    sweep.to_parquet(folder / "sweep" / "summaries.parquet")
    (folder / "refine").mkdir()
    _sweep(rng, n_sets=5).to_parquet(folder / "refine" / "trials.parquet")
    history = {"rounds": [{"round": r, "allocation": {"T0001_1m": 3}, "best_key": "T0001_1m",
                           "best_sharpe": 0.1 + 0.02 * r} for r in range(5)]}
    (folder / "refine" / "history.json").write_text(json.dumps(history))
    (folder / "anova.json").write_text(json.dumps(_anova_json()))
    _validation().to_parquet(folder / "validation.parquet")
    _curves().to_parquet(folder / "curves.parquet")
    _library().save(folder / "library")
    (folder / "optimize").mkdir()
    _optimize_report().to_parquet(folder / "optimize" / "report.parquet")
    (folder / "playbook.json").write_text(json.dumps({"strategies": [{"id": 1}, {"id": 2}]}))
    return folder


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> Path:
    return _write_full_run(tmp_path_factory.mktemp("report") / "run")


@pytest.fixture(scope="module")
def full_html(full_run) -> str:
    return write_report(full_run).read_text(encoding="utf-8")


def _without_plotlyjs(page: str) -> str:
    return page.replace(get_plotlyjs(), "")


def test_report_is_written_atomically(full_run, full_html):
    path = full_run / "report.html"
    assert path.is_file()
    assert not [p.name for p in full_run.iterdir() if p.name.endswith(".tmp")]
    assert full_html.startswith("<!DOCTYPE html>")


def test_plotlyjs_embedded_once_and_nothing_external(full_html):
    assert full_html.count(get_plotlyjs()) == 1
    rest = _without_plotlyjs(full_html)
    assert "<script src" not in rest.lower()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", rest, re.I)
    assert "cdn" not in rest.lower()
    assert "@import" not in rest and "<link" not in rest


def test_every_section_and_chart_is_present(full_html):
    rest = _without_plotlyjs(full_html)
    for title in SECTION_TITLES.values():
        assert f"<h2>{title}</h2>" in rest
    positions = [rest.index(f'<section id="{key}">') for key in SECTION_TITLES]
    assert positions == sorted(positions)
    for div_id in ("fig-equity", "fig-anova", "fig-heatmap-1", "fig-templates", "fig-refine"):
        assert f'id="{div_id}"' in rest
    assert "in this run" not in rest  # every artifact is there: no "no ... in this run" note


def test_ids_tiers_and_numbers_appear(full_html):
    rest = _without_plotlyjs(full_html)
    for text in ("run_20261122_101500_ab12cd34", "T0001_1m", "T0002_5m", "PRODUCTION",
                 "CANDIDATE", "UNPROVEN", "TOXIC", "1,234.50", "55.0%", "82,565",
                 "stop_ticks=40, target_ticks=120", "Playbook strategies"):
        assert text in rest, text


def test_tier_table_is_sorted_by_tier_then_the_in_sample_criterion(full_html):
    table = _without_plotlyjs(full_html).split('<section id="tiers">')[1].split("</section>")[0]
    order = re.findall(r"<td>(T[^<]*_(?:1m|5m))</td>", table)
    # tier 1 T0001_1m, tier 2 T0002_1m, tier 3 (UNPROVEN) by in-sample Sharpe per trade
    # (highest first, although their out-of-sample PnL runs the other way), tier 4 last
    assert order == ["T0001_1m", "T0002_1m", "T&lt;b&gt;3_5m", "T0002_5m", "T0001_5m",
                     "T&lt;b&gt;3_1m"]


def test_overfitting_section_states_trials_threshold_and_run_pbo(full_html):
    section = _without_plotlyjs(full_html).split('<section id="overfitting">')[1]
    section = section.split("</section>")[0]
    block = _overfitting_block()
    for text in (f"{block['trials']['raw']:,}", f"{block['trials']['eligible']:,}",
                 f"{block['trials']['effective']:,.1f}", "participation ratio",
                 f"{block['dsr']['threshold_t']:,.2f}", "Benjamini-Hochberg",
                 "Run PBO", "measured false-discovery rates"):
        assert text in section, text


def test_same_folder_gives_identical_bytes(full_run, full_html):
    assert render_report(full_run) == full_html
    write_report(full_run)
    assert (full_run / "report.html").read_text(encoding="utf-8") == full_html


def test_text_is_escaped(tmp_path):
    run = _write_full_run(tmp_path / "run", symbol="MNQ<b>x</b>")
    rest = _without_plotlyjs(render_report(run))
    assert "MNQ&lt;b&gt;x&lt;/b&gt;" in rest
    assert "T&lt;b&gt;3" in rest
    assert "<b>" not in rest


def test_summary_only_folder_renders_notes(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    summary = _summary(best=False)
    del summary["tiers"]
    (run / "summary.json").write_text(json.dumps(summary))
    path = write_report(run)
    rest = _without_plotlyjs(path.read_text(encoding="utf-8"))
    for note in ("no best strategies in this run", "no equity curves in this run",
                 "no validation in this run", "no ANOVA in this run", "no sweep in this run",
                 "no template library in this run", "no refinement in this run",
                 "no tiers in this run"):
        assert note in rest, note
    assert 'class="plotly-graph-div"' not in rest
    for title in SECTION_TITLES.values():
        assert f"<h2>{title}</h2>" in rest


def _sweep_only_run(folder: Path) -> Path:
    (folder / "sweep").mkdir(parents=True)
    summary = _summary(best=False)
    summary["phases"] = {"sweep": {"seconds": 1.0}}
    (folder / "summary.json").write_text(json.dumps(summary))
    _sweep(np.random.default_rng(5)).to_parquet(folder / "sweep" / "summaries.parquet")
    return folder


def test_sweep_only_run_maps_the_best_mean_pnl_combos(tmp_path):
    rest = _without_plotlyjs(render_report(_sweep_only_run(tmp_path / "run")))
    assert 'id="fig-heatmap-4"' in rest and 'id="fig-heatmap-5"' not in rest
    assert "the highest mean PnL per trade" in rest
    assert "no validation in this run" in rest and "no ANOVA in this run" in rest


def test_without_best_strategies_the_top_anova_combos_are_mapped(tmp_path):
    run = _sweep_only_run(tmp_path / "run")
    (run / "anova.json").write_text(json.dumps(_anova_json()))
    rest = _without_plotlyjs(render_report(run))
    assert "the top ANOVA combos" in rest and "T0002 @ 5m" in rest
    assert 'id="fig-heatmap-1"' in rest and 'id="fig-heatmap-2"' not in rest


def test_anova_chart_shows_eta_squared_with_stars():
    fig = anova_figure(_anova_json())
    bars = fig.data[0]
    assert list(bars.x) == ["stop_bucket", "timeframe"]  # Residual left out, largest first
    assert list(bars.y) == [0.30, 0.05] and list(bars.text) == ["***", ""]
    one_way_only = {**_anova_json(), "multi": []}
    bars = anova_figure(one_way_only).data[0]
    assert list(bars.x) == ["stop_bucket"] and list(bars.y) == [0.25]
    assert list(bars.text) == ["**"]
    assert anova_figure({"multi": [], "one_way": []}) is None


def test_missing_summary_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"summary\.json is missing"):
        render_report(tmp_path)


def test_damaged_artifact_is_reported_not_fatal(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps(_summary()))
    (run / "validation.parquet").write_bytes(b"not parquet")
    rest = _without_plotlyjs(render_report(run))
    assert "not readable Parquet" in rest
    assert "no validation in this run" in rest


def test_equal_width_bins_against_hand_edges():
    values = np.array([0.0, 5.0, 10.0, 20.0, 30.0, 59.9, 60.0])
    codes, labels = equal_width_bins(values, max_bins=6)
    assert labels[0] == "0–10" and labels[-1] == "50–60" and len(labels) == 6
    assert codes.tolist() == [0, 0, 1, 2, 3, 5, 5]
    codes, labels = equal_width_bins(np.array([7.0, 7.0]))
    assert codes.tolist() == [0, 0] and labels == ["7"]
    codes, labels = equal_width_bins(np.array([10.0, 20.0, 10.0]))
    assert labels == ["10–15", "15–20"] and codes.tolist() == [0, 1, 0]


def test_heatmap_cells_are_means_over_traded_rows():
    rows = pd.DataFrame({"stop_ticks": [10, 10, 20, 20, 20], "target_ticks": [30, 30, 30, 50, 50],
                         "trades": [1, 3, 2, 0, 4],
                         "pnl_per_trade": [1.0, 3.0, -2.0, 99.0, 5.0]})
    fig = heatmap_figure(rows, "t")
    heat = fig.data[0]
    assert list(heat.x) == ["10–15", "15–20"] and list(heat.y) == ["30–40", "40–50"]
    assert [list(r) for r in heat.z] == [[2.0, -2.0], [None, 5.0]]
    assert heat.zmid == 0
