"""Run folders: ``<home>/runs/<run_id>/`` with the config, the phase state and the artifacts."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stratforge.config import resolve_home
from stratforge.data.atomic import atomic_write_json, read_json
from stratforge.errors import ConfigError
from stratforge.names import check_run_id
from stratforge.research.config import EXECUTION_FIELDS, ResearchConfig

CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
PHASES: tuple[str, ...] = ("data", "discovery", "matching", "sweep", "anova", "refine",
                           "validation", "report")
"""The phases of a run, in order."""


def runs_root(home: Path | str | None = None) -> Path:
    """The folder that holds every run."""
    return resolve_home(home) / "runs"


def new_run_id(now: datetime | None = None) -> str:
    """``run_<YYYYMMDD_HHMMSS>_<8 hex>`` (UTC)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d_%H%M%S")
    return f"run_{stamp}_{secrets.token_hex(4)}"


@dataclass
class RunFolder:
    """One run's folder, its config and its phase state (``state.json``)."""

    path: Path
    config: ResearchConfig
    state: dict[str, Any]

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
        created = datetime.now(UTC).isoformat(timespec="seconds")
        atomic_write_json(path / CONFIG_FILE, {"run_id": run_id, "created": created,
                                                "config": config.model_dump(mode="json")})
        folder = cls(path, config, {"created": created, "phases": {}})
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
        stored = read_json(path / CONFIG_FILE)["config"]
        overrides = {k: v for k, v in (execution or {}).items()
                     if k in EXECUTION_FIELDS and v is not None}
        config = ResearchConfig(**{**stored, **overrides})
        state_path = path / STATE_FILE
        state = read_json(state_path) if state_path.exists() else {"phases": {}}
        return cls(path, config, state)

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
