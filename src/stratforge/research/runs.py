"""Run folders: ``<home>/runs/<run_id>/`` with the config, the phase state and the artifacts."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stratforge.config import resolve_home
from stratforge.data.atomic import atomic_write_json, read_json
from stratforge.errors import ConfigError
from stratforge.names import check_run_id
from stratforge.research.config import EXECUTION_FIELDS, ResearchConfig
from stratforge.research.run_lock import RunLock

CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
PHASES: tuple[str, ...] = ("data", "discovery", "optimize", "matching", "sweep", "anova", "refine",
                           "validation", "report")
"""The phases of a run, in order."""


def runs_root(home: Path | str | None = None) -> Path:
    """The folder that holds every run."""
    return resolve_home(home) / "runs"


def new_run_id(now: datetime | None = None) -> str:
    """``run_<YYYYMMDD_HHMMSS>_<8 hex>`` (UTC)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d_%H%M%S")
    return f"run_{stamp}_{secrets.token_hex(4)}"


def _damaged(path: Path, problem: str) -> ConfigError:
    return ConfigError(f"{path} {problem}; the run cannot be resumed: restore the file, or "
                       f"delete {path.parent} and start a new run")


def _read_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, or a one-line ConfigError naming the file."""
    try:
        value = read_json(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _damaged(path, f"is not readable JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(value, dict):
        raise _damaged(path, f"holds a JSON {type(value).__name__}, not an object")
    return value


def read_stored_config(path: Path) -> dict[str, Any]:
    """The research settings stored in a run's ``config.json`` (checked shape)."""
    stored = _read_object(path).get("config")
    if not isinstance(stored, dict):
        raise _damaged(path, "has no \"config\" object")
    return stored


def read_state(path: Path) -> dict[str, Any]:
    """A run's ``state.json`` (checked shape); a missing file is a run with no phase done."""
    if not path.exists():
        return {"phases": {}}
    state = _read_object(path)
    if not isinstance(state.get("phases"), dict):
        raise _damaged(path, "has no \"phases\" object")
    return state


@dataclass
class RunFolder:
    """One run's folder, its config and its phase state (``state.json``).

    ``create`` and ``open`` take the folder's exclusive lock (:mod:`run_lock`) before they
    read or write anything: one process writes a run at a time. ``release()`` (or leaving a
    ``with`` block, or the process ending) frees it.
    """

    path: Path
    config: ResearchConfig
    state: dict[str, Any]
    lock: RunLock | None = field(default=None, repr=False, compare=False)

    @property
    def run_id(self) -> str:
        """The run's id (its folder name)."""
        return self.path.name

    @classmethod
    def create(cls, config: ResearchConfig, home: Path | str | None = None,
               run_id: str | None = None) -> RunFolder:
        """A new run folder with its config written."""
        run_id = new_run_id() if run_id is None else check_run_id(run_id)
        path = runs_root(home) / run_id
        if path.exists():
            raise ConfigError(f"run {run_id} already exists in {path.parent}; choose another "
                              "--run-id or pass --resume to continue it")
        path.mkdir(parents=True)
        lock = RunLock(path).acquire()
        created = datetime.now(UTC).isoformat(timespec="seconds")
        atomic_write_json(path / CONFIG_FILE, {"run_id": run_id, "created": created,
                                                "config": config.model_dump(mode="json")})
        folder = cls(path, config, {"created": created, "phases": {}}, lock)
        folder.save_state()
        return folder

    @classmethod
    def open(cls, run_id: str | None = None, home: Path | str | None = None,
             execution: dict[str, Any] | None = None) -> RunFolder:
        """An existing run (the newest one when ``run_id`` is None), its stored config with
        the ``execution`` settings replaced (see ``EXECUTION_FIELDS``)."""
        root = runs_root(home)
        if run_id is None:
            runs = sorted(p for p in root.glob("run_*") if (p / CONFIG_FILE).exists()) \
                if root.exists() else []
            if not runs:
                raise ConfigError(f"no research run in {root}; start one with `stratforge run`")
            path = runs[-1]
        else:
            path = root / check_run_id(run_id)
            if not (path / CONFIG_FILE).exists():
                known = ", ".join(p.name for p in sorted(root.glob("run_*"))[-5:]) or "none"
                raise ConfigError(f"no run {run_id} in {root} (latest: {known})")
        lock = RunLock(path).acquire()
        try:
            stored = read_stored_config(path / CONFIG_FILE)
            overrides = {k: v for k, v in (execution or {}).items()
                         if k in EXECUTION_FIELDS and v is not None}
            try:
                config = ResearchConfig(**{**stored, **overrides})
            except (TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
                problem = " ".join(str(exc).split())
                raise _damaged(path / CONFIG_FILE, f"holds settings that are not valid "
                                                   f"({problem[:300]})") from None
            state = read_state(path / STATE_FILE)
        except BaseException:
            lock.release()
            raise
        return cls(path, config, state, lock)

    def release(self) -> None:
        """Free the run folder's lock (safe to call twice)."""
        if self.lock is not None:
            self.lock.release()

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def save_state(self) -> None:
        """Write ``state.json`` atomically."""
        atomic_write_json(self.path / STATE_FILE, self.state)

    def done(self, phase: str) -> bool:
        """Whether ``phase`` finished in this run."""
        return phase in self.state.get("phases", {})

    def finish(self, phase: str, info: dict[str, Any]) -> None:
        """Record that ``phase`` finished, with its figures, and save the state."""
        self.state.setdefault("phases", {})[phase] = info
        self.save_state()

    def forget(self, *phases: str) -> None:
        """Mark phases as not done (to run them again)."""
        for phase in phases:
            self.state.get("phases", {}).pop(phase, None)
        self.save_state()

    def info(self, phase: str) -> dict[str, Any]:
        """The figures recorded when ``phase`` finished (empty if it did not)."""
        return dict(self.state.get("phases", {}).get(phase, {}))
