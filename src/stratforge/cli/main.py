"""Entry point of the ``stratforge`` command."""

import typer

app = typer.Typer()
