"""Twin markets: what a run decides in sample cannot depend on bars after the in-sample end,
and each walk-forward fold chooses its parameters from bars before the fold only.

Three markets share every bar up to a point:
- ``base``: a synthetic one-minute MNQ market, ingested from its bars;
- ``mirror``: the same bars up to the in-sample end, then every later price moved twice as
  far from the last in-sample close (every out-of-sample bar differs; the key keeps its
  old name, the change is a stretch: a mirror image would trade alike, see
  ``stretched_after``);
- ``late``: the same bars up to a point inside the last walk-forward fold, stretched after it.

Every in-sample artifact (library, matches before the end, sweep, ANOVA, refinement, chosen
parameters and their in-sample figures) must be identical between base and mirror; between
base and late every fold's chosen parameters and the first fold's PnL must be identical.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from research_helpers import SMALL, make_market
from stratforge.data.ingest import ingest_files
from stratforge.data.load import load_bars
from stratforge.discovery.library import TemplateLibrary
from stratforge.research.config import make_config
from stratforge.research.pipeline import run_research
from stratforge.search.brain import BayesianBrain
from stratforge.search.sweep import read_frame

pytestmark = pytest.mark.slow
SETTINGS = {**SMALL, "timeframes": "5m,15m", "folds": 2, "executor": "serial"}
IN_SAMPLE_COLUMNS = ("strategy_id", "params", "n_trials", "is_trades", "is_win_rate",
                     "is_pnl", "is_sharpe", "is_sharpe_per_trade")


def stretched_after(bars: pd.DataFrame, start: pd.Timestamp) -> pd.DataFrame:
    """``bars`` with every bar at or after ``start`` moved twice as far from the close before
    it (prices stay on the tick grid). Not a mirror image: the template vectors are
    mirror-invariant and templates fade either side, so a mirrored span trades as the
    original did; stretched moves meet the same stops and targets in ticks differently."""
    out = bars.copy()
    after = out["ts"] >= start
    pivot = float(out.loc[~after, "close"].iloc[-1])
    for column in ("open", "high", "low", "close"):
        out.loc[after, column] = pivot + 2 * (bars.loc[after, column] - pivot)
    return out


def _ingest(bars: pd.DataFrame, home: Path) -> Path:
    home.mkdir(parents=True)
    path = home / "bars.parquet"
    bars.to_parquet(path, index=False)
    ingest_files([path], "MNQ", home=home)
    return home


def _run(home: Path) -> Path:
    return run_research(make_config(**SETTINGS), home=home).path


@pytest.fixture(scope="module")
def twins(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("twins")
    make_market(root / "synthetic", "realistic", 60, seed=21)
    bars = load_bars("MNQ", "1m", home=root / "synthetic")
    runs = {"base": _run(_ingest(bars, root / "base"))}
    summary = json.loads((runs["base"] / "summary.json").read_text())
    train_end = pd.Timestamp(summary["data"]["train_end"])
    runs["mirror"] = _run(_ingest(stretched_after(bars, train_end), root / "mirror"))
    # inside the last fold of both timeframes: the out-of-sample span's last fifth
    last = bars["ts"].iloc[-1]
    late_start = (train_end + (last - train_end) * 0.8).floor("1D")
    runs["late"] = _run(_ingest(stretched_after(bars, late_start), root / "late"))
    runs["train_end"] = train_end  # type: ignore[assignment]
    return runs


def test_the_markets_differ_after_the_in_sample_end_only(twins):
    base = json.loads((twins["base"] / "summary.json").read_text())["data"]
    mirror = json.loads((twins["mirror"] / "summary.json").read_text())["data"]
    assert base["train_end"] == mirror["train_end"]
    oos = read_frame(twins["base"] / "validation.parquet")["oos_pnl"].to_numpy()
    oos_mirror = read_frame(twins["mirror"] / "validation.parquet")["oos_pnl"]
    assert not np.allclose(np.sort(oos), np.sort(oos_mirror.to_numpy()))


def test_every_in_sample_artifact_is_identical(twins):
    a, b = twins["base"], twins["mirror"]
    assert len(TemplateLibrary.load(a / "library")) > 0
    index_a, index_b = (json.loads((r / "library" / "library.json").read_text())
                        for r in (a, b))
    # the templates and members files, by content hash, and the scalers
    assert index_a["files"] == index_b["files"]
    assert index_a["scalers"] == index_b["scalers"]
    end_ns = twins["train_end"].value
    for tf in ("5m", "15m"):
        ma, mb = (read_frame(r / "matches" / f"{tf}.parquet") for r in (a, b))
        before_a = ma[ma["ts"].to_numpy() < end_ns].reset_index(drop=True)
        before_b = mb[mb["ts"].to_numpy() < end_ns].reset_index(drop=True)
        assert len(before_a) > 0
        pd.testing.assert_frame_equal(before_a, before_b, obj=f"matches {tf}")
    for name in ("sweep/summaries.parquet", "refine/trials.parquet"):
        pd.testing.assert_frame_equal(read_frame(a / name), read_frame(b / name), obj=name)
    assert BayesianBrain.load(a / "refine" / "brain.parquet") == \
        BayesianBrain.load(b / "refine" / "brain.parquet")
    assert json.loads((a / "anova.json").read_text()) == \
        json.loads((b / "anova.json").read_text())
    va = read_frame(a / "validation.parquet").sort_values("strategy_id")
    vb = read_frame(b / "validation.parquet").sort_values("strategy_id")
    pd.testing.assert_frame_equal(va[list(IN_SAMPLE_COLUMNS)].reset_index(drop=True),
                                  vb[list(IN_SAMPLE_COLUMNS)].reset_index(drop=True))
    # the first fold chooses on in-sample bars alone, so its parameters agree too
    first = [json.loads(p)[0] for p in va["wf_fold_params"]]
    assert first == [json.loads(p)[0] for p in vb["wf_fold_params"]]


def test_each_fold_chooses_from_bars_before_it(twins):
    va = read_frame(twins["base"] / "validation.parquet").sort_values("strategy_id")
    vl = read_frame(twins["late"] / "validation.parquet").sort_values("strategy_id")
    assert list(va["strategy_id"]) == list(vl["strategy_id"])
    # the late market changes bars inside the last fold only: every fold's choice is the
    # same, the first fold trades the same bars, and only the last fold's PnL may move
    assert list(va["wf_fold_params"]) == list(vl["wf_fold_params"])
    first_a = [json.loads(p)[0] for p in va["wf_fold_pnl"]]
    first_l = [json.loads(p)[0] for p in vl["wf_fold_pnl"]]
    assert first_a == first_l
    last_a = [json.loads(p)[-1] for p in va["wf_fold_pnl"]]
    last_l = [json.loads(p)[-1] for p in vl["wf_fold_pnl"]]
    assert last_a != last_l
