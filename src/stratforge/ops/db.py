"""The database: the embedded SQLite file or a shared PostgreSQL server, migrated at start.

``open_database()`` gives the database in force (``STRATFORGE_DATABASE_URL``, else
``<home>/stratforge.db``), with the Alembic migrations applied. SQLite runs in WAL mode with a
busy timeout, and writes that must not interleave (claiming a job) take an immediate
transaction (``Database.write()``). PostgreSQL URLs are driven by psycopg 3; a schema can be
chosen in the URL (``?options=-csearch_path%3Dmy_schema``).
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from stratforge.config import get_settings
from stratforge.errors import ConfigError

MIGRATIONS = Path(__file__).with_name("migrations")
_ADVISORY_LOCK = 7_301_117  # any constant: serialises migrations of concurrent PostgreSQL starts


def utcnow() -> datetime:
    """Now, as the naive UTC datetime every table stores."""
    return datetime.now(UTC).replace(tzinfo=None)


def normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` URLs use psycopg 3; other URLs are kept."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _sqlite_engine(url: str) -> Engine:
    path = make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                           pool_size=20, max_overflow=40)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:
        # let SQLAlchemy's "begin" event emit BEGIN itself, so it can be BEGIN IMMEDIATE
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


class Database:
    """An engine plus the two kinds of transaction stratforge uses.

    ``read()`` and ``write()`` are context managers yielding a connection inside one
    transaction that commits on success and rolls back on error; ``write()`` on SQLite takes
    the write lock at BEGIN (immediate), so read-then-update sequences cannot interleave.
    """

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = normalise_url(url)
        try:
            parsed = make_url(self.url)
        except Exception as exc:
            raise ConfigError(f"STRATFORGE_DATABASE_URL {url!r} is not a database URL: {exc}"
                              ) from None
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(self.url)
        elif self.dialect == "postgresql":
            # no pre-ping: it costs a round trip per transaction; a dropped connection
            # raises OperationalError, which the worker's queue writes retry
            self.engine = create_engine(self.url, pool_size=10, max_overflow=20,
                                        pool_recycle=1800)
        else:
            raise ConfigError(f"database {self.dialect!r} is not supported; use SQLite (the "
                              "default) or a postgresql:// URL in STRATFORGE_DATABASE_URL")
        if migrate:
            self.migrate()

    @property
    def is_postgres(self) -> bool:
        """True on PostgreSQL (FOR UPDATE SKIP LOCKED is available)."""
        return self.dialect == "postgresql"

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection in a plain transaction."""
        with self.engine.begin() as connection:
            yield connection

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection in a transaction that holds the write lock from its start (SQLite)."""
        with self.engine.connect() as plain:
            connection = plain.execution_options(sqlite_begin="IMMEDIATE") \
                if self.dialect == "sqlite" else plain
            with connection.begin():
                yield connection

    def migrate(self) -> None:
        """Apply every Alembic migration not yet applied (serialised across processes)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self._migration_lock(), self.engine.connect() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[None]:
        if self.is_postgres:
            with self.engine.connect() as lock:
                lock.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _ADVISORY_LOCK})
                try:
                    yield
                finally:
                    lock.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _ADVISORY_LOCK})
                    lock.commit()
            return
        path = make_url(self.url).database
        if not path or path == ":memory:":
            yield
            return
        with open(f"{path}.migrate.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


_databases: dict[str, Database] = {}
_lock = threading.Lock()


def open_database(url: str | None = None) -> Database:
    """The database at ``url`` (default: the settings' database), opened and migrated once
    per process."""
    resolved = normalise_url(url or get_settings().resolved_database_url)
    with _lock:
        if resolved not in _databases:
            _databases[resolved] = Database(resolved)
        return _databases[resolved]


def forget_databases() -> None:
    """Dispose of every database opened by ``open_database`` (tests, forked children)."""
    with _lock:
        for database in _databases.values():
            database.dispose()
        _databases.clear()
