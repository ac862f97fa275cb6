"""A small watcher process that ends a local Ray instance when the process that started it dies.

Ray's own fate sharing stops the raylet, the GCS and the workers when the driver is killed,
but its per-node agents (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``) outlive it. The
driver starts ``python -I reaper.py <driver pid>`` after ``ray.init``: it
notes the driver's descendants once a second (pid and start time, from ``/proc``) and, once
the driver is gone, kills the ones it noted that still run. A ``done`` line on its standard
input (the executor closed Ray itself) makes it exit without killing anything. Linux only:
elsewhere it exits at once.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path

SNAPSHOT_SECONDS = 1.0


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time in clock ticks) of ``pid``, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[1]), fields[19]


def descendants(root: int) -> dict[int, str]:
    """Every process below ``root``: pid -> start time (which tells a reused pid apart)."""
    children: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            children.setdefault(stat[0], []).append(int(entry))
            started[int(entry)] = stat[1]
    found: dict[int, str] = {}
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found[child] = started[child]
                stack.append(child)
    return found


def _kill(noted: dict[int, str]) -> None:
    for pid, start in noted.items():
        stat = _stat(pid)
        if stat is not None and stat[1] == start:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def watch(driver: int) -> None:
    """Note ``driver``'s descendants until it ends (kill them) or says ``done`` (do not)."""
    done = threading.Event()

    def read_stdin() -> None:
        for line in sys.stdin:
            if line.strip() == "done":
                done.set()
                return

    threading.Thread(target=read_stdin, daemon=True).start()
    pidfd = os.pidfd_open(driver)
    me = os.getpid()
    noted: dict[int, str] = {}
    while not done.is_set():
        noted.update({p: s for p, s in descendants(driver).items() if p != me})
        ready, _, _ = select.select([pidfd], [], [], SNAPSHOT_SECONDS)
        if ready:
            if not done.is_set():
                _kill(noted)
            return


def start(driver: int | None = None) -> subprocess.Popen | None:
    """Start the watcher for ``driver`` (default: this process); None where it cannot run
    (not Linux)."""
    if not sys.platform.startswith("linux") or not hasattr(os, "pidfd_open"):
        return None
    # its own session: a Ctrl-C meant for the driver must not stop the watcher first
    # run as a plain script (-I: no site, no PYTHONPATH): it needs the standard library only
    return subprocess.Popen([sys.executable, "-I", __file__, str(driver or os.getpid())],
                            stdin=subprocess.PIPE, text=True, start_new_session=True)


def stop(process: subprocess.Popen | None) -> None:
    """Tell the watcher that Ray was shut down normally, and wait for it."""
    if process is None:
        return
    try:
        process.communicate("done\n", timeout=5)
    except (subprocess.TimeoutExpired, OSError, ValueError):
        process.kill()
        process.wait()


if __name__ == "__main__":
    # ProcessLookupError: the driver was gone already, so nothing was noted to kill
    with contextlib.suppress(ProcessLookupError):
        watch(int(sys.argv[1]))
