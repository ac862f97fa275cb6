"""Which server serves this home: ``<home>/server.json``, written by ``stratforge serve``.

The CLI's read commands use the server named there when it answers, and otherwise the API
in process on the home's database (:mod:`stratforge.cli.api_client`). Pointing at a server
by its own home (not at a fixed port) keeps a server started for another home, or by
another user on the same machine, from answering for this one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from stratforge.processes import pid_alive

MARKER = "server.json"


def marker_path(home: Path) -> Path:
    """``<home>/server.json``."""
    return Path(home) / MARKER


def local_url(host: str, port: int) -> str:
    """The URL a process on this machine reaches a server bound to ``host:port`` at (a
    wildcard bind is reached on loopback)."""
    reach = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    if ":" in reach and not reach.startswith("["):
        reach = f"[{reach}]"
    return f"http://{reach}:{port}"


def write_marker(home: Path, url: str) -> Path:
    """Record that this process serves ``home`` at ``url`` (atomically: temp file, rename)."""
    path = marker_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({"url": url, "pid": os.getpid()}, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".server.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove_marker(home: Path) -> None:
    """Remove the marker if this process wrote it (a newer server's marker stays)."""
    path = marker_path(home)
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def marked_url(home: Path) -> str | None:
    """The URL in ``<home>/server.json`` while the process that wrote it lives; None when
    there is none, it is unreadable (a damaged marker only means "no server known") or
    its server died without removing it (a port is reused by the next server)."""
    try:
        marker = json.loads(marker_path(home).read_text(encoding="utf-8"))
        url, pid = marker.get("url"), marker.get("pid")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None
    return url if pid_alive(pid) else None
