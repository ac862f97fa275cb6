"""``stratforge audit lookahead``: a feature that looks one bar ahead is named with its timeframe
and first differing bar; the built-in features (states, feature vectors with higher-timeframe
context, evolution features, template matches) report nothing. Two small synthetic markets:
MNQ-like 1m bars and FX-like 1h bars."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from stratforge.audit import audit_lookahead
from stratforge.audit.perturb import PERTURBATIONS, choose_cuts, perturbed_future
from stratforge.audit.user_features import evaluate_feature
from stratforge.cli.audit_commands import FOUND_EXIT_CODE
from stratforge.cli.main import app
from stratforge.data.atlas import build_atlas
from stratforge.data.demo import synthesize_into_store
from stratforge.data.load import load_bars
from stratforge.discovery.library import FeatureScaler, Template, TemplateLibrary
from stratforge.errors import ConfigError
from stratforge.features import FEATURE_NAMES
from stratforge.timeframes import parse_timeframe

runner = CliRunner()

PEEK_FILE = '''
def peek(bars):
    """The next bar's close: looks one bar ahead."""
    return bars["close"].shift(-1).rename("next_close")
'''


def peek(bars: pd.DataFrame) -> pd.Series:
    """Looks one bar ahead: the next bar's close."""
    return bars["close"].shift(-1).rename("next_close")


def causal(bars: pd.DataFrame) -> pd.DataFrame:
    """Two honest features: a 3-bar mean of the closes and the bar's range."""
    return pd.DataFrame({"mean3": bars["close"].rolling(3).mean(),
                         "range": bars["high"] - bars["low"]})


def _market(root: Path, symbol: str, days: int, resolution: str) -> Path:
    home = root / symbol
    synthesize_into_store(symbol, days=days, seed=11, resolution=resolution, home=home)
    build_atlas(symbol, home=home)
    return home


@pytest.fixture(scope="module")
def mnq_home(tmp_path_factory) -> Path:
    return _market(tmp_path_factory.mktemp("audit"), "MNQ", 6, "1m")


@pytest.fixture(scope="module")
def fx_home(tmp_path_factory) -> Path:
    return _market(tmp_path_factory.mktemp("audit"), "EURUSD", 80, "1h")


def _last_complete_bar(home: Path, symbol: str, timeframe: str, cut: str) -> int:
    """Row of the last intraday bar whose start plus duration is at or before ``cut``."""
    bars = load_bars(symbol, timeframe, home=home)
    ends = bars["ts"] + pd.Timedelta(seconds=parse_timeframe(timeframe).seconds)
    return int(np.flatnonzero((ends <= pd.Timestamp(cut)).to_numpy())[-1])


@pytest.mark.parametrize(("market", "symbol", "timeframes"),
                         [("mnq_home", "MNQ", ("1m", "5m", "15m")),
                          ("fx_home", "EURUSD", ("1h", "4h"))])
def test_one_bar_peek_is_named_and_builtin_features_are_clean(request, market, symbol,
                                                                timeframes):
    home = request.getfixturevalue(market)
    report = audit_lookahead(symbol, features=[peek, causal], cuts=3, seed=5, home=home)
    assert report.timeframes == timeframes  # the store's research timeframes
    assert report.features["states"] > 0 and report.features["vector"] > 0
    assert report.features["evolution"] > 0 and report.features["user"] == 3 * len(timeframes)
    # exactly the peeking feature, on every timeframe; nothing built in, nothing causal
    assert [(f.source, f.feature, f.timeframe) for f in report.findings] == \
        [("user", "next_close", tf) for tf in timeframes]
    first_cut = report.cuts[0]
    for finding in report.findings:
        # the first differing bar is the last bar complete at the earliest cut: its value
        # is the next bar's close, which the cut has not seen yet
        row = _last_complete_bar(home, symbol, finding.timeframe, first_cut)
        bars = load_bars(symbol, finding.timeframe, home=home)
        assert finding.first_bar_index == row
        assert pd.Timestamp(finding.first_bar) == bars["ts"].iat[row]
        assert finding.cut == first_cut and finding.check == "truncated"
        assert finding.cuts == 3 and set(finding.checks) == {"truncated", *PERTURBATIONS}
    assert report.summary_line().startswith("lookahead in")


def _library() -> TemplateLibrary:
    """Two wide templates (one long, one short) on 5m and 15m: most bars match one of them."""
    templates = [Template(template_id=f"T{k}", timeframes=["5m", "15m"],
                          centroid_scaled=[0.0] * 14, centroid_raw=[0.0] * 14, members=3,
                          member_ids=[f"P{k}_{m}" for m in range(3)], direction=direction)
                 for k, direction in enumerate((1, -1))]
    scaler = FeatureScaler(mean=[0.0] * 14, scale=[10.0] * 14, n_fit=3)
    return TemplateLibrary(templates, {"5m": scaler, "15m": scaler},
                           {"hierarchy": ["15m", "5m"], "symbol": "MNQ"})


def test_a_runs_template_matches_are_audited_and_clean(mnq_home):
    folder = mnq_home / "runs" / "run_audit_1"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"run_id": "run_audit_1",
                                                    "config": {"symbol": "MNQ"}}))
    _library().save(folder / "library")
    report = audit_lookahead(run_id="run_audit_1", cuts=2, home=mnq_home)
    assert report.symbol == "MNQ" and report.timeframes == ("5m", "15m")
    assert report.hierarchy == ("15m", "5m")
    assert report.features["match"] == 4  # two templates on two timeframes
    assert report.clean, report.findings
    with pytest.raises(ConfigError, match="run run_audit_1 is a run on MNQ, not EURUSD"):
        audit_lookahead("EURUSD", run_id="run_audit_1", home=mnq_home)
    with pytest.raises(ConfigError, match="no run run_nope"):
        audit_lookahead(run_id="run_nope", home=mnq_home)


def test_cli_names_a_feature_module_and_prints_json(mnq_home, tmp_path):
    module = tmp_path / "my_features.py"
    module.write_text(PEEK_FILE)
    found = runner.invoke(app, ["--home", str(mnq_home), "audit", "lookahead", "--symbol",
                                "MNQ", "--cuts", "2", "--timeframes", "5m",
                                "--feature", f"{module}:peek", "--json"])
    assert found.exit_code == FOUND_EXIT_CODE, found.output
    payload = json.loads(found.stdout)
    assert payload["clean"] is False
    assert [(f["source"], f["feature"], f["timeframe"]) for f in payload["findings"]] == \
        [("user", "next_close", "5m")]
    row = payload["findings"][0]["first_bar_index"]
    assert row == _last_complete_bar(mnq_home, "MNQ", "5m", payload["cuts"][0])

    clean = runner.invoke(app, ["--home", str(mnq_home), "audit", "lookahead", "-s", "MNQ",
                                "--cuts", "1", "--timeframes", "15m"])
    assert clean.exit_code == 0, clean.output
    lines = clean.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("no lookahead found:")
    assert "15m" in lines[0] and "1 cut(s)" in lines[0]

    bad = runner.invoke(app, ["--home", str(mnq_home), "audit", "lookahead", "-s", "MNQ",
                              "--feature", "no_such_module_xyz:f"])
    assert bad.exit_code == 1
    assert "no_such_module_xyz" in bad.output and "Traceback" not in bad.output


def test_missing_timeframes_and_misaligned_features_are_clear_errors(mnq_home):
    with pytest.raises(ConfigError, match="MNQ has no 1s bars"):
        audit_lookahead("MNQ", timeframes=["1s"], home=mnq_home)
    bars = load_bars("MNQ", "15m", home=mnq_home)
    with pytest.raises(ConfigError, match=r"returned 10 values for \d+ 15m bars"):
        evaluate_feature(lambda b: b["close"].iloc[:10], bars, "15m")


def test_perturbed_futures_keep_the_past_and_change_every_later_bar():
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 60)))
    open_ = np.r_[100.0, close[:-1]]
    bars = pd.DataFrame({"ts": pd.date_range("2024-01-02", periods=60, freq="min", tz="UTC"),
                         "open": open_, "high": np.maximum(open_, close) * 1.001,
                         "low": np.minimum(open_, close) * 0.999, "close": close,
                         "volume": rng.integers(1, 100, 60).astype(float)})
    for kind in PERTURBATIONS:
        out = perturbed_future(bars, 29, kind, seed=3)
        pd.testing.assert_frame_equal(out.iloc[:30], bars.iloc[:30])
        assert (out["ts"] == bars["ts"]).all()
        assert (out["high"] >= out[["open", "close"]].max(axis=1) - 1e-9).all()
        assert (out["low"] <= out[["open", "close"]].min(axis=1) + 1e-9).all()
        assert (out["low"] > 0).all()
        # the moves keep their sizes: the same multiset of |log close-to-close moves|
        moves = np.sort(np.abs(np.diff(np.log(out["close"].to_numpy()[29:]))))
        real = np.sort(np.abs(np.diff(np.log(bars["close"].to_numpy()[29:]))))
        np.testing.assert_allclose(moves, real, rtol=1e-9)
    mirrored = perturbed_future(bars, 29, "mirrored", seed=3)
    assert (mirrored["close"].iloc[30:] != bars["close"].iloc[30:]).all()


def test_cuts_are_seeded_distinct_and_inside_the_span():
    ends = np.arange(1000, dtype=np.int64) * 60
    coarse = np.arange(200, dtype=np.int64) * 300
    cuts = choose_cuts([ends, coarse], 6, seed=2)
    assert len(cuts) == 6 and (np.diff(cuts) > 0).all()
    assert cuts[0] >= coarse[50] and cuts[-1] <= coarse[-2]
    assert (choose_cuts([ends, coarse], 6, seed=2) == cuts).all()
    assert not (choose_cuts([ends, coarse], 6, seed=3) == cuts).all()
    assert set(FEATURE_NAMES)  # the vector names the audit reports come from here


def test_a_context_join_that_uses_the_open_parent_bar_is_found(mnq_home, monkeypatch):
    """Mutation check: make the feature vectors take the parent bar still open at the child's
    completion (one bar too late); the audit must name the parent-context dimensions."""
    import stratforge.features.vectors as vectors

    def open_parent(context_end: np.ndarray, own_end: np.ndarray) -> np.ndarray:
        return np.minimum(np.searchsorted(context_end, own_end, side="right"),
                          len(context_end) - 1)

    monkeypatch.setattr(vectors, "_completed_index", open_parent)
    report = audit_lookahead("MNQ", timeframes=["5m", "15m"], cuts=2, home=mnq_home)
    found = {(f.source, f.feature, f.timeframe) for f in report.findings}
    assert ("vector", "abs_parent_z", "5m") in found
    assert ("vector", "parent_dmi_along_move", "5m") in found
    assert {source for source, _, _ in found} == {"vector"}
    assert all(tf == "5m" for _, _, tf in found)  # the root uses its own bar


def test_a_whole_series_normalisation_differs_from_the_first_bar_of_the_span(mnq_home):
    def demeaned(bars: pd.DataFrame) -> pd.Series:
        return (bars["close"] - bars["close"].mean()).rename("demeaned")

    report = audit_lookahead("MNQ", timeframes=["15m"], features=[demeaned], cuts=2,
                             history=50, future=10, home=mnq_home)
    [finding] = report.findings
    assert (finding.feature, finding.timeframe) == ("demeaned", "15m")
    row = _last_complete_bar(mnq_home, "MNQ", "15m", report.cuts[0])
    assert finding.first_bar_index == row - 50 + 1  # the span's first bar
