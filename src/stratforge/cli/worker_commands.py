"""``stratforge worker`` and ``stratforge serve``: run jobs, or the API plus a worker pool."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from typing import Annotated

import typer

from stratforge.cli.console import console
from stratforge.config import get_settings
from stratforge.errors import ConfigError
from stratforge.processes import set_death_signal


def _types(value: str | None) -> list[str] | None:
    return [t.strip() for t in value.split(",") if t.strip()] if value else None


def worker_command(
    concurrency: Annotated[int, typer.Option(help="Jobs run at the same time.")] = 1,
    types: Annotated[str | None, typer.Option(
        help="Comma-separated job types to take (default: every type).")] = None,
    stale_after: Annotated[float, typer.Option(
        help="Seconds without a heartbeat before a job goes back to the queue.")] = 60.0,
    heartbeat: Annotated[float, typer.Option(help="Seconds between heartbeats.")] = 5.0,
    poll: Annotated[float, typer.Option(help="Seconds between claims when idle.")] = 0.2,
    exit_when_idle: Annotated[bool, typer.Option(
        help="Exit once no job of its types is queued or running.")] = False,
    max_jobs: Annotated[int | None, typer.Option(help="Exit after this many jobs.")] = None,
) -> None:
    """Claim and run jobs from the queue (STRATFORGE_DATABASE_URL, else the embedded
    database); SIGTERM hands running jobs back to the queue and exits."""
    from stratforge.ops.db import open_database
    from stratforge.ops.worker import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    db = open_database()
    worker = Worker(db, types=_types(types), concurrency=concurrency, poll_interval=poll,
                    heartbeat_every=heartbeat, stale_after=stale_after,
                    exit_when_idle=exit_when_idle, max_jobs=max_jobs)
    console.print(f"worker {worker.worker_id}: {concurrency} slot(s), types "
                  f"{', '.join(worker.types)}, database {db.dialect}")
    stats = worker.run()
    console.print(f"worker {worker.worker_id} stopped: {stats.completed} completed, "
                  f"{stats.failed} failed, {stats.cancelled} cancelled, {stats.released} "
                  "handed back")


def _die_with_serve() -> None:
    """In a pool worker (Linux): receive SIGTERM when the serve process dies, however it
    dies (uvicorn re-raises the signal that stopped it, so no finally block runs)."""
    set_death_signal(signal.SIGTERM)


def _start_workers(count: int, concurrency: int) -> list[subprocess.Popen]:
    home = str(get_settings().home)
    command = [sys.executable, "-m", "stratforge.cli.main", "--home", home, "worker",
               "--concurrency", str(concurrency)]
    # the pool starts before uvicorn or any thread exists, so preexec_fn is safe here
    return [subprocess.Popen(command, env=dict(os.environ),
                             preexec_fn=_die_with_serve)  # noqa: PLW1509
            for _ in range(count)]


def serve_command(
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the API and dashboard.")] = 8000,
    workers: Annotated[int, typer.Option(help="Local worker processes.")] = 1,
    concurrency: Annotated[int, typer.Option(
        help="Job slots per worker (an agent cycle needs two: itself and its child).")] = 2,
    allowed_host: Annotated[list[str] | None, typer.Option(
        help="Another host name the server answers to (repeatable; '*' for any). The "
             "loopback names and the bind address are always allowed "
             "[STRATFORGE_ALLOWED_HOSTS, commas].")] = None,
    max_body: Annotated[int | None, typer.Option(
        help="Largest request body in bytes [STRATFORGE_MAX_BODY_BYTES, default 1 MiB].")
                        ] = None,
) -> None:
    """The REST API, the dashboard and a local worker pool, in one command.

    Writes <home>/server.json while it runs, so the CLI's read commands of this home use
    this server (and the API in process when none runs)."""
    import uvicorn

    from stratforge.api.guard import ALLOWED_HOSTS_ENV, MAX_BODY_ENV, max_body_from_env
    from stratforge.api.security import bind_address, check_bind
    from stratforge.cli.server_marker import local_url, remove_marker, write_marker
    from stratforge.ops.db import open_database
    from stratforge.ops.queue import reconcile

    host = bind_address(host)
    check_bind(host, os.environ.get("STRATFORGE_API_TOKEN"))
    if workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {workers}")
    if max_body is not None:
        if max_body < 1:
            raise ConfigError(f"--max-body must be a positive number of bytes, got {max_body}")
        os.environ[MAX_BODY_ENV] = str(max_body)
    max_body_from_env()  # a bad STRATFORGE_MAX_BODY_BYTES stops here, not in uvicorn
    hosts = [h for h in (os.environ.get(ALLOWED_HOSTS_ENV) or "").split(",") if h.strip()]
    os.environ[ALLOWED_HOSTS_ENV] = ",".join([*hosts, *(allowed_host or []), host])
    db = open_database()
    counts = reconcile(db)
    if any(counts.values()):
        console.print(f"reconciled: {counts}")
    pool = _start_workers(workers, concurrency)
    home = get_settings().home
    url = local_url(host, port)
    console.print(f"stratforge dashboard: {url}/ui/", highlight=False, soft_wrap=True)
    console.print(f"API {url}/api/v1 (docs {url}/api/v1/docs), {workers} worker(s), "
                  f"database {db.dialect}, home {home}", highlight=False, soft_wrap=True)
    write_marker(home, url)
    try:
        uvicorn.run("stratforge.api.app:create_app", factory=True, host=host, port=port,
                    log_level="warning")
    finally:
        remove_marker(home)
        for process in pool:
            process.send_signal(signal.SIGTERM)
        for process in pool:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
