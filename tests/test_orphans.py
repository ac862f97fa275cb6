"""Defect 6 of issue 17: a ``kill -9`` of the process that owns an executor leaves no helper
process behind (pool workers, fork server, resource tracker; Ray's raylet, GCS, agents and
workers). Real processes and real signals; the process tree is read from /proc."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from process_tree import descendants, wait_gone

TESTS = Path(__file__).parent
SRC = TESTS.parent / "src"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="parent-death handling is Linux only (/proc, prctl)")


def _start(kind: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(SRC)]))
    process = subprocess.Popen([sys.executable, str(TESTS / "orphan_pool.py"), kind],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env=env, cwd=TESTS)
    assert process.stdout.readline().strip() == "started"
    return process


def _helpers_after_kill(process: subprocess.Popen, settle: float, wait: float
                        ) -> tuple[dict[int, str], dict[int, str]]:
    """Note every descendant for ``settle`` seconds, SIGKILL the owner, return (noted, still
    running ``wait`` seconds later); whatever is left is killed so that no test leaks."""
    seen: dict[int, str] = {}
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        seen.update(descendants(process.pid))
        time.sleep(0.1)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    left = wait_gone(seen, wait)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return seen, left


def test_kill_9_of_a_local_pool_owner_leaves_no_process():
    seen, left = _helpers_after_kill(_start("local"), settle=1.5, wait=5.0)
    commands = " ".join(seen.values())
    assert "forkserver" in commands and "resource_tracker" in commands, seen
    assert len(seen) >= 4, seen  # tracker, fork server, two workers
    assert left == {}, f"still running 5 s after the owner's kill -9: {left}"


def test_kill_9_of_a_local_ray_owner_leaves_no_process():
    pytest.importorskip("ray", reason="ray is not installed; pip install 'stratforge[ray]'")
    process = _start("ray")
    seen, left = _helpers_after_kill(process, settle=3.0, wait=15.0)
    assert any("raylet" in c for c in seen.values()), seen
    assert left == {}, f"still running 15 s after the owner's kill -9: {left}"
