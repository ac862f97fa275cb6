"""Shared terminal helpers: the Rich consoles, progress bars and error handling."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text
from typer.core import TyperGroup

from stratforge.errors import StratforgeError, printable
from stratforge.progress import ProgressCallback


class SafeConsole(Console):
    """A Rich console that shows control characters in printed strings as visible escapes,
    so text taken from a file (a CSV header, a path) cannot drive the terminal."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        """Print like ``Console.print``, with each string passed through ``printable``."""
        super().print(*(printable(o) if isinstance(o, str) else o for o in objects), **kwargs)


# Piped output (logs, CI, tests) gets a wide fixed width instead of Rich's 80-column default.
console = SafeConsole(width=None if sys.stdout.isatty() else 120)


class FriendlyErrors(TyperGroup):
    """A command group that turns stratforge errors into one line and a non-zero exit."""

    def invoke(self, ctx: typer.Context) -> object:
        """Run the command, reporting a StratforgeError as 'Error: <message>' (exit code 1)."""
        try:
            return super().invoke(ctx)
        except StratforgeError as exc:
            typer.echo(f"Error: {printable(str(exc))}", err=True)
            raise typer.Exit(code=1) from exc


class RateColumn(ProgressColumn):
    """Items per second of a task (blank until Rich has measured a speed)."""

    def render(self, task: Task) -> Text:
        """The task's rate, e.g. '12.5/s'."""
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f}/s" if speed else "", style="progress.data.speed")


@contextmanager
def progress_bars() -> Iterator[ProgressCallback]:
    """A progress callback drawing one Rich bar per phase (items, rate, elapsed, ETA)."""
    tasks: dict[str, TaskID] = {}
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  RateColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                  TextColumn("{task.fields[note]}"),
                  console=console, transient=False,
                  disable=not console.is_terminal) as bars:
        def update(phase: str, done: int, total: int, message: str = "") -> None:
            if phase not in tasks:
                tasks[phase] = bars.add_task(phase, total=total or None, note="")
            bars.update(tasks[phase], completed=done, total=total or None, note=message)

        yield update
