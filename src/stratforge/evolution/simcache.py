"""Finished simulations on disk: ``<home>/models/<model>/sims/<simulation fingerprint>.json``.

A simulation whose fingerprint has a file is never run again (the database keeps the same
results for queries; this file is what every worker can read without it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stratforge.data.atomic import atomic_write_json, read_json
from stratforge.evolution.fingerprint import check_fingerprint
from stratforge.evolution.modelstore import model_folder


def _path(model: str, simulation: str, home: Path | str | None) -> Path:
    name = check_fingerprint(simulation, "simulation fingerprint")
    return model_folder(model, home) / "sims" / f"{name}.json"


def cached_simulation(model: str, simulation: str, home: Path | str | None = None
                      ) -> dict[str, Any] | None:
    """The stored result of a simulation, or None."""
    path = _path(model, simulation, home)
    return read_json(path) if path.is_file() else None


def store_simulation(model: str, simulation: str, result: dict[str, Any],
                     home: Path | str | None = None) -> None:
    """Store a simulation's result (atomically)."""
    path = _path(model, simulation, home)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, result)
