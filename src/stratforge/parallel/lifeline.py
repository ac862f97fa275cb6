"""Helper processes die with the process that started them, however it dies (Linux).

A ``kill -9`` or an out-of-memory kill of the process that owns a pool runs no ``finally``
block, so nothing closes the pool: without help its workers wait for jobs forever, the fork
server lives as long as a worker holds its pipe, and the resource tracker as long as any of
them does. Two guards, both set up in the helper itself:

- the **death signal** (``prctl(PR_SET_PDEATHSIG, SIGKILL)``): the kernel kills the helper
  when its parent thread ends. Used where the parent is a process that lives exactly as long
  as the pool (a worker forked by the fork server), not where it is the owner's thread that
  happened to start the helper (that thread may end long before the owner);
- a **watchdog thread** that waits for the owner's exit (``pidfd``, else polling every half
  second) and then kills its own process. It covers helpers whose parent is the owner (the
  fork server, spawned workers).

With both, the chain is: the owner dies, the fork server's watchdog ends the fork server, the
kernel kills the workers it forked, and the resource tracker, whose pipe has no writer left,
cleans up and exits.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading

from stratforge.processes import pid_alive, set_death_signal

OWNER_ENV = "STRATFORGE_POOL_OWNER"
"""Environment variable naming the pid of the process whose pools the helpers belong to."""

POLL_SECONDS = 0.5


def mark_owner() -> int:
    """Record this process as the owner of the helpers it starts from now on; its pid.

    Helper processes inherit the environment, so the fork server (started by the first
    pool) learns whom to follow without any change to multiprocessing itself.
    """
    pid = os.getpid()
    os.environ[OWNER_ENV] = str(pid)
    return pid


def _wait_for_exit(pid: int) -> None:
    """Block until process ``pid`` has ended (returns at once if it already has)."""
    pidfd = None
    with contextlib.suppress(AttributeError, OSError):
        pidfd = os.pidfd_open(pid)
    if pidfd is None:
        # no pidfd (old kernel, not Linux): poll; a reused pid is caught by the parent check
        parent = os.getppid()
        while pid_alive(pid) and os.getppid() == parent:
            threading.Event().wait(POLL_SECONDS)
        return
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        while not poller.poll(None):
            pass
    finally:
        os.close(pidfd)


def _die_when_gone(owner: int) -> None:
    _wait_for_exit(owner)
    os.kill(os.getpid(), signal.SIGKILL)  # no cleanup to wait for: the owner is gone


def watch_owner(owner: int) -> threading.Thread | None:
    """Start a daemon thread that kills this process once process ``owner`` has ended;
    None when this process is the owner itself."""
    if owner == os.getpid():
        return None
    if not pid_alive(owner):
        os.kill(os.getpid(), signal.SIGKILL)
    thread = threading.Thread(target=_die_when_gone, args=(owner,), daemon=True,
                              name="stratforge-lifeline")
    thread.start()
    return thread


def follow_owner(owner: int) -> None:
    """In a pool worker: die with ``owner`` (watchdog) and, when the worker's parent is a
    fork server rather than the owner, with that parent too (death signal)."""
    parent = os.getppid()
    if parent != owner and set_death_signal() and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)  # the parent died before the signal was set
    watch_owner(owner)


def owner_from_environment() -> int | None:
    """The owner recorded by :func:`mark_owner` in an ancestor, if any."""
    value = os.environ.get(OWNER_ENV, "")
    return int(value) if value.isdigit() else None
