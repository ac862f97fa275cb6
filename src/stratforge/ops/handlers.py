"""Job handlers by type: what a worker runs for a claimed job.

A handler takes a ``JobContext`` and returns the operation's ``result_summary`` (a JSON-ready
dict, or None). It reports progress through ``context.progress`` (the progress protocol),
which is also where cancellation and shutdown reach it. Built in:

- ``noop``: nothing (queue benchmarks); ``echo``: records a ``job_ran`` event with the job id
  and attempt (exactly-once checks); ``sleep``: waits ``seconds`` (default 1), cancellable;
- ``research_run``: ``stratforge run`` with ``metadata.parameters`` as research settings;
  resumes its own run when its job comes back to the queue;
- ``training_run``: the day-by-day trainer into ``<home>/training/<operation id>/``,
  resuming after the last finished day when its job comes back;
- ``simulation``: one set of exit rules on a state signal; ``sweep``: N sampled sets;
- the agent's types (``agent_cycle``, ``training``, ``backtesting``), from ``ops.agent``;
- the evolution factory's ``evolution_run`` and ``evolution_simulation``
  (``ops.evolution_jobs``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from stratforge.errors import ConfigError
from stratforge.ops.context import JobContext

Handler = Callable[[JobContext], "dict[str, Any] | None"]
_HANDLERS: dict[str, Handler] = {}
_PLUGINS = ("stratforge.ops.builtin_jobs", "stratforge.ops.agent.jobs",
            "stratforge.ops.evolution_jobs")


def register(job_type: str) -> Callable[[Handler], Handler]:
    """Decorator: ``handler`` runs jobs of ``job_type``."""
    def wrap(handler: Handler) -> Handler:
        _HANDLERS[job_type] = handler
        return handler
    return wrap


def _load() -> None:
    for name in _PLUGINS:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if not name.startswith(exc.name or "?"):  # a present plugin failing is an error
                raise


def handler_types() -> list[str]:
    """Every job type a worker can run."""
    _load()
    return sorted(_HANDLERS)


def get_handler(job_type: str) -> Handler:
    """The handler of ``job_type`` (ConfigError naming the known types otherwise)."""
    _load()
    if job_type not in _HANDLERS:
        raise ConfigError(f"no handler for job type {job_type!r}; known: "
                          f"{', '.join(sorted(_HANDLERS))}")
    return _HANDLERS[job_type]
