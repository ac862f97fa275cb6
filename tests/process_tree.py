"""Process trees read from /proc (Linux), for tests that kill a parent and look for orphans."""

from __future__ import annotations

import os
import time
from pathlib import Path


def _stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, state letter, command line) of ``pid``, or None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[1]), fields[0], cmdline


def descendants(root: int) -> dict[int, str]:
    """Every living process below ``root`` (pid -> command line), zombies left out."""
    children: dict[int, list[int]] = {}
    info: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _stat(int(entry))
        if stat is None or stat[1] == "Z":
            continue
        children.setdefault(stat[0], []).append(int(entry))
        info[int(entry)] = stat[2]
    found: dict[int, str] = {}
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found[child] = info[child]
                stack.append(child)
    return found


def alive(pids) -> dict[int, str]:
    """The processes of ``pids`` still running (not zombies), with their command lines."""
    out = {}
    for pid in pids:
        stat = _stat(pid)
        if stat is not None and stat[1] != "Z":
            out[pid] = stat[2]
    return out


def wait_gone(pids, seconds: float) -> dict[int, str]:
    """Wait up to ``seconds`` for every process of ``pids`` to end; those still running."""
    deadline = time.monotonic() + seconds
    left = alive(pids)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = alive(left)
    return left
