"""`stratforge run --scan drill` and the report's template tree, on the two-behaviour market.

The drill run's per-level counts (summary.json ``discovery_levels``) are checked against a
fresh ``discover_patterns`` call with the same settings and against a plain count of the
in-sample patterns; its in-sample patterns all lie before the train end. The template tree
of report.html is checked against the library's fission lineage and the optimize report,
and a screenshot of the two sections is taken with chromium (when it is installed)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dashboard_helpers import artifacts_folder, browser_problem, chromium
from research_helpers import SMALL
from stratforge.data.demo import SPEC_FILE
from stratforge.data.ingest import write_base_bars
from stratforge.data.resample import BarArrays
from stratforge.data.store import AtlasStore
from stratforge.data.synthetic import TwoBehaviourRule, generate_market
from stratforge.discovery.fractal import discover_patterns
from stratforge.discovery.library import TemplateLibrary
from stratforge.instruments import get_instrument
from stratforge.research.config import make_config
from stratforge.research.pipeline import open_run, run_research
from stratforge.research.report_tree import split_verdict, tree_order
from stratforge.timeframes import parse_timeframe

pytestmark = pytest.mark.slow
# fission_alpha 0.3: these small runs are too short for splits at 0.01 (what fission
# needs to split: tests/test_optimize.py, benchmarks/bench_fission.py); the report is checked
SETTINGS = {**SMALL, "timeframes": "1m,5m", "executor": "serial", "checkpoint_every": 1,
            "optimize_templates": None, "fission_alpha": 0.3}


def _two_behaviours(home: Path) -> None:
    # seed 4 splits three templates on a full scan at these sizes with fission_alpha 0.3
    market = generate_market(get_instrument("MNQ"), days=60, seed=4, kind="planted",
                             resolution="1m", planted_rule=TwoBehaviourRule())
    write_base_bars(AtlasStore.open("MNQ", home), BarArrays.from_frame(market.bars),
                    parse_timeframe("1m"), replace_all=True, source="two behaviours",
                    extra_files={SPEC_FILE: json.dumps(market.spec).encode()})


@pytest.fixture(scope="module")
def drill_run(tmp_path_factory) -> tuple[Path, Path]:
    """A run with ``--scan drill`` through the CLI (the option travels like a user's)."""
    home = tmp_path_factory.mktemp("drill") / "home"
    _two_behaviours(home)
    command = [sys.executable, "-m", "stratforge.cli.main", "--home", str(home), "run",
               "--scan", "drill", "--timeframes", "1m,5m", "--mc-iters", "64", "--top", "2",
               "--budget", "40", "--rounds", "2", "--folds", "1", "--executor", "serial"]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    assert "Discovery levels (scan drill)" in done.stdout
    return home, next((home / "runs").glob("run_*"))


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("full") / "home"
    _two_behaviours(home)
    return run_research(make_config(**SETTINGS), home=home).path


def test_drill_levels_equal_an_independent_discovery(drill_run):
    home, run = drill_run
    summary = json.loads((run / "summary.json").read_text())
    config = json.loads((run / "config.json").read_text())["config"]
    assert summary["config"]["scan"] == config["scan"] == "drill"
    levels = summary["discovery_levels"]
    assert [r["timeframe"] for r in levels] == ["5m", "1m"]
    # the same settings, computed again from scratch (no checkpoint)
    again = discover_patterns("MNQ", timeframes=["5m", "1m"], home=home, scan="drill",
                              fresh=True)
    assert [(r["level"], r["bars_scanned"], r["windows"], r["patterns"]) for r in levels] == \
        [(r.depth, r.bars_scanned, r.windows, r.patterns) for r in again.levels]
    counts = again.patterns["timeframe"].astype(str).value_counts()
    assert [r["patterns"] for r in levels] == [int(counts["5m"]), int(counts["1m"])]
    # a real drill-down: the top level scans every bar, the lower one only its windows
    bars = json.loads((run / "state.json").read_text())["phases"]["data"]["bars"]
    assert levels[0]["full_scan"] and levels[0]["bars_scanned"] == bars["5m"]
    assert not levels[1]["full_scan"] and levels[1]["windows"] > 0
    assert 0 < levels[1]["bars_scanned"] < bars["1m"]
    # in-sample counts: the patterns the templates were clustered from, per timeframe
    in_sample = pd.read_parquet(run / "patterns.parquet")
    kept = in_sample["timeframe"].astype(str).value_counts()
    assert [r["in_sample_patterns"] for r in levels] == [int(kept["5m"]), int(kept["1m"])]
    assert summary["phases"]["discovery"]["in_sample_patterns"] == len(in_sample)
    assert "levels" not in summary["phases"]["discovery"]


def test_drill_keeps_no_pattern_at_or_after_the_train_end(drill_run):
    home, run = drill_run
    train_end = json.loads((run / "state.json").read_text())["phases"]["data"]["train_end_ns"]
    found = discover_patterns("MNQ", timeframes=["5m", "1m"], home=home, scan="drill").patterns
    late = found["ts"].array.asi8 >= train_end
    assert late.any()  # the drill-down itself runs over the whole span ...
    in_sample = pd.read_parquet(run / "patterns.parquet")
    assert (in_sample["ts"].array.asi8 < train_end).all()  # ... the templates never see it
    members = {m for t in TemplateLibrary.load(run / "library") for m in t.member_ids}
    assert members <= set(in_sample["pattern_id"].astype(str))


def test_the_report_shows_the_levels_and_a_resumed_run_keeps_its_scan(drill_run):
    home, run = drill_run
    # --resume takes the recorded config: a default (full) config does not change the scan
    with open_run(make_config(**SETTINGS), home=home, resume=True, only=None,
                  run_id=run.name) as folder:
        assert folder.config.scan == "drill"
    page = (run / "report.html").read_text()
    section = page[page.index('<section id="discovery">'):page.index('<section id="tree">')]
    assert "drill-down windows" in section and "scan drill" in section
    levels = json.loads((run / "summary.json").read_text())["discovery_levels"]
    cells = re.findall(r'<td class="num">([\d,]+)</td>', section)
    assert f"{levels[1]['patterns']:,}" in cells and f"{levels[1]['windows']:,}" in cells


def test_the_report_tree_holds_each_child_under_its_parent(full_run):
    library = TemplateLibrary.load(full_run / "library")
    children = [t for t in library if t.parent_id]
    assert children, "no fission child on the two-behaviour market"
    page = (full_run / "report.html").read_text()
    section = page[page.index('<section id="tree">'):page.index('<section id="best">')]
    rows = re.findall(r"<tr>(.*?)</tr>", section)
    first_cell = [re.sub(r"<[^>]+>", "", r.split("</td>")[0]) for r in rows[1:]]
    for child in children:
        parent_row = next(i for i, c in enumerate(first_cell)
                          if c.removeprefix("└ ").startswith(child.parent_id + " "))
        child_row = next(i for i, c in enumerate(first_cell) if c == f"└ {child.template_id}")
        assert parent_row < child_row  # the child sits below its parent ...
        assert "(replaced by its children)" in first_cell[parent_row]
        assert "kept (" in rows[parent_row + 1]  # ... whose split shows its evidence
        assert f"<td>{child.parent_id}</td>" in rows[child_row + 1]
    report = pd.read_parquet(full_run / "optimize" / "report.parquet")
    assert len(rows) - 1 == len(report)
    settings = {"fission": True, "max_fission_depth": 2, "min_silhouette": 0.45,
                "fission_alpha": 0.3}
    verdicts = [split_verdict(row, settings)[0] for _, row in tree_order(report)]
    assert verdicts.count("split") == int(report["split"].sum()) == \
        len({t.parent_id for t in children})
    # every template that stayed whole says why
    assert section.count("verdict-none") + section.count("verdict-rejected") == \
        len(report) - int(report["split"].sum())


def test_screenshot_of_the_levels_and_the_tree(drill_run, full_run):
    problem = browser_problem()
    if problem:
        pytest.skip(problem)
    folder = artifacts_folder()
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        for name, run in (("drill", drill_run[1]), ("full", full_run)):
            page.goto((run / "report.html").as_uri())
            for section in ("discovery", "tree"):
                shot = folder / f"report-{name}-{section}.png"
                page.locator(f"section#{section}").screenshot(path=str(shot))
                assert shot.stat().st_size > 1000
