"""``--dashboard``: open a job's live page in the browser, starting ``stratforge serve`` for
this home in the background when no server runs for it.

The URL is always printed; the browser is opened with :mod:`webbrowser` (which honours the
``BROWSER`` environment variable) unless there is no display to open it on (Linux without
``DISPLAY`` or ``WAYLAND_DISPLAY`` and no ``BROWSER``), where a text browser would take over
the terminal the job is printing to.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from stratforge.cli.console import console
from stratforge.errors import StratforgeError

DEFAULT_PORT = 8000
START_TIMEOUT = 60.0
"""Seconds a background server may take to answer its health check."""
SERVER_LOG = "server.log"
"""The background server's output, in the home."""


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/api/v1/health", timeout=1.0).status_code in (200, 503)
    except httpx.HTTPError:
        return False


def _port() -> int:
    """8000 when it is free on loopback, else a free port the system picks."""
    for port in (DEFAULT_PORT, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise StratforgeError("no free port for the dashboard's server")  # pragma: no cover


def start_server(home: Path) -> tuple[str, int]:
    """``stratforge serve`` for ``home`` in a background process (its own session, so it
    outlives this command; output in ``<home>/server.log``); its URL and pid once it
    answers."""
    from stratforge.cli.server_marker import local_url

    port = _port()
    log_path = Path(home) / SERVER_LOG
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "stratforge.cli.main", "--home", str(home), "serve",
             "--port", str(port)], stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True, env=dict(os.environ))
    url = local_url("127.0.0.1", port)
    deadline = time.monotonic() + START_TIMEOUT
    while not _answers(url):
        if process.poll() is not None:
            raise StratforgeError(f"stratforge serve stopped at once (exit code "
                                  f"{process.returncode}); see {log_path}")
        if time.monotonic() > deadline:
            raise StratforgeError(f"stratforge serve did not answer at {url} within "
                                  f"{START_TIMEOUT:g} s; see {log_path}")
        time.sleep(0.2)
    return url, process.pid


def server_url() -> str:
    """The URL of the server of this home: the one in ``<home>/server.json`` when it
    answers, else a new background one (announced with its pid)."""
    from stratforge.cli.server_marker import marked_url
    from stratforge.config import get_settings

    home = get_settings().home
    marked = marked_url(home)
    if marked and _answers(marked):
        return marked.rstrip("/")
    url, pid = start_server(home)
    console.print(f"started stratforge serve for this home at {url} (pid {pid}, log "
                  f"{home / SERVER_LOG}); it keeps running after this command: stop it with "
                  f"`kill {pid}`", highlight=False, soft_wrap=True)
    return url


def _has_display() -> bool:
    if os.environ.get("BROWSER"):
        return True
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def open_dashboard(page: str) -> str:
    """Open ``<server>/ui/#/<page>`` (a page of the dashboard, e.g. ``training/<op id>``)
    in the browser; returns the URL, which is printed either way."""
    import webbrowser

    url = f"{server_url()}/ui/#/{page}"
    console.print(f"live page: {url}", highlight=False, soft_wrap=True)
    if not _has_display():
        console.print("no display to open a browser on: open the address above yourself",
                      highlight=False)
    elif not webbrowser.open(url):
        console.print("no browser could be started: open the address above yourself",
                      highlight=False)
    return url
