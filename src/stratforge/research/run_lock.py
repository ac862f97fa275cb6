"""The exclusive lock a process holds on a run folder while it writes it (``<run>/.lock``).

``flock`` on a file inside the folder: the kernel drops it when the holder exits, however it
exits, so a killed run never leaves a stale lock; the holder's pid is written into the file
so that the process refused can name it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from stratforge.errors import ConfigError

LOCK_FILE = ".lock"


class RunLock:
    """An exclusive, non-blocking lock on one run folder; ``release()`` (or the holder's
    exit) frees it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock, or raise ConfigError naming the run and the holder's pid."""
        fd = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(f"run {self.folder.name} is being written by another process "
                              f"(pid {holder}); wait for it to finish or stop it, then "
                              "resume") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Free the lock (safe to call twice)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None
