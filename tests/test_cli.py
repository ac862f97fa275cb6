"""The command line: version, one-line errors, and the data commands end to end."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from conftest import random_bars
from stratforge import __version__
from stratforge.cli.main import app
from stratforge.data import load_bars

runner = CliRunner()


def _csv(path, frame):
    out = frame.copy()
    out["ts"] = out["ts"].dt.strftime("%Y-%m-%d %H:%M:%S")
    out.columns = ["Timestamp", "Open", "High", "Low", "Close", "Volume"]
    out.to_csv(path, index=False)
    return str(path)


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_ingest_atlas_info_round_trip(home, tmp_path):
    frame = random_bars(41, "2024-01-02", "2024-02-10", keep=0.4)
    result = runner.invoke(app, ["--home", str(home), "data", "ingest",
                                 _csv(tmp_path / "bars.csv", frame), "--symbol", "MES"])
    assert result.exit_code == 0, result.output
    assert f"stored {len(frame):,} 1m bars of MES" in result.output
    result = runner.invoke(app, ["--home", str(home), "data", "atlas", "--symbol", "MES"])
    assert result.exit_code == 0, result.output
    assert "skipped 1s, 5s, 15s" in result.output
    result = runner.invoke(app, ["--home", str(home), "data", "info", "--symbol", "MES"])
    assert result.exit_code == 0, result.output
    first_cells = [line.split("│")[1].strip() for line in result.output.splitlines()
                   if line.startswith("│") and line.split("│")[1].strip()]
    assert first_cells == ["1m", "5m", "15m", "1h", "4h", "1D", "1W"]
    pd.testing.assert_frame_equal(load_bars("MES", "1m", home=home), frame)


def test_bad_file_is_one_line_error_with_nonzero_exit(home, tmp_path):
    frame = random_bars(42, "2024-01-02", "2024-01-05")
    frame.loc[7, "volume"] = -5
    result = runner.invoke(app, ["--home", str(home), "data", "ingest",
                                 _csv(tmp_path / "bad.csv", frame), "--symbol", "MNQ"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "row 8: volume is -5.0 (rule: volume >= 0)" in result.output.replace("\n", " ") \
        or "row 8" in result.output


def test_unknown_symbol_error_lists_known(home, tmp_path):
    frame = random_bars(43, "2024-01-02", "2024-01-05")
    result = runner.invoke(app, ["--home", str(home), "data", "synth", "--symbol", "NOPE",
                                 "--days", "2"])
    assert result.exit_code == 1
    assert "unknown instrument 'NOPE'" in result.output and "MNQ" in result.output
    del frame


def test_instruments_lists_builtins():
    result = runner.invoke(app, ["instruments"])
    assert result.exit_code == 0 and "MNQ" in result.output and "EURUSD" in result.output


def test_simulate_train_and_evolve_take_cost_overrides_not_cost_points(home):
    # costs are the instrument's model; every simulating command overrides parts of it with
    # the same four flags, and the old searched/fixed cost flags are gone
    flags = ("--commission", "--spread-ticks", "--slippage-ticks", "--fee-bps")
    for command, gone in (("simulate", "--cost-points"), ("train", "--cost-points"),
                          ("evolve", "--cost-per-trade")):
        shown = runner.invoke(app, [command, "--help"], terminal_width=200)
        assert shown.exit_code == 0, shown.output
        assert all(flag in shown.output for flag in flags), (command, shown.output)
        refused = runner.invoke(app, [command, gone, "1"])
        assert refused.exit_code == 2 and "No such option" in refused.output
    bad = runner.invoke(app, ["evolve", "--local", "--spread-ticks", "-1"])
    assert bad.exit_code == 1 and "spread_ticks" in bad.output
