"""The day-by-day trainer on small synthetic markets: it trades from an empty brain, resumes
identically, finds the planted edge, claims none on a null market, and its CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from research_helpers import make_market
from stratforge.cli.main import app
from stratforge.data.atlas import build_atlas
from stratforge.data.demo import synthetic_spec
from stratforge.search.brain import BayesianBrain
from stratforge.trainer.config import make_train_config
from stratforge.trainer.loop import train
from stratforge.trainer.summary import finish_training

pytestmark = pytest.mark.slow
SMALL = {"templates": "warmup", "warmup_days": 10, "iterations": 24}


def _market(home: Path, kind: str, days: int, seed: int) -> Path:
    make_market(home, kind, days, seed)
    build_atlas("MNQ", home=home)
    return home


@pytest.fixture(scope="module")
def realistic(tmp_path_factory) -> Path:
    return _market(tmp_path_factory.mktemp("trainer") / "home", "realistic", 24, seed=5)


def _copy(source: Path, tmp_path: Path, name: str) -> Path:
    home = tmp_path / name
    shutil.copytree(source, home)
    return home


def test_an_empty_brain_trades_on_day_one(realistic, tmp_path):
    home = _copy(realistic, tmp_path, "one")
    result = train(make_train_config(**SMALL, max_days=2), home=home)
    first, second = result.days.iloc[0], result.days.iloc[1]
    assert first["candidates"] > 0
    assert first["fired"] > 0 and first["trades"] > 0
    # day one has no parameters chosen before it: nothing out of sample to learn from
    assert first["oos_trades"] == 0 and first["learned_trades"] == 0
    # every out-of-sample trade of day two taught the brain, under the trade's own state
    states = result.brain.keys()
    assert second["oos_trades"] > 0
    assert sum(result.brain.n(k) for k in states) == second["oos_trades"]
    assert set(result.oos_trades["state"]) == set(states)


def test_an_empty_brain_learns_from_the_first_days_best_iteration_with_learn_from_best(
        realistic, tmp_path):
    home = _copy(realistic, tmp_path, "best")
    result = train(make_train_config(**SMALL, max_days=1, learn_from="best"), home=home)
    first = result.days.iloc[0]
    assert first["trades"] > 0
    states = result.brain.keys()
    assert sum(result.brain.n(k) for k in states) == first["trades"]
    assert set(result.trades["state"]) == set(states)


def test_resume_gives_the_same_run_as_an_uninterrupted_one(realistic, tmp_path):
    whole_home = _copy(realistic, tmp_path, "whole")
    whole = train(make_train_config(**SMALL, max_days=6), home=whole_home)
    parts_home = _copy(realistic, tmp_path, "parts")
    train(make_train_config(**SMALL, max_days=2), home=parts_home)
    train(make_train_config(**SMALL, max_days=4), home=parts_home, resume=True)
    resumed = train(make_train_config(**SMALL, max_days=6), home=parts_home, resume=True)
    assert resumed.resumed_days == 4
    pd.testing.assert_frame_equal(whole.days.drop(columns=["seconds"]),
                                  resumed.days.drop(columns=["seconds"]))
    pd.testing.assert_frame_equal(whole.trades, resumed.trades)
    pd.testing.assert_frame_equal(whole.oos_trades, resumed.oos_trades)
    assert len(whole.oos_trades) > 0
    assert whole.brain == resumed.brain
    assert whole.regret == resumed.regret
    assert BayesianBrain.load(whole.folder / "brain.parquet") == resumed.brain


def test_training_log_report_and_cli(realistic, tmp_path):
    home = _copy(realistic, tmp_path, "cli")
    runner = CliRunner()
    args = ["--home", str(home), "train", "--max-days", "2", "--iterations", "12",
            "--templates", "warmup", "--warmup-days", "10"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "day 11" in first.output and "regret" in first.output
    assert "Parameter evolution" in first.output and "target" in first.output
    folder = home / "training" / "MNQ-1m"
    log = json.loads((folder / "training_log.json").read_text())
    assert log["summary"]["days"] == 2 and len(log["days"]) == 2
    assert (folder / "training_report.html").exists()
    # the run charged MNQ's cost model: 0.75 points + 2 x 0.62 USD = 2.74 USD a round trip
    assert log["cost_model"]["round_trip_currency"] == pytest.approx(2.74)
    assert "cost model: spread 1 tick" in first.output and "2.74 USD" in first.output
    assert "Cost per round trip" in (folder / "training_report.html").read_text()
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "--resume" in again.output
    more = runner.invoke(app, [*args[:4], "3", *args[5:], "--resume"])
    assert more.exit_code == 0, more.output
    assert json.loads((folder / "training_log.json").read_text())["summary"]["days"] == 3
    other = runner.invoke(app, [*args, "--iterations", "20", "--resume"])
    assert other.exit_code == 1 and "other settings" in other.output
    costlier = runner.invoke(app, [*args, "--spread-ticks", "3", "--resume"])
    assert costlier.exit_code == 1 and "cost_model" in costlier.output
    fresh = runner.invoke(app, [*args, "--fresh"])
    assert fresh.exit_code == 0, fresh.output


def _event_share(home: Path, trades: pd.DataFrame) -> pd.Series:
    """Per state: the share of its trades entered on a planted shock bar against the shock."""
    events = pd.DataFrame(synthetic_spec("MNQ", home)["planted"]["events"])
    stamps = pd.to_datetime(events["ts"], utc=True).astype("datetime64[ns, UTC]").array.asi8
    shock = events["direction"].to_numpy()
    entry = pd.to_datetime(trades["entry_time"], utc=True).astype(
        "datetime64[ns, UTC]").array.asi8
    last = np.searchsorted(stamps, entry, side="right") - 1
    hit = (last >= 0) & (entry - stamps[np.maximum(last, 0)] < 60 * 10**9) & \
        (trades["side"].to_numpy() == -shock[np.maximum(last, 0)])
    return pd.Series(hit, index=trades.index).groupby(trades["state"]).mean()


def test_planted_market_learns_the_planted_pattern_in_sample(tmp_path):
    # seed-sensitive, and run with the in-sample learning (--learn-from best) that it was
    # written for. Measured with MNQ's real cost model over seeds 1-12 on 70 days: once the
    # warm-up library kept to the training span (the oracle's lookahead included), both
    # checks pass only for seed 5 (before that change: only seed 8); with the default honest
    # learning (learn_from="champion") for seeds 3, 4 and 10 before that change; 140 days do
    # not help. It stays as a regression check of the in-sample learning on one market; it
    # does not show that the trainer reliably finds the planted edge (issue 16 closing note)
    home = _market(tmp_path / "planted", "planted", 70, seed=5)
    config = make_train_config(templates="warmup", warmup_days=10, iterations=60,
                               learn_from="best")
    result = train(config, home=home)
    finish_training(result, config)
    trades = result.trades
    most_fired = trades["state"].value_counts().head(3).index
    share = _event_share(home, trades)
    assert (share[most_fired] >= 0.3).any(), (share.sort_values().tail(5),
                                              trades["state"].value_counts().head(5))
    later = result.days.iloc[len(result.days) // 2:]
    assert later["oos_pnl"].sum() > 0, later["oos_pnl"].describe()


@pytest.mark.parametrize("seed", [1, 2])
def test_null_market_claims_no_edge(tmp_path, seed):
    home = _market(tmp_path / f"null{seed}", "null", 50, seed=seed)
    config = make_train_config(templates="warmup", warmup_days=10, iterations=30)
    result = train(config, home=home)
    log, _ = finish_training(result, config)
    verdict = log["summary"]["out_of_sample"]
    assert verdict["edge_claimed"] is False, verdict
    # a null market has no edge before costs, so after the instrument's real costs its
    # out-of-sample PnL may be significantly negative (the cost drag); what must never show
    # is a significant gain
    assert verdict["t_stat"] < 2.0, verdict


def test_no_data_builds_the_demo_market_or_names_the_symbols(tmp_path):
    from stratforge.data.demo import DEMO_DAYS
    from stratforge.errors import DataError

    home = tmp_path / "empty"
    with pytest.raises(DataError, match="no data for ES"):
        train(make_train_config(symbol="ES", **SMALL, max_days=1), home=home)
    events = []
    result = train(make_train_config(**SMALL, max_days=1), home=home,
                   progress=lambda phase, done, total, message="": events.append(
                       (phase, message)))
    assert any(phase == "data" and "demo market" in message for phase, message in events)
    assert len(result.days) == 1 and result.days["day_index"].iloc[0] == 10
    assert synthetic_spec("MNQ", home)["days"] == DEMO_DAYS


def test_train_prints_a_banner_every_trade_with_verbose_and_the_regret_findings(realistic,
                                                                                 tmp_path):
    home = _copy(realistic, tmp_path, "verbose")
    shown = CliRunner().invoke(app, ["--home", str(home), "train", "--max-days", "2",
                                     "--iterations", "12", "--templates", "warmup",
                                     "--warmup-days", "10", "--verbose"],
                               env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0].startswith("stratforge train: MNQ")
    banner = next(i for i, line in enumerate(lines) if line.startswith("Training on "))
    assert lines[banner].startswith("Training on 2 day(s) of MNQ 1m bars")
    log = json.loads((home / "training" / "MNQ-1m" / "training_log.json").read_text())
    trade_lines = [line for line in lines if line.startswith(("  long ", "  short "))]
    assert len(trade_lines) == log["summary"]["trades"] > 0
    assert all(" bars, PnL " in line and "USD" in line for line in trade_lines)
    findings = [f for record in log["regret"] for f in record["findings"]]
    printed = [line.removeprefix("  regret: ") for line in lines
               if line.startswith("  regret: ")]
    assert findings and all(f in printed for f in findings)
    # the summary: time of day in the session's zone, durations, confident states
    assert "Time of day (America/Chicago)" in shown.output
    assert "trade duration:" in shown.output
    assert "P(win) >= 80%" in shown.output
    # the day lines come after the banner, one per day
    assert sum(line.startswith("day ") for line in lines[banner:]) == 2
