"""Helpers of the dashboard tests and benchmark (no tests here): a real ``stratforge serve``
on a free loopback port, and Debian's chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

CHROMIUM = os.environ.get("STRATFORGE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--disable-background-networking", "--disable-component-update",
                 "--disable-default-apps", "--disable-sync", "--no-first-run",
                 "--metrics-recording-only", "--disable-dev-shm-usage", "--no-sandbox"]
ROOT = Path(__file__).resolve().parents[1]


def artifacts_folder() -> Path:
    """Where screenshots go: ``$STRATFORGE_TEST_ARTIFACTS``, else ``test-artifacts/dashboard``
    (git-ignored)."""
    folder = Path(os.environ.get("STRATFORGE_TEST_ARTIFACTS") or ROOT / "test-artifacts") / \
        "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def browser_problem() -> str | None:
    """None when Playwright and chromium are usable, else why not."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        return f"chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    return None


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running ``stratforge serve``: its URL, home, token and process."""

    url: str
    home: Path
    token: str | None
    process: subprocess.Popen
    log: Path

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header when the server has a token."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A call to ``/api/v1<path>`` with the token."""
        return httpx.request(method, f"{self.url}/api/v1{path}", headers=self.headers,
                             timeout=30, **kwargs)


@contextmanager
def serve(home: Path, *, token: str | None = None, workers: int = 1,
          concurrency: int = 2) -> Iterator[Server]:
    """``stratforge serve`` on a free loopback port against ``home`` (waits for /health)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("STRATFORGE_DATABASE_URL", "STRATFORGE_API_TOKEN")}
    if token:
        env["STRATFORGE_API_TOKEN"] = token
    home.mkdir(parents=True, exist_ok=True)
    log = home / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "stratforge.cli.main", "--home", str(home), "serve",
             "--port", str(port), "--workers", str(workers), "--concurrency",
             str(concurrency)], env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", home, token, process, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"stratforge serve exited: {log.read_text()}")
            try:
                if httpx.get(f"{server.url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not come up: {log.read_text()}")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class Console:
    """What a page wrote to the console, and its uncaught errors."""

    errors: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> None:
        """Record the page's console errors and uncaught exceptions."""
        def on_console(message: Any) -> None:
            self.messages.append(f"{message.type}: {message.text}")
            if message.type == "error":
                self.errors.append(message.text)
        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Debian chromium (background networking disabled) under Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def write_fx_hourly_csv(path: Path, *, seed: int = 5, days: int = 365,
                        price: float = 1.08, tick: float = 0.00001) -> Path:
    """An EURUSD-like CSV: hourly bars of the FX 24x5 week (Sunday 17:00 to Friday 17:00
    New York), a random walk on the ``tick`` grid around ``price`` (hourly steps of about
    ten pips), with wicks; columns timestamp (ISO, UTC), open, high, low, close, volume."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2025-01-01", periods=days * 24, freq="1h", tz="UTC")
    local = stamps.tz_convert("America/New_York")
    weekday, hour = local.day_of_week, local.hour
    open_week = (weekday < 4) | ((weekday == 6) & (hour >= 17)) | ((weekday == 4) & (hour < 17))
    stamps = stamps[open_week]
    n = len(stamps)
    steps = np.round(rng.normal(0, 0.0010, n) / tick)
    close = np.round(price / tick) + np.cumsum(steps)
    opened = np.concatenate([[close[0] - steps[0]], close[:-1]])
    wicks = np.round(np.abs(rng.normal(0, 0.0004, (2, n))) / tick)
    decimals = len(f"{tick:.10f}".rstrip("0").split(".")[1])

    def prices(ticks: np.ndarray) -> np.ndarray:
        return np.round(ticks * tick, decimals)

    pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%dT%H:%M:%SZ"), "open": prices(opened),
                  "high": prices(np.maximum(opened, close) + wicks[0]),
                  "low": prices(np.minimum(opened, close) - wicks[1]),
                  "close": prices(close), "volume": rng.integers(100, 1000, n)}
                 ).to_csv(path, index=False)
    return path


def stratforge_cli(home: Path, *args: str, timeout: float = 300) -> str:
    """Run ``stratforge --home HOME ARGS`` in a subprocess; its output (fails on exit != 0)."""
    done = subprocess.run([sys.executable, "-m", "stratforge.cli.main", "--home", str(home),
                           *args], capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"stratforge {' '.join(args)} exited {done.returncode}: "
                           f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout
