"""Long CLI commands as operations of the home's database (``ops.local.run_here``): the
terminal's progress bars and the operation's progress row are fed by one callback, and a
cancel from the dashboard or ``stratforge ops cancel`` ends the command with one line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from stratforge.cli.console import console
from stratforge.errors import StratforgeError
from stratforge.progress import ProgressCallback

if TYPE_CHECKING:
    from stratforge.ops.local import LocalJob


class OperationCancelledByRequestError(StratforgeError):
    """The command's operation was cancelled (dashboard, API, ``ops cancel``)."""


def given(**values: Any) -> dict[str, Any]:
    """The options that were given (None dropped): an operation's ``parameters``."""
    return {k: v for k, v in values.items() if v is not None and v is not False}


def tee(*callbacks: ProgressCallback) -> ProgressCallback:
    """One progress callback that calls each of ``callbacks`` in order."""
    def update(phase: str, done: int, total: int, message: str = "") -> None:
        for callback in callbacks:
            callback(phase, done, total, message)
    return update


@contextmanager
def recorded(op_type: str, parameters: dict[str, Any], *, resume_hint: str,
             metadata: dict[str, Any] | None = None,
             phases: tuple[str, ...] | None = None) -> Iterator[LocalJob]:
    """Run the block as a ``op_type`` operation (its id printed first); a cancel from
    elsewhere becomes a one-line error naming ``resume_hint`` (how to continue)."""
    from stratforge.ops.context import OperationCancelledError
    from stratforge.ops.db import open_database
    from stratforge.ops.local import run_here

    db = open_database()
    try:
        with run_here(db, op_type, parameters, metadata=metadata, phases=phases) as job:
            console.print(f"operation {job.job.operation_id} (stratforge ops show "
                          f"{job.job.operation_id}; cancel from the dashboard or with "
                          "stratforge ops cancel)", highlight=False, soft_wrap=True)
            yield job
    except OperationCancelledError:
        raise OperationCancelledByRequestError(
            f"operation {job.job.operation_id} was cancelled; what it finished is saved: "
            f"{resume_hint}") from None
