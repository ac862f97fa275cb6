"""``stratforge run --null-twins N``, the recorded ``audit null`` operation and the report's
null-twins section.

A small planted MNQ market; ``stratforge run`` with small search sizes and ``--null-twins 2``
through the local executor (two worker processes, one twin each). Checked against what the
twins wrote: the summary's block, the report section's numbers (recomputed from the block),
the operation's result, the same twin records through the serial executor, and resume (a
done twin is kept, a missing one is run again to the same record).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import stratforge.research.config as research_config
from research_helpers import SMALL, make_market
from stratforge.cli.main import app
from stratforge.ops.db import Database
from stratforge.ops.operations import list_operations
from stratforge.research.null_audit import TWINS_DIR, audit_null
from stratforge.research.report import render_report

runner = CliRunner()
CLI_SIZES = ["--mc-iters", str(SMALL["mc_iters"]), "--top", str(SMALL["top_combos"]),
             "--budget", str(SMALL["refine_budget"]), "--rounds", str(SMALL["refine_rounds"]),
             "--folds", str(SMALL["folds"]), "--timeframes", "5m,15m"]
EXTRA = {k: SMALL[k] for k in ("refine_min", "pbo_configs", "checkpoint_every")}


def _small_make_config(original):
    """``make_config`` with the test sizes the CLI has no options for."""
    def make(**kwargs):
        return original(**{**kwargs, **EXTRA})
    return make


def _records(run: Path) -> list[dict]:
    """The twin records without their timings."""
    out = []
    for path in sorted((run / TWINS_DIR).glob("twin_*.json")):
        record = json.loads(path.read_text())
        record.pop("seconds")
        out.append(record)
    return out


@pytest.fixture(scope="module")
def twinned(tmp_path_factory) -> tuple[Path, Path, str]:
    """A home with a run made by ``stratforge run --null-twins 2`` (local executor, 2
    workers) and the command's output."""
    home = tmp_path_factory.mktemp("twins_run_home")
    make_market(home, "planted", 30, seed=5)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(research_config, "make_config",
                      _small_make_config(research_config.make_config))
        result = runner.invoke(app, ["--home", str(home), "run", *CLI_SIZES, "--executor",
                                     "local", "--workers", "2", "--null-twins", "2"])
    assert result.exit_code == 0, result.output
    runs = sorted((home / "runs").iterdir())
    assert len(runs) == 1
    return home, runs[0], result.output


def test_run_null_twins_writes_the_block_beside_the_run(twinned):
    home, run, output = twinned
    summary = json.loads((run / "summary.json").read_text())
    block = summary["null_twins"]
    assert block == json.loads((run / "null_twins.json").read_text())
    assert block["twins"] == 2 and block["run_id"] == run.name
    records = _records(run)
    assert [r["twin"] for r in records] == [0, 1]
    for name, tier in block["tiers"].items():
        assert tier["per_twin"] == [r["tiers"][name] for r in records]
        assert tier["real"] == summary["tiers"][name]
    assert sum(t["strategies"] for t in block["tiers"].values()) > 0  # the twins really ran
    headline = (f"on 2 null twins of your data: PRODUCTION in "
                f"{block['tiers']['PRODUCTION']['twins_with_any']}, CANDIDATE in "
                f"{block['tiers']['CANDIDATE']['twins_with_any']}")
    assert headline in " ".join(output.split())
    db = Database(f"sqlite:///{home / 'stratforge.db'}")
    try:
        op = list_operations(db, op_type="research_run")[0]
        assert op.status == "completed"
        assert op.result_summary["null_twins"]["headline"] == headline
        assert op.result_summary["null_twins"]["beats_the_twins"] == block["beats_the_twins"]
    finally:
        db.dispose()


def test_the_report_shows_the_twins_at_a_glance(twinned):
    _home, run, _ = twinned
    block = json.loads((run / "null_twins.json").read_text())
    html = (run / "report.html").read_text()
    assert html == render_report(run)  # rewritten with the block, and byte-deterministic
    section = re.search(r'<section id="null_twins">(.*?)</section>', html, re.S).group(1)
    prod = block["tiers"]["PRODUCTION"]["twins_with_any"]
    cand = block["tiers"]["CANDIDATE"]["twins_with_any"]
    assert f"on 2 null twins of your data: PRODUCTION in {prod}, CANDIDATE in {cand}" in section
    for name, tier in block["tiers"].items():
        row = re.search(rf"<tr><td>{name}</td>(.*?)</tr>", section).group(1)
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
        assert cells[:3] == [f"{tier['real']:,}", f"{tier['twins_with_any']} of 2",
                             f"{tier['strategies']:,}"]
    real, best = block["real"], block["best_twin"]
    assert f"real run {real['best_dsr']:.2f}, best twin {best['dsr']:.2f}" in section
    beating = [s["strategy_id"] for s in block["strategies"] if s["beats_the_twins"]]
    for strategy_id in beating:
        assert strategy_id in section
    if not beating:
        assert "no real strategy beats the twins" in section


