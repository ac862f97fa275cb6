"""A terminal run, watched and stopped in the browser (issue 18, acceptance): ``stratforge
train --dashboard`` in its own process against the home of a running ``stratforge serve``
opens the run's page of that server; chromium (Playwright) on that Training page sees the day
count rise, and a cancel from the page stops the terminal's run, which says so in one line.

Without chromium or Playwright the test skips, saying why; with
``STRATFORGE_REQUIRE_SERVICES=1`` (CI) it fails instead.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from dashboard_helpers import Console, artifacts_folder, browser_problem, chromium, serve
from db_helpers import require_service
from research_helpers import make_market
from test_dashboard_browser import wait_for

pytestmark = pytest.mark.slow
DAYS = re.compile(r"^(\d+) days trained")


def _days_on_disk(home) -> int:
    """Days the terminal run has written so far (0 before its first)."""
    path = home / "training" / "MNQ-1m" / "days.parquet"
    try:
        return len(pd.read_parquet(path))
    except (OSError, ValueError):  # not there yet, or being replaced
        return 0


def _days(page) -> int:
    found = DAYS.match(page.inner_text("#training-summary"))
    return int(found.group(1)) if found else -1


def test_a_terminal_training_run_rises_on_the_page_and_stops_from_it(tmp_path):
    problem = browser_problem()
    if problem:
        require_service(problem)
    home = tmp_path / "home"
    make_market(home, "realistic", 60, seed=5)
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n')
    browser.chmod(0o755)
    env = {k: v for k, v in os.environ.items()
           if k not in ("STRATFORGE_DATABASE_URL", "STRATFORGE_API_TOKEN", "STRATFORGE_API_URL",
                        "STRATFORGE_HOME")}
    with serve(home, workers=0) as server, chromium() as launched:
        trainer = subprocess.Popen(
            [sys.executable, "-m", "stratforge.cli.main", "--home", str(home), "train",
             "--iterations", "3000", "--templates", "warmup", "--warmup-days", "10",
             "--max-days", "45", "--dashboard"], env={**env, "BROWSER": str(browser)},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while not (opened.exists() and opened.read_text().strip()):
                assert trainer.poll() is None and time.monotonic() < deadline, \
                    trainer.communicate()
                time.sleep(0.1)
            url = opened.read_text().strip()
            assert url.startswith(f"{server.url}/ui/#/training/op_training_run_"), url
            # a fast machine trains a day in a fifth of a second: hold the terminal run
            # still (SIGSTOP) while the browser opens and while the page cancels it, so
            # the page always sees it running
            while _days_on_disk(home) < 1:
                assert trainer.poll() is None and time.monotonic() < deadline + 120, \
                    trainer.communicate()
                time.sleep(0.05)
            os.kill(trainer.pid, signal.SIGSTOP)
            page = launched.new_context(viewport={"width": 1440, "height": 900}).new_page()
            console = Console()
            console.watch(page)
            page.goto(url)
            page.wait_for_selector("#page[data-state=ready]", timeout=30_000)
            wait_for(page, "() => /^[1-9]\\d* days trained/.test("
                           "document.getElementById('training-summary').innerText)",
                     timeout=120_000)
            first = _days(page)
            os.kill(trainer.pid, signal.SIGCONT)
            wait_for(page, "(n) => parseInt(document.getElementById('training-summary')"
                           ".innerText) > n", arg=first, timeout=60_000)
            os.kill(trainer.pid, signal.SIGSTOP)
            assert _days(page) > first
            page.screenshot(path=str(artifacts_folder() / "training-cli-live.png"),
                            full_page=True)
            op_id = url.rsplit("/", 1)[1]
            page.click("#training-cancel")
            wait_for(page, "() => document.getElementById('training-status').innerText"
                           " === 'cancelled'", timeout=30_000)
            assert server.api("GET", f"/operations/{op_id}").json()["status"] == "cancelled"
            os.kill(trainer.pid, signal.SIGCONT)  # it sees the cancel at its next report
            out, err = trainer.communicate(timeout=120)
        finally:
            if trainer.poll() is None:
                trainer.send_signal(signal.SIGKILL)
        assert trainer.returncode == 1, out + err
        assert "was cancelled" in err and "--resume" in err
        wait_for(page, "() => document.getElementById('training-status').innerText"
                       " === 'cancelled'", timeout=30_000)
        assert page.is_hidden("#training-cancel")
        done = len(pd.read_parquet(home / "training" / "MNQ-1m" / "days.parquet"))
        assert first < done < 45
        # the list of the Training page names the terminal's run with its folder and days
        page.goto(f"{server.url}/ui/#/training")
        page.wait_for_selector("#page[data-state=ready]", timeout=30_000)
        row = page.inner_text("#training-runs tbody tr")
        assert "stratforge train" in row and "training/MNQ-1m" in row and str(done) in row
        assert not console.errors, console.errors
