"""Issue 17, defects 7 and 9 (run folders): one writer per run folder (an exclusive lock, the
refused process names the holder), and damaged ``state.json`` / ``config.json`` files give a
one-line error naming the file. Real processes and signals for the lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stratforge.cli.main import app
from stratforge.errors import ConfigError
from stratforge.research.config import make_config
from stratforge.research.runs import PHASES, RunFolder

SRC = Path(__file__).parents[1] / "src"
HOLD = """
import sys, time
from stratforge.research.runs import RunFolder
run = RunFolder.open(sys.argv[1], sys.argv[2])
print("holding", flush=True)
time.sleep(120)
"""


def _env(home: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(SRC), STRATFORGE_HOME=str(home))


def _finished_run(home: Path) -> str:
    """A run folder whose state says every phase is done (a resume would only summarise)."""
    run = RunFolder.create(make_config(quick=True), home, "run_locktest")
    run.state["phases"] = {phase: {"seconds": 0.0} for phase in PHASES}
    run.save_state()
    getattr(run, "release", lambda: None)()  # (works on code without run locks too)
    return run.run_id


def _resume(home: Path, run_id: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stratforge.cli.main", "--home", str(home),
                           "run", "--resume", "--run-id", run_id], capture_output=True,
                          check=False, text=True, env=_env(home), timeout=180)


def test_a_second_writer_of_a_run_is_refused_naming_the_holder(tmp_path):
    home = tmp_path / "home"
    run_id = _finished_run(home)
    state = (home / "runs" / run_id / "state.json").read_bytes()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, run_id, str(home)],
                              stdout=subprocess.PIPE, text=True, env=_env(home))
    try:
        assert holder.stdout.readline().strip() == "holding"
        second = _resume(home, run_id)
        # stdout has the command's banner and its operation's id; the refusal is one line
        lines = second.stderr.strip().splitlines()
        assert second.returncode == 1, second.stdout + second.stderr
        assert len(lines) == 1, lines
        assert run_id in lines[0] and f"pid {holder.pid}" in lines[0], lines[0]
        assert (home / "runs" / run_id / "state.json").read_bytes() == state
        # the holder dies by SIGKILL: the kernel frees the lock, no stale lock is left
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        RunFolder.open(run_id, home).release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_a_lock_holder_in_this_process_refuses_a_second_open(tmp_path):
    home = tmp_path / "home"
    run_id = _finished_run(home)
    refused = rf"run {run_id} is being written .*pid {os.getpid()}"
    with RunFolder.open(run_id, home), pytest.raises(ConfigError, match=refused):
        RunFolder.open(run_id, home)
    RunFolder.open(run_id, home).release()  # released on leaving the block


@pytest.mark.parametrize("name", ["state.json", "config.json"])
@pytest.mark.parametrize("content", ["{not json", "[]", "{}", '{"phases": [], "config": 3}',
                                     "\xff\xfe"])
def test_a_damaged_run_file_gives_one_line_naming_it(tmp_path, name, content):
    home = tmp_path / "home"
    run_id = _finished_run(home)
    target = home / "runs" / run_id / name
    target.write_bytes(content.encode("latin-1"))
    result = CliRunner().invoke(app, ["--home", str(home), "run", "--resume",
                                      "--run-id", run_id])
    assert result.exit_code == 1, result.output
    assert not isinstance(result.exception, (KeyError, AttributeError, ValueError)), \
        result.exception
    # besides the command's banner and its operation's id: one line
    lines = [line for line in result.output.strip().splitlines()
             if not line.startswith(("stratforge run: ", "operation op_research_run_"))]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert str(target) in lines[0] and "start a new run" in lines[0], lines[0]
    assert target.read_bytes() == content.encode("latin-1")  # left as it was


def test_config_with_invalid_settings_names_the_file(tmp_path):
    home = tmp_path / "home"
    run_id = _finished_run(home)
    target = home / "runs" / run_id / "config.json"
    stored = json.loads(target.read_text())
    stored["config"]["mc_iters"] = "many"
    target.write_text(json.dumps(stored))
    result = CliRunner().invoke(app, ["--home", str(home), "run", "--resume",
                                      "--run-id", run_id])
    assert result.exit_code == 1
    assert str(target) in result.output and "mc_iters" in result.output, result.output
