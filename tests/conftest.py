"""Shared fixtures: an isolated home folder and random canonical bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stratforge.config import configure


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh STRATFORGE_HOME for one test."""
    folder = tmp_path / "home"
    monkeypatch.setenv("STRATFORGE_HOME", str(folder))
    configure()
    yield folder
    monkeypatch.delenv("STRATFORGE_HOME")
    configure()


def random_bars(seed: int, start: str, end: str, step_seconds: int = 60,
                keep: float = 0.5, drop_days: int = 3) -> pd.DataFrame:
    """Canonical bars on a ``step_seconds`` grid between two UTC dates, thinned at random,
    with a few whole days removed (gaps). Independent of any stratforge code."""
    rng = np.random.default_rng(seed)
    grid = pd.date_range(start, end, freq=f"{step_seconds}s", tz="UTC", inclusive="left")
    mask = rng.random(len(grid)) < keep
    days = grid.normalize()
    unique_days = days.unique()
    for day in rng.choice(unique_days, size=min(drop_days, len(unique_days) // 3), replace=False):
        mask &= days != day
    ts = grid[mask].as_unit("ns")
    n = len(ts)
    close = 100 + np.cumsum(rng.normal(0, 0.5, n)).round(2)
    open_ = np.concatenate(([100.0], close[:-1]))[:n]
    high = np.maximum(open_, close) + rng.exponential(0.2, n).round(2)
    low = np.minimum(open_, close) - rng.exponential(0.2, n).round(2)
    volume = rng.integers(1, 50, n).astype(float)
    return pd.DataFrame({"ts": ts, "open": open_, "high": high, "low": low, "close": close,
                         "volume": volume})


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A fresh, empty database URL: SQLite in the test's folder, or a new PostgreSQL schema."""
    from db_helpers import postgres_schema_url, sqlite_url

    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    with postgres_schema_url() as url:
        yield url


@pytest.fixture
def database(database_url):
    """A migrated ``Database`` on each backend (disposed afterwards)."""
    from stratforge.ops.db import Database

    db = Database(database_url)
    yield db
    db.dispose()
