"""The optimize phase of `stratforge run` on a small synthetic market: its artifacts, the
template optima seeding the sweep, serial and local processes giving the same library, a
rerun from the checkpoint giving the same result, and its trials in the deflation."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from research_helpers import SMALL, make_market
from stratforge.data.demo import SPEC_FILE
from stratforge.data.ingest import write_base_bars
from stratforge.data.resample import BarArrays
from stratforge.data.store import AtlasStore
from stratforge.data.synthetic import TwoBehaviourRule, generate_market
from stratforge.discovery.library import TemplateLibrary
from stratforge.instruments import get_instrument
from stratforge.parallel import make_executor
from stratforge.progress import no_progress
from stratforge.research.config import make_config
from stratforge.research.optimize_phase import optimize_phase, seed_centre
from stratforge.research.pipeline import run_research
from stratforge.research.prepare import match, run_space
from stratforge.research.runs import RunFolder
from stratforge.research.search_phases import all_trials
from stratforge.search.samplers import sample
from stratforge.search.space import default_space, space_rows
from stratforge.search.sweep import PairJob, job_params, pair_seed, read_frame
from stratforge.timeframes import parse_timeframe

pytestmark = pytest.mark.slow
SETTINGS = {**SMALL, "timeframes": "5m,15m", "executor": "serial", "checkpoint_every": 1}


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory) -> tuple[Path, Path]:
    home = tmp_path_factory.mktemp("optimize") / "home"
    make_market(home, "realistic", 60, seed=11)
    return home, run_research(make_config(**SETTINGS), home=home).path


def _cli(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "stratforge.cli.main", "--home", str(home), "run",
            "--timeframes", "5m,15m", "--mc-iters", "64", "--top", "2", "--budget", "40",
            "--rounds", "2", "--folds", "1", "--workers", "1", *args]


def _stable(summary: dict) -> dict:
    volatile = {"run_id", "created", "seconds", "resumed_pairs", "executor", "workers",
                "ray_address", "checkpoint_every"}
    if isinstance(summary, dict):
        return {k: _stable(v) for k, v in summary.items() if k not in volatile}
    if isinstance(summary, list):
        return [_stable(v) for v in summary]
    return summary


def _library(run: Path) -> tuple[list, dict]:
    library = TemplateLibrary.load(run / "library")
    return [(t.template_id, t.parent_id, t.member_ids, t.params) for t in library], \
        library.metadata.get("optimization", {})


def test_the_phase_writes_its_artifacts_and_seeds_the_library(serial_run):
    _home, run = serial_run
    for name in ("patterns.parquet", "optimize/checkpoint.json", "optimize/report.parquet",
                 "optimize/input_library/library.json"):
        assert (run / name).exists(), name
    info = json.loads((run / "state.json").read_text())["phases"]["optimize"]
    assert info["optimised"] == SETTINGS["optimize_templates"]
    report = read_frame(run / "optimize" / "report.parquet")
    assert info["doe_evaluations"] == len(report) * SETTINGS["optimize_iterations"]
    assert info["trials"] == info["doe_evaluations"] + info["fission_trials"]
    library = TemplateLibrary.load(run / "library")
    discovered = TemplateLibrary.load(run / "optimize" / "input_library")
    assert len(library) == info["templates"]
    optimised = [t for t in library if t.params]
    # every optimised template (or child) comes from the first optimise_templates ones
    heads = {t.template_id for t in discovered.templates[:SETTINGS["optimize_templates"]]}
    assert optimised and all(t.template_id.split(".")[0] in heads for t in optimised)
    for t in library:
        if t.parent_id is not None:
            assert t.template_id.startswith(t.parent_id + ".")
    assert [t.template_id for t in library if not t.params] == \
        [t.template_id for t in discovered.templates[SETTINGS["optimize_templates"]:]]


def test_seeded_sweep_sets_lie_around_the_template_optimum(serial_run):
    home, run_path = serial_run
    with RunFolder.open(run_path.name, home) as run:
        library = TemplateLibrary.load(run_path / "library")
        summaries = read_frame(run_path / "sweep" / "summaries.parquet")
        near = round(SETTINGS["mc_iters"] * run.config.seed_share)
        checked = 0
        for t in library:
            for tf in run.config.run_timeframes:
                space = run_space(run, tf)
                centre = seed_centre(run, library, t.template_id, tf, space)
                if centre is None:
                    assert not t.params
                    continue
                rows = summaries[(summaries["template_id"] == t.template_id)
                                 & (summaries["timeframe"] == tf)].sort_values("set_id")
                unit = space.to_unit(rows[list(space.names)])
                middle = space.to_unit(space.repair(pd.DataFrame([centre])))[0]
                assert np.allclose(unit[0], middle)  # set 0 is the optimum itself
                seeded = np.abs(unit[1:near] - middle).mean()
                spread = np.abs(unit[near:] - middle).mean()
                assert seeded < 0.5 * spread, (t.template_id, tf, seeded, spread)
                checked += 1
    assert checked >= 2


def test_a_pair_job_without_a_centre_samples_as_before():
    space = default_space("5m", yardstick_ticks=10.0, tick_size=0.25)
    job = PairJob(symbol="MNQ", timeframe="5m", home="/nowhere", matches_path="x",
                  template_id="T0001", n_sets=32, seed=3, space=space_rows(space))
    expected = sample(space, 32, "sobol", random_state=pair_seed(3, "T0001", "5m"))
    pd.testing.assert_frame_equal(job_params(job), expected)
    centre = {p.name: (p.low + 3 * p.high) / 4 for p in space.parameters}
    seeded = job_params(PairJob(**{**job.__dict__, "centre": centre, "centre_share": 0.25}))
    assert len(seeded) == 32
    pd.testing.assert_frame_equal(seeded.iloc[8:].reset_index(drop=True),
                                  sample(space, 24, "sobol",
                                         random_state=pair_seed(3, "T0001", "5m")))


def test_local_processes_give_the_serial_library(serial_run, tmp_path):
    home, run = serial_run
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    for name in ("checkpoint.json", "report.parquet"):
        (copy / "runs" / run.name / "optimize" / name).unlink()
    result = run_research(make_config(**{**SETTINGS, "executor": "local", "workers": 2}),
                          home=copy, only="optimize", run_id=run.name)
    assert result.phases_run == ["optimize"]
    rerun = result.path
    assert (rerun / "optimize" / "checkpoint.json").exists()
    assert _library(rerun) == _library(run)
    pd.testing.assert_frame_equal(read_frame(rerun / "optimize" / "report.parquet"),
                                  read_frame(run / "optimize" / "report.parquet"))


def test_a_rerun_from_a_partial_checkpoint_gives_the_same_library(serial_run, tmp_path):
    home, run = serial_run
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    path = copy / "runs" / run.name / "optimize" / "checkpoint.json"
    state = json.loads(path.read_text())
    assert len(state["records"]) >= 2
    state["records"], state["complete"] = state["records"][:1], False
    state["records"][0]["score"] = 12345.0  # a mark: a reused record keeps it
    path.write_text(json.dumps(state))
    messages = []
    with RunFolder.open(run.name, copy) as folder, make_executor("serial") as executor:
        optimize_phase(folder, copy, executor, True,
                       lambda *a: messages.append(a[-1]) or no_progress(*a))
    assert "1 template(s) from the checkpoint" in messages
    report = read_frame(copy / "runs" / run.name / "optimize" / "report.parquet")
    assert report["score"].iloc[0] == 12345.0
    original = read_frame(run / "optimize" / "report.parquet")
    pd.testing.assert_frame_equal(report.iloc[1:], original.iloc[1:])
    assert _library(copy / "runs" / run.name) == _library(run)


def test_the_phase_trials_join_the_raw_trials_of_the_deflation(serial_run):
    home, run_path = serial_run
    info = json.loads((run_path / "state.json").read_text())["phases"]["optimize"]
    trials = json.loads((run_path / "overfitting.json").read_text())["trials"]
    with RunFolder.open(run_path.name, home) as run:
        searched = len(all_trials(run))
    assert info["trials"] > 0
    assert trials["optimize"] == info["trials"]
    assert trials["raw"] == searched + info["trials"]
    assert trials["dropped"] == trials["raw"] - trials["used"]
    assert 1 <= trials["effective"] <= trials["used"]


def test_sigkill_during_the_phase_then_resume_gives_the_same_summary(serial_run, tmp_path):
    market, _run = serial_run
    homes = {}
    for name in ("whole", "killed"):
        homes[name] = tmp_path / name
        shutil.copytree(market, homes[name], ignore=shutil.ignore_patterns("runs"))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    subprocess.run(_cli(homes["whole"]), check=True, capture_output=True, timeout=600, env=env)
    # one template per checkpoint batch: a partial checkpoint stays on disk long enough to
    # catch (the batch size is an execution setting, the results cannot differ)
    process = subprocess.Popen(_cli(homes["killed"], "--checkpoint-every", "1"),
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        states = list((homes["killed"] / "runs").glob("run_*/optimize/checkpoint.json"))
        try:
            state = json.loads(states[0].read_text()) if states else None
        except ValueError:
            state = None
        if state and state["records"] and not state["complete"]:
            break
        time.sleep(0.02)
    else:
        process.kill()
        pytest.fail("the optimize phase never wrote a partial checkpoint")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    run_dir = next((homes["killed"] / "runs").glob("run_*"))
    assert "optimize" not in json.loads((run_dir / "state.json").read_text())["phases"]
    resumed = subprocess.run(_cli(homes["killed"], "--resume"), check=False,
                             capture_output=True, text=True, timeout=600, env=env)
    assert resumed.returncode == 0, resumed.stderr
    whole = next((homes["whole"] / "runs").glob("run_*"))
    done = json.loads((run_dir / "summary.json").read_text())
    assert done["complete"] is True
    assert _stable(done) == _stable(json.loads((whole / "summary.json").read_text()))
    assert _library(run_dir) == _library(whole)


def test_fission_children_go_through_matching_and_the_sweep(tmp_path):
    # a market with two planted behaviours that want different exits; seed 4 splits three
    # templates at these sizes with fission_alpha 0.3 (60 days are too few for 0.01; the
    # split rule itself: tests/test_optimize.py, benchmarks/bench_fission.py)
    home = tmp_path / "home"
    market = generate_market(get_instrument("MNQ"), days=60, seed=4, kind="planted",
                             resolution="1m", planted_rule=TwoBehaviourRule())
    write_base_bars(AtlasStore.open("MNQ", home), BarArrays.from_frame(market.bars),
                    parse_timeframe("1m"), replace_all=True, source="two behaviours",
                    extra_files={SPEC_FILE: json.dumps(market.spec).encode()})
    settings = {**SETTINGS, "timeframes": "1m,5m", "optimize_templates": None,
                "fission_alpha": 0.3}
    run = run_research(make_config(**settings), home=home).path
    info = json.loads((run / "state.json").read_text())["phases"]["optimize"]
    assert info["splits"], "no template split on the two-behaviour market"
    library = TemplateLibrary.load(run / "library")
    ids = {t.template_id for t in library}
    summaries = read_frame(run / "sweep" / "summaries.parquet")
    report = read_frame(run / "optimize" / "report.parquet").set_index("template_id")
    for parent, children in info["splits"].items():
        assert parent not in ids
        for child in children:
            assert report.loc[child, "parent_id"] == parent
            if child in info["splits"]:  # split again (depth 2): its children stand for it
                continue
            assert child in ids
            assert library.get(child).parent_id == parent and library.get(child).params
            rows = summaries[summaries["template_id"] == child]
            assert sorted(set(rows["timeframe"])) == ["1m", "5m"]
            assert len(rows) == 2 * SETTINGS["mc_iters"]
    matched = pd.concat([read_frame(run / "matches" / f"{tf}.parquet") for tf in ("1m", "5m")])
    children = {c for cs in info["splits"].values() for c in cs}
    assert children & set(matched["template_id"])
    assert info["templates"] == len(library) == info["templates_in"] + sum(
        len(c) - 1 for c in info["splits"].values())


def test_a_run_timeframe_without_in_sample_patterns_matches_nothing(serial_run, tmp_path):
    # a twin of FX hourly data once had no in-sample pattern on 1D: its library has no 1D
    # scaler, and matching stopped the run; now that timeframe matches nothing
    market, run_dir = serial_run
    home = tmp_path / "home"
    shutil.copytree(market, home)
    run = RunFolder.open(run_dir.name, home)
    library = TemplateLibrary.load(run.path / "library")
    assert set(library.scalers) == {"5m", "15m"}
    TemplateLibrary(library.templates, {"5m": library.scalers["5m"]},
                    library.metadata).save(run.path / "library")
    counts = match(run, home, no_progress)["matches"]
    assert counts["15m"] == 0 and counts["5m"] > 0
    assert len(read_frame(run.path / "matches" / "15m.parquet")) == 0
    before = read_frame(run_dir / "matches" / "5m.parquet")
    assert read_frame(run.path / "matches" / "5m.parquet").equals(before)