def test_serial_and_local_executors_give_the_same_twins(twinned, tmp_path):
    home, run, _ = twinned
    copy_home = tmp_path / "home"
    shutil.copytree(home, copy_home)
    shutil.rmtree(copy_home / "runs" / run.name / TWINS_DIR)
    block = audit_null(run.name, twins=2, home=copy_home, executor="serial")
    assert _records(copy_home / "runs" / run.name) == _records(run)
    local = json.loads((run / "null_twins.json").read_text())
    drop = ("per_twin",)
    assert {k: v for k, v in block.items() if k not in drop} == \
        {k: v for k, v in local.items() if k not in drop}


def test_run_resume_keeps_done_twins_and_reruns_a_missing_one(twinned, tmp_path):
    home, run, _ = twinned
    copy_home = tmp_path / "home"
    shutil.copytree(home, copy_home)
    folder = copy_home / "runs" / run.name / TWINS_DIR
    kept, missing = folder / "twin_000_sign.json", folder / "twin_001_sign.json"
    kept_text, kept_mtime = kept.read_text(), kept.stat().st_mtime_ns
    missing.unlink()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(research_config, "make_config",
                      _small_make_config(research_config.make_config))
        result = runner.invoke(app, ["--home", str(copy_home), "run", *CLI_SIZES, "--resume",
                                     "--run-id", run.name, "--executor", "local",
                                     "--workers", "2", "--null-twins", "2"])
    assert result.exit_code == 0, result.output
    assert kept.read_text() == kept_text and kept.stat().st_mtime_ns == kept_mtime
    assert _records(copy_home / "runs" / run.name) == _records(run)


def test_audit_null_is_recorded_as_an_operation(twinned, tmp_path):
    home, run, _ = twinned
    copy_home = tmp_path / "home"
    shutil.copytree(home, copy_home)
    result = runner.invoke(app, ["--home", str(copy_home), "audit", "null", run.name,
                                 "--twins", "2"])  # both twins done: kept, nothing reruns
    assert result.exit_code == 0, result.output
    assert "operation op_null_audit_" in result.output
    db = Database(f"sqlite:///{copy_home / 'stratforge.db'}")
    try:
        ops = list_operations(db, op_type="null_audit")
        assert len(ops) == 1 and ops[0].status == "completed"
        assert ops[0].metadata["run_id"] == run.name
        assert ops[0].metadata["parameters"] == {"run_id": run.name, "twins": 2,
                                                 "method": "sign"}
        block = json.loads((run / "null_twins.json").read_text())
        assert ops[0].result_summary["twins_with_any"] == \
            {name: tier["twins_with_any"] for name, tier in block["tiers"].items()}
    finally:
        db.dispose()
    listed = runner.invoke(app, ["--home", str(copy_home), "ops", "list"])
    assert listed.exit_code == 0 and "null_audit" in listed.output, listed.output


def test_null_twins_needs_a_validated_run():
    result = runner.invoke(app, ["run", "--mc-only", "--null-twins", "2"])
    assert result.exit_code != 0
    assert "--null-twins needs a validated run" in result.output


def test_a_killed_audit_resumes_to_the_same_twins(twinned, tmp_path):
    """``audit null`` killed (SIGKILL) after its first twin, then run again: the done twin is
    kept and the result is the uninterrupted run's."""
    home, run, _ = twinned
    copy_home = tmp_path / "home"
    shutil.copytree(home, copy_home)
    copy_run = copy_home / "runs" / run.name
    shutil.rmtree(copy_run / TWINS_DIR)
    (copy_run / "null_twins.json").unlink()
    command = [sys.executable, "-m", "stratforge.cli.main", "--home", str(copy_home), "audit",
               "null", run.name, "--twins", "2", "--executor", "serial"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    audit = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    first = copy_run / TWINS_DIR / "twin_000_sign.json"
    try:
        deadline = time.monotonic() + 180
        while not first.exists():
            assert audit.poll() is None, "the audit ended before its first twin was killed"
            assert time.monotonic() < deadline, "no twin finished in 180 s"
            time.sleep(0.05)
        audit.send_signal(signal.SIGKILL)
        audit.wait(30)
    finally:
        if audit.poll() is None:
            audit.kill()
    assert not (copy_run / TWINS_DIR / "twin_001_sign.json").exists()  # killed mid-way
    assert not (copy_run / "null_twins.json").exists()
    kept = first.read_text()
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300,
                             check=False)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert first.read_text() == kept
    assert _records(copy_run) == _records(run)
