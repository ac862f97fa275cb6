"""Databases for tests: a fresh SQLite file, or a fresh schema on the local PostgreSQL server.

``database`` (in conftest) is parametrised over both backends. PostgreSQL tests skip with the
reason when the server is unreachable, unless STRATFORGE_REQUIRE_SERVICES=1 (CI), where they
fail instead.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

POSTGRES_URL = os.environ.get("STRATFORGE_TEST_POSTGRES_URL",
                              "postgresql://postgres@127.0.0.1:5432/test")


def require_service(reason: str) -> None:
    """Skip with ``reason``, or fail when services are required."""
    if os.environ.get("STRATFORGE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (STRATFORGE_REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(reason)


def postgres_available() -> str | None:
    """None when the local server answers, else why not."""
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except Exception as exc:
        return f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc}"
    return None


@contextmanager
def postgres_schema_url() -> Iterator[str]:
    """A database URL whose search_path is a new, empty schema (dropped afterwards)."""
    import psycopg

    problem = postgres_available()
    if problem:
        require_service(problem)
    schema = f"sf_test_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def sqlite_url(folder: Path) -> str:
    """The embedded database's URL inside ``folder``."""
    return f"sqlite:///{folder / 'stratforge.db'}"
