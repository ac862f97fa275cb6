"""``stratforge audit null RUN --twins N``: the run's configuration on null twins of its data.

A small planted MNQ market, a research run with tiny search sizes, then two twins. Checked
against what the twin runs wrote and recomputed independently: the block's tier counts, the
threshold (95th percentile of the twins' best DSR), each real strategy's "beats the twins",
the copy in summary.json, determinism (a twin run again gives the same record) and resume
(a twin whose record exists is not run again).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from research_helpers import SMALL, make_market
from stratforge.cli.main import app
from stratforge.data.load import load_bars
from stratforge.errors import ConfigError
from stratforge.research.config import make_config
from stratforge.research.null_audit import TWINS_DIR, audit_null
from stratforge.research.pipeline import run_research

SETTINGS = {**SMALL, "timeframes": "5m,15m", "executor": "serial"}
runner = CliRunner()


@pytest.fixture(scope="module")
def audited(tmp_path_factory) -> tuple[Path, Path, dict]:
    """A home with a finished run audited on 2 twins through the CLI."""
    home = tmp_path_factory.mktemp("audit_home")
    make_market(home, "planted", 30, seed=5)
    run = run_research(make_config(**SETTINGS), home=home).path
    result = runner.invoke(app, ["--home", str(home), "audit", "null", run.name,
                                 "--twins", "2"])
    assert result.exit_code == 0, result.output
    assert "on 2 null twins of your data" in result.output
    return home, run, json.loads((run / "null_twins.json").read_text())


def test_the_block_counts_what_the_twins_found(audited):
    _home, run, block = audited
    summary = json.loads((run / "summary.json").read_text())
    assert summary["null_twins"] == block
    assert block["twins"] == 2 and block["method"] == "sign"
    records = [json.loads(p.read_text()) for p in sorted((run / TWINS_DIR).glob("twin_*.json"))]
    assert [r["twin"] for r in records] == [0, 1]
    for name, tier in block["tiers"].items():
        counts = [r["tiers"][name] for r in records]
        assert tier["per_twin"] == counts
        assert tier["strategies"] == sum(counts)
        assert tier["twins_with_any"] == sum(c > 0 for c in counts)
        assert tier["real"] == summary["tiers"][name]
    assert sum(block["tiers"][n]["strategies"] for n in block["tiers"]) > 0  # twins ran
    best = [r["best_dsr"] for r in records]
    assert block["twins_best_dsr"] == best
    assert block["best_twin"]["dsr"] == max(best)
    assert block["dsr_threshold"] == pytest.approx(np.percentile(best, 95))
    for strategy in block["strategies"]:
        dsr = strategy["dsr"]
        assert strategy["beats_the_twins"] == (
            strategy["tier_name"] in ("PRODUCTION", "CANDIDATE")
            and dsr is not None and dsr > block["dsr_threshold"])
    assert block["beats_the_twins"] == sum(s["beats_the_twins"] for s in block["strategies"])
    assert len(block["strategies"]) == sum(t["real"] for t in block["tiers"].values())


def test_the_twins_are_made_of_the_runs_base_bars(audited):
    home, _run, block = audited
    bars = load_bars("MNQ", "1m", home=home)
    assert block["bars"] == len(bars) and block["base_timeframe"] == "1m"
    assert block["seed"] == 7  # the run's seed draws the twins


def test_a_twin_runs_again_to_the_same_record_and_done_twins_are_kept(audited):
    home, run, block = audited
    folder = run / TWINS_DIR
    kept = folder / "twin_000_sign.json"
    redo = folder / "twin_001_sign.json"
    first_kept, first_redo = kept.read_text(), json.loads(redo.read_text())
    kept_mtime = kept.stat().st_mtime_ns
    redo.unlink()
    again = audit_null(run.name, twins=2, home=home)
    assert kept.stat().st_mtime_ns == kept_mtime and kept.read_text() == first_kept
    second_redo = json.loads(redo.read_text())
    first_redo.pop("seconds"), second_redo.pop("seconds")
    assert second_redo == first_redo  # the same twin, the same run, the same findings
    assert {k: v for k, v in again.items() if k != "per_twin"} == \
        {k: v for k, v in block.items() if k != "per_twin"}


def test_a_run_that_has_not_finished_validation_is_refused(audited, tmp_path):
    home, run, _ = audited
    copy_home = tmp_path / "home"
    shutil.copytree(home, copy_home)
    state = copy_home / "runs" / run.name / "state.json"
    data = json.loads(state.read_text())
    data["phases"].pop("validation")
    state.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="has not finished validation"):
        audit_null(run.name, twins=1, home=copy_home)
    with pytest.raises(ConfigError, match="--twins must be at least 1"):
        audit_null(run.name, twins=0, home=copy_home)
