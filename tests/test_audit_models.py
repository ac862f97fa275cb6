"""``stratforge audit lookahead`` on the evolution factory's feature builder and on stored
models replayed as the agent replays them: a builder that adds a feature looking one bar
ahead is named with the feature, timeframe and first differing bar; a model trained on that
feature is named too; the built-in builder and a model on built-in features are clean. The
result is kept where the dashboard reads it. A small synthetic MNQ market (1m bars)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from typer.testing import CliRunner

from stratforge.audit import audit_lookahead
from stratforge.audit.lookahead import lookahead_path, write_lookahead_report
from stratforge.audit.models import load_model_probe, stored_models
from stratforge.cli.audit_commands import FOUND_EXIT_CODE
from stratforge.cli.main import app
from stratforge.data.atlas import build_atlas
from stratforge.data.demo import synthesize_into_store
from stratforge.data.load import load_bars
from stratforge.errors import ConfigError
from stratforge.evolution.featureset import build_features
from stratforge.evolution.modelstore import save_model
from stratforge.features import compute_states
from stratforge.instruments import get_instrument
from stratforge.timeframes import parse_timeframe

runner = CliRunner()
CLEAN_FEATURES = ["ret_1", "rsi_14", "ret_z_60", "atr_ratio_14_100"]

LEAKY_FILE = '''
from stratforge.evolution.featureset import build_features


def leaky(bars, states, tick_size=None):
    frame = build_features(bars, states, tick_size=tick_size)
    frame["lead_ret"] = (bars["close"].shift(-1) / bars["close"] - 1.0).to_numpy()
    return frame
'''


def leaky(bars: pd.DataFrame, states: pd.DataFrame, tick_size: float | None = None
          ) -> pd.DataFrame:
    """The built-in features plus one that looks one bar ahead (the next bar's return)."""
    frame = build_features(bars, states, tick_size=tick_size)
    frame["lead_ret"] = (bars["close"].shift(-1) / bars["close"] - 1.0).to_numpy()
    return frame


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("audit_models") / "home"
    synthesize_into_store("MNQ", days=6, seed=11, resolution="1m", home=root)
    build_atlas("MNQ", home=root)
    return root


def _store_model(home: Path, features: list[str], tag: str, *, timeframe: str = "15m",
                 extra: dict | None = None) -> str:
    """A ridge model of the next bar's return on ``features`` of the leaky builder's frame,
    stored as the evolution factory stores one; returns its fingerprint."""
    bars = load_bars("MNQ", timeframe, home=home)
    tick = get_instrument("MNQ", home).tick_size
    frame = leaky(bars, compute_states(bars, tick_size=tick), tick_size=tick)
    target = (bars["close"].shift(-3) / bars["close"] - 1.0).to_numpy()
    x = frame[features].to_numpy()
    rows = np.isfinite(x).all(axis=1) & np.isfinite(target)
    model = Ridge(alpha=1.0).fit(x[rows], target[rows])
    predicted = model.predict(x[rows])
    fingerprint = hashlib.sha256(tag.encode()).hexdigest()
    identity = {"symbol": "MNQ", "timeframe": timeframe, "reference_symbols": [],
                **(extra or {})}
    save_model(fingerprint, model, {"identity": identity, "features": features,
                                    "prediction_centre": float(predicted.mean()),
                                    "prediction_scale": float(predicted.std())}, {}, home)
    return fingerprint


def _last_complete_bar(home: Path, timeframe: str, cut: str) -> int:
    bars = load_bars("MNQ", timeframe, home=home)
    ends = bars["ts"] + pd.Timedelta(seconds=parse_timeframe(timeframe).seconds)
    return int(np.flatnonzero((ends <= pd.Timestamp(cut)).to_numpy())[-1])


def test_a_leaking_builder_feature_is_named_and_the_builtin_builder_is_clean(home):
    found = audit_lookahead("MNQ", timeframes=["5m", "15m"], builder=leaky, cuts=2, seed=3,
                            sources=["evolution"], home=home)
    assert [(f.source, f.feature, f.timeframe) for f in found.findings] == \
        [("evolution", "lead_ret", "5m"), ("evolution", "lead_ret", "15m")]
    for finding in found.findings:
        assert finding.first_bar_index == _last_complete_bar(home, finding.timeframe,
                                                             found.cuts[0])
        assert finding.check == "truncated" and finding.cuts == 2
    assert found.features["states"] == 0 and found.features["vector"] == 0  # not chosen
    assert found.builder is not None and found.builder.endswith(":leaky")
    clean = audit_lookahead("MNQ", timeframes=["5m", "15m"], cuts=2, seed=3,
                            sources=["evolution"], home=home)
    assert clean.clean, clean.findings
    assert clean.features["evolution"] == found.features["evolution"] - 2
    with pytest.raises(ConfigError, match="unknown source"):
        audit_lookahead("MNQ", sources=["evolution", "magic"], home=home)


def test_a_model_on_a_leaking_feature_is_named_and_a_clean_model_is_not(home):
    clean_id = _store_model(home, CLEAN_FEATURES, "clean")
    leaky_id = _store_model(home, [*CLEAN_FEATURES, "lead_ret"], "leaky")
    clean = audit_lookahead("MNQ", timeframes=["5m"], models=[clean_id], cuts=3, seed=1,
                            sources=["model"], home=home)
    # the model's own timeframe joins the audited ones
    assert clean.timeframes == ("5m", "15m") and clean.models == (clean_id,)
    assert clean.features == {"states": 0, "vector": 0, "evolution": 0, "match": 0,
                              "user": 0, "model": 1}
    assert clean.clean, clean.findings
    found = audit_lookahead("MNQ", timeframes=["15m"], builder=leaky,
                            models=[clean_id, leaky_id[:12]], cuts=3, seed=1,
                            sources=["model"], home=home)
    assert [(f.source, f.feature, f.timeframe) for f in found.findings] == \
        [("model", leaky_id[:16], "15m")]
    [finding] = found.findings
    assert finding.first_bar_index == _last_complete_bar(home, "15m", found.cuts[0])
    assert finding.cuts == 3 and finding.check == "truncated"
    # a model whose feature the built-in builder does not make is refused with the fix
    with pytest.raises(ConfigError, match=r"lead_ret.*--builder"):
        audit_lookahead("MNQ", timeframes=["15m"], models=[leaky_id], sources=["model"],
                        home=home)


def _regime_model(home: Path) -> str:
    """A stored model that lists a regime feature (fitted on its own span)."""
    regime = _store_model(home, ["ret_1"], "regime")
    meta_path = home / "models" / regime / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["features"] = ["ret_1", "regime_vol"]
    meta_path.write_text(json.dumps(meta))
    return regime


def test_models_the_replay_cannot_audit_are_refused_or_listed(home):
    regime = _regime_model(home)
    with pytest.raises(ConfigError, match="regime features"):
        load_model_probe(regime, home)
    with pytest.raises(ConfigError, match="not a model id"):
        load_model_probe("xyz", home)
    probes, skipped = stored_models("MNQ", home)
    assert regime not in {p.model_id for p in probes}
    assert any(regime[:16] in line and "regime" in line for line in skipped)
    assert stored_models("EURUSD", home) == ([], [])


def test_cli_audits_models_and_keeps_the_result_for_the_dashboard(home, tmp_path):
    clean_id = _store_model(home, CLEAN_FEATURES, "clean")
    leaky_id = _store_model(home, [*CLEAN_FEATURES, "lead_ret"], "leaky")
    _regime_model(home)
    ok = runner.invoke(app, ["--home", str(home), "audit", "lookahead", "--model",
                             clean_id[:10], "--sources", "model", "--cuts", "2", "--json"])
    assert ok.exit_code == 0, ok.output
    payload = json.loads(ok.stdout)
    assert payload["clean"] is True and payload["symbol"] == "MNQ"
    assert payload["models"] == [clean_id] and payload["timeframes"] == ["15m"]
    kept = json.loads(lookahead_path("MNQ", home).read_text())
    assert {k: v for k, v in kept.items() if k != "written"} == payload
    module = tmp_path / "leaky_builder.py"
    module.write_text(LEAKY_FILE)
    bad = runner.invoke(app, ["--home", str(home), "audit", "lookahead", "-s", "MNQ",
                              "--models", "--builder", f"{module}:leaky", "--sources", "model",
                              "--timeframes", "15m", "--cuts", "2"])
    assert bad.exit_code == FOUND_EXIT_CODE, bad.output
    assert leaky_id[:16] in bad.output and "not replayed" in bad.output
    kept = json.loads(lookahead_path("MNQ", home).read_text())
    assert [f["feature"] for f in kept["findings"]] == [leaky_id[:16]]


def test_a_run_audit_is_kept_beside_the_run(home):
    report = audit_lookahead("MNQ", timeframes=["15m"], cuts=1, sources=["states"], home=home)
    folder = home / "runs" / "run_kept_1"
    folder.mkdir(parents=True)
    from dataclasses import replace
    paths = write_lookahead_report(replace(report, run_id="run_kept_1"), home)
    assert paths == [lookahead_path("MNQ", home), folder / "lookahead.json"]
    assert json.loads(paths[1].read_text())["summary"] == report.summary_line()
    assert not list(paths[0].parent.glob(".*"))  # no temporary file left behind
