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


def test_a_trade_line_and_the_regret_lines_read_as_words():
    from stratforge.cli.train_command import regret_lines, trade_line

    line = trade_line({"side": -1, "entry_time": "2023-01-17T19:09:00+00:00",
                       "entry_price": 17791.0, "exit_time": "2023-01-17T19:16:00+00:00",
                       "exit_price": 17741.5, "reason": "target", "bars_held": 7,
                       "pnl": 97.26, "state": "T0001_1m"}, "USD", 2)
    assert line == ("  short 2023-01-17 19:09 @ 17,791.00 -> 2023-01-17 19:16 @ 17,741.50 "
                    "target, 7 bars, PnL +97.26 USD (state T0001_1m)")
    regret = {"findings": ["62% of exits were late", "mean exit efficiency 15%"],
              "adjustment": {"reason": "tighten targets x0.85"}}
    assert regret_lines(regret) == ["  regret: 62% of exits were late",
                                    "  regret: mean exit efficiency 15%",
                                    "  regret: tighten targets x0.85"]


def test_run_prints_the_top_anova_factors_by_effect_size(tmp_path):
    import json

    from stratforge.cli.console import console
    from stratforge.cli.run_command import print_anova

    rows = [{"factor": "template", "status": "tested", "n_groups": 9, "F": 12.5,
             "p_value": 1e-6, "eta_squared": 0.21, "stars": "***"},
            {"factor": "stop", "status": "tested", "n_groups": 4, "F": 2.0, "p_value": 0.11,
             "eta_squared": 0.01, "stars": ""},
            {"factor": "timeframe", "status": "tested", "n_groups": 3, "F": 30.1,
             "p_value": 1e-9, "eta_squared": 0.35, "stars": "***"},
            {"factor": "trail", "status": "skipped: column absent", "eta_squared": None}]
    (tmp_path / "anova.json").write_text(json.dumps({"n_rows": 1200, "one_way": rows}))
    with console.capture() as captured:
        print_anova(tmp_path, top=2)
    text = captured.get()
    assert "Top ANOVA factors" in text and "1,200" in text
    assert text.index("timeframe") < text.index("template")  # larger eta^2 first
    assert "0.350" in text and "0.210" in text
    assert " stop " not in text and "trail" not in text  # beyond top 2; untested


def test_the_cli_entry_point_leaves_the_heavy_libraries_unloaded():
    # the first line of every command comes before numba, pandas, sklearn, plotly or ray load
    import subprocess
    import sys

    heavy = ("numba", "pandas", "numpy", "sklearn", "plotly", "ray", "scipy", "fastapi",
             "sqlalchemy")
    probe = ("import sys, stratforge.cli.main; "
             f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "", f"imported at start: {loaded}"
