"""The research pipeline end to end on a small synthetic market: artifacts, determinism
across executors (serial, local processes, Ray), kill-and-resume, brain keys, the CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from research_helpers import SMALL, make_market
from stratforge.cli.main import app
from stratforge.research.config import make_config
from stratforge.research.pipeline import run_research
from stratforge.search.brain import BayesianBrain, brain_key
from stratforge.search.sweep import read_frame

pytestmark = pytest.mark.slow
SETTINGS = {**SMALL, "timeframes": "5m,15m"}
VOLATILE = {"run_id", "created", "seconds", "resumed_pairs", "executor", "workers",
            "ray_address", "checkpoint_every", "library_from"}


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("market") / "home"
    make_market(home, "realistic", 60, seed=11)
    return home


def _copy(market: Path, tmp_path: Path, name: str) -> Path:
    home = tmp_path / name
    shutil.copytree(market, home)
    return home


def stable(value):
    """A summary without run ids, timings and execution settings."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def _artifacts(run: Path) -> dict[str, pd.DataFrame]:
    return {name: read_frame(run / name) for name in
            ("sweep/summaries.parquet", "refine/trials.parquet", "validation.parquet")}


def _assert_same_run(a: Path, b: Path) -> None:
    for name, frame in _artifacts(a).items():
        pd.testing.assert_frame_equal(frame, _artifacts(b)[name], obj=name)
    assert BayesianBrain.load(a / "refine" / "brain.parquet") == \
        BayesianBrain.load(b / "refine" / "brain.parquet")
    assert stable(json.loads((a / "summary.json").read_text())) == \
        stable(json.loads((b / "summary.json").read_text()))


@pytest.fixture(scope="module")
def local_run(market, tmp_path_factory) -> Path:
    home = _copy(market, tmp_path_factory.mktemp("local"), "home")
    return run_research(make_config(**SETTINGS, executor="local", workers=2), home=home).path


def test_a_run_writes_every_artifact(local_run):
    for name in ("config.json", "state.json", "library/library.json", "matches/5m.parquet",
                 "sweep/summaries.parquet", "sweep/brain.parquet", "anova.json",
                 "anova_report.txt", "refine/trials.parquet", "refine/history.json",
                 "validation.parquet", "curves.parquet", "playbook.json", "summary.json",
                 "report.html"):
        assert (local_run / name).exists(), name
    summary = json.loads((local_run / "summary.json").read_text())
    assert summary["complete"] is True
    phases = summary["phases"]
    assert set(phases) == {"data", "discovery", "optimize", "matching", "sweep", "anova",
                           "refine", "validation", "report"}
    library = json.loads((local_run / "library" / "library.json").read_text())
    n_templates = phases["optimize"]["templates"]  # split templates replaced by children
    assert phases["sweep"]["pairs"] == 2 * n_templates
    assert phases["sweep"]["backtests"] == 2 * n_templates * SETTINGS["mc_iters"]
    assert phases["refine"]["trials"] == SETTINGS["refine_budget"]
    assert sum(summary["tiers"].values()) == phases["validation"]["candidates"]
    assert library  # a real library index
    html = (local_run / "report.html").read_text()
    assert "<script src" not in html


def test_in_sample_search_never_sees_out_of_sample_bars(local_run):
    train_end = pd.Timestamp(json.loads((local_run / "summary.json").read_text())
                             ["data"]["train_end"])
    patterns = json.loads((local_run / "summary.json").read_text())["phases"]["discovery"]
    assert patterns["in_sample_patterns"] < patterns["patterns"]
    assert train_end.hour == 22 or train_end.hour == 23   # a CME trade date starts at 17:00 CT


def test_serial_and_local_processes_give_identical_results(market, tmp_path, local_run):
    home = _copy(market, tmp_path, "serial")
    serial = run_research(make_config(**SETTINGS, executor="serial"), home=home).path
    _assert_same_run(serial, local_run)


def test_ray_gives_the_same_results_as_local_processes(market, tmp_path, local_run):
    try:
        import ray  # noqa: F401
    except ImportError:
        if os.environ.get("STRATFORGE_REQUIRE_SERVICES") == "1":
            raise
        pytest.skip("Ray is not installed (pip install 'stratforge[ray]')")
    home = _copy(market, tmp_path, "ray")
    on_ray = run_research(make_config(**SETTINGS, executor="ray", workers=2), home=home).path
    _assert_same_run(on_ray, local_run)


