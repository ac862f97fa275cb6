"""Entry point of the ``stratforge`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from stratforge import __version__
from stratforge.cli.audit_commands import audit_app
from stratforge.cli.console import FriendlyErrors, console
from stratforge.cli.data_commands import data_app
from stratforge.cli.discover_command import discover_command
from stratforge.cli.evolution_commands import evolution_app, evolve_command
from stratforge.cli.ops_commands import agent_app, ops_app
from stratforge.cli.run_command import run_command
from stratforge.cli.simulate_command import simulate_command
from stratforge.cli.train_command import train_command
from stratforge.cli.worker_commands import serve_command, worker_command
from stratforge.config import configure, get_settings

# rich_markup_mode=None: help text is plain text, so defaults such as "[all cores]" show
# (Rich markup would take them for style tags and drop them)
app = typer.Typer(cls=FriendlyErrors, no_args_is_help=True, rich_markup_mode=None,
                  pretty_exceptions_enable=False,
                  help="stratforge: a research factory for systematic trading strategies.")
app.add_typer(data_app, name="data")
app.command("simulate")(simulate_command)
app.command("discover")(discover_command)
app.command("run")(run_command)
app.command("train")(train_command)
app.command("worker")(worker_command)
app.command("serve")(serve_command)
app.add_typer(ops_app, name="ops")
app.add_typer(agent_app, name="agent")
app.command("evolve")(evolve_command)
app.add_typer(evolution_app, name="evolution")
app.add_typer(audit_app, name="audit")


def _version(value: bool) -> None:
    if value:
        console.print(f"stratforge {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    home: Annotated[Path | None, typer.Option(
        "--home", help="State folder (atlas, runs, database); overrides STRATFORGE_HOME.",
        envvar=None)] = None,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Options shared by every command."""
    configure(home=home)


@app.command()
def instruments() -> None:
    """List the known instruments: built in, plus any in <home>/instruments.yaml."""
    from stratforge.instruments import USER_FILE_NAME, list_instruments, load_user_instruments

    user_file = get_settings().home / USER_FILE_NAME
    user = load_user_instruments(user_file)
    table = Table(title="Instruments")
    for column in ("symbol", "tick", "point value", "currency", "daily flat", "calendar"):
        table.add_column(column, no_wrap=True)
    table.add_column("session", ratio=3)
    table.add_column("costs", ratio=3)
    table.add_column("description", ratio=2)
    for spec in sorted(list_instruments().values(), key=lambda s: s.symbol):
        session = spec.session
        symbol = f"{spec.symbol} *" if spec.symbol in user else spec.symbol
        table.add_row(symbol, spec.format_price(spec.tick_size), f"{spec.point_value:,g}",
                      spec.currency, session.flat_text().removeprefix("flat "),
                      session.calendar or "-", session.hours(), spec.costs.describe(),
                      spec.description)
    console.print(table)
    if user_file.exists():
        console.print(f"User instruments (*): {user_file} ({len(user)} defined).",
                      soft_wrap=True)
    else:
        console.print(f"No user instruments file: add your own in {user_file} "
                      "(see docs/instruments.md).", soft_wrap=True)
    console.print("A calendar (exchange_calendars) removes the exchange's holidays from the trade "
                  "dates and moves the close and the flat on its early-close days; '-': every "
                  "listed weekday trades.", soft_wrap=True)


if __name__ == "__main__":
    app()
