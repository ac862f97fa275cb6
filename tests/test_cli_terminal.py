"""The terminal as a researcher reads it (issue 18, item 6): help shows every option's text
(bracketed defaults included) and the CLI prints its first line quickly."""

from __future__ import annotations

import re

import typer
from typer.testing import CliRunner

from stratforge.cli.main import app

runner = CliRunner()


def _commands(command, path: tuple[str, ...] = ()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_every_option_help_renders_whole_with_its_bracketed_default():
    root = typer.main.get_command(app)
    checked = 0
    for path, command in _commands(root):
        shown = runner.invoke(app, [*path, "--help"], terminal_width=100)
        assert shown.exit_code == 0, (path, shown.output)
        flat = " ".join(shown.output.split())
        for param in command.params:
            text = getattr(param, "help", None)
            if not text:
                continue
            # every word of the help, brackets and their contents included, is shown
            assert " ".join(text.split()) in flat, (path, param.name, flat)
            checked += bool(re.search(r"\[[^\]]+\]", text))
    assert checked >= 10  # e.g. "Worker processes [all cores]", "Designer name [thompson]"
    workers = " ".join(runner.invoke(app, ["run", "--help"], terminal_width=100)
                       .output.split())
    assert "Worker processes [all cores]" in workers