def test_sweep_and_refiner_use_the_same_brain_keys(local_run):
    summaries = read_frame(local_run / "sweep" / "summaries.parquet")
    traded = summaries[summaries["trades"] > 0]
    expected = {brain_key(t, tf) for t, tf in zip(traded["template_id"], traded["timeframe"],
                                                  strict=True)}
    sweep_brain = BayesianBrain.load(local_run / "sweep" / "brain.parquet")
    assert set(sweep_brain.keys()) == expected
    top = json.loads((local_run / "anova.json").read_text())["top_combos"]
    history = json.loads((local_run / "refine" / "history.json").read_text())["rounds"]
    refined = {brain_key(c["template"], c["timeframe"]) for c in top}
    for record in history:
        assert set(record["allocation"]) == refined
    assert refined <= set(sweep_brain.keys())
    # the refiner's brain is the sweep's brain plus the refinement outcomes, key by key
    refine_brain = BayesianBrain.load(local_run / "refine" / "brain.parquet")
    trials = read_frame(local_run / "refine" / "trials.parquet")
    traded = trials[trials["trades"] > 0]
    for key in refined:
        mine = traded[[brain_key(t, tf) == key for t, tf in
                       zip(traded["template_id"], traded["timeframe"], strict=True)]]
        assert refine_brain.n(key) == sweep_brain.n(key) + len(mine)
        assert refine_brain.wins(key) == sweep_brain.wins(key) + int((mine["total_pnl"] > 0)
                                                                     .sum())


def _cli(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "stratforge.cli.main", "--home", str(home), "run",
            "--timeframes", "5m,15m", "--mc-iters", "1500", "--top", "4", "--budget", "160",
            "--rounds", "4", "--folds", "2", "--workers", "1", *args]


def test_sigkill_during_the_sweep_then_resume_gives_the_same_summary(market, tmp_path):
    whole = _copy(market, tmp_path, "whole")
    subprocess.run(_cli(whole), check=True, capture_output=True, timeout=600)
    killed = _copy(market, tmp_path, "killed")
    process = subprocess.Popen(_cli(killed), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        states = list((killed / "runs").glob("run_*/sweep/state.json"))
        if states and json.loads(states[0].read_text())["parts"]:
            break
        time.sleep(0.05)
    else:
        process.kill()
        pytest.fail("the sweep never wrote a checkpoint")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    run_dir = next((killed / "runs").glob("run_*"))
    assert not (run_dir / "summary.json").exists() or \
        not json.loads((run_dir / "summary.json").read_text()).get("complete")
    resumed = subprocess.run(_cli(killed, "--resume"), check=False, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    done = json.loads((run_dir / "summary.json").read_text())
    assert done["phases"]["sweep"]["resumed_pairs"] > 0
    reference = json.loads(next((whole / "runs").glob("run_*/summary.json")).read_text())
    assert stable(done) == stable(reference)
    pd.testing.assert_frame_equal(
        read_frame(run_dir / "sweep" / "summaries.parquet"),
        read_frame(next((whole / "runs").glob("run_*")) / "sweep" / "summaries.parquet"))


def test_cli_reruns_phases_and_reports_errors(market, tmp_path):
    home = _copy(market, tmp_path, "cli")
    runner = CliRunner()
    args = ["--home", str(home), "run", "--timeframes", "5m,15m", "--mc-iters", "32",
            "--top", "3", "--budget", "60", "--rounds", "2", "--folds", "1", "--workers", "1"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "Best strategies" in first.output or "validation" in first.output
    for flag in ("--anova-only", "--refine-only", "--validate-only"):
        again = runner.invoke(app, [*args, flag])
        assert again.exit_code == 0, (flag, again.output)
    assert len(list((home / "runs").glob("run_*"))) == 1
    mc = runner.invoke(app, [*args, "--mc-only"])
    assert mc.exit_code == 0, mc.output
    runs = sorted((home / "runs").glob("run_*"))
    assert len(runs) == 2
    state = json.loads((runs[-1] / "state.json").read_text())["phases"]
    assert "sweep" in state and "anova" not in state
    both = runner.invoke(app, [*args, "--mc-only", "--anova-only"])
    assert both.exit_code == 1 and "at most one" in both.output
    empty = runner.invoke(app, ["--home", str(tmp_path / "empty"), "run", "--resume"])
    assert empty.exit_code == 1 and "no research run" in empty.output
    other = runner.invoke(app, ["--home", str(tmp_path / "empty"), "run", "--symbol", "ES"])
    assert other.exit_code == 1 and "no data for ES" in other.output
