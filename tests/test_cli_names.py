"""Names from the command line never become paths outside the home, symbols follow one rule
(the API's), and text quoted from a file cannot drive the terminal or end in a traceback."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError
from typer.testing import CliRunner

from conftest import random_bars
from stratforge.api.deps import SymbolName
from stratforge.cli.main import app
from stratforge.errors import ConfigError
from stratforge.names import check_run_id, check_symbol

runner = CliRunner()


def _csv(path, frame=None) -> str:
    frame = random_bars(5, "2024-01-02", "2024-01-04") if frame is None else frame
    out = frame.copy()
    out["ts"] = out["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.to_csv(path, index=False)
    return str(path)


def _everything(root) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    # `run` says what it starts before it loads the research modules; then one error line
    lines = [line for line in result.output.strip().splitlines()
             if not line.startswith("stratforge run: ")]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


@pytest.mark.parametrize("symbol", ["../../escape", "ok/../../escape", "/ABSOLUTE/place",
                                    "..", ".hidden", "a b", ""])
def test_ingest_refuses_a_symbol_that_is_a_path(tmp_path, symbol):
    home = tmp_path / "deep" / "home"
    source = _csv(tmp_path / "bars.csv")
    if symbol.startswith("/"):
        symbol = str(tmp_path / "absolute" / "place")
    before = _everything(tmp_path)
    result = runner.invoke(app, ["--home", str(home), "data", "ingest", source,
                                 "--symbol", symbol])
    line = _one_line_error(result)
    assert "not a valid symbol" in line
    assert _everything(tmp_path) == before   # nothing written anywhere, home included


@pytest.mark.parametrize("command", [["data", "info"], ["data", "atlas"], ["data", "synth"],
                                     ["run", "--quick"]])
def test_every_command_refuses_a_path_as_symbol(tmp_path, command):
    home = tmp_path / "home"
    result = runner.invoke(app, ["--home", str(home), *command, "--symbol", "../../escape"])
    assert "not a valid symbol" in _one_line_error(result)
    assert not (tmp_path.parent / "ESCAPE").exists() and not (tmp_path / "ESCAPE").exists()
    assert not (home / "atlas").exists()


@pytest.mark.parametrize("run_id", ["../../x", "/ABSOLUTE/x", "a/b", ".x"])
def test_run_refuses_a_run_id_that_is_a_path_before_any_work(tmp_path, run_id):
    home = tmp_path / "deep" / "home"
    if run_id.startswith("/"):
        run_id = str(tmp_path / "x")
    result = runner.invoke(app, ["--home", str(home), "run", "--quick", "--symbol", "MNQ",
                                 "--run-id", run_id])
    assert "not a valid run id" in _one_line_error(result)
    assert not (tmp_path / "x").exists() and not home.exists()  # no market was built either


def test_cli_and_api_share_the_name_rules():
    api = TypeAdapter(SymbolName)
    for name in ["MNQ", "es", "BRK.B", "6E-M24", "A" * 32, "A" * 33, "../x", "/abs", "a/b",
                 ".hidden", "-x", "", "x\n", "a b", "ÄPFEL"]:
        try:
            api.validate_python(name)
            api_ok = True
        except ValidationError:
            api_ok = False
        try:
            assert check_symbol(name) == name.upper()
            cli_ok = True
        except ConfigError:
            cli_ok = False
        assert api_ok == cli_ok, name
    assert check_run_id("run_20240102_093000_1a2b3c4d") == "run_20240102_093000_1a2b3c4d"
    with pytest.raises(ConfigError, match="not a valid run id"):
        check_run_id("../x")


def test_ingest_accepts_only_symbols_that_info_accepts(tmp_path):
    home = tmp_path / "home"
    source = _csv(tmp_path / "bars.csv")
    result = runner.invoke(app, ["--home", str(home), "data", "ingest", source,
                                 "--symbol", "ZZZ"])
    line = _one_line_error(result)
    assert "ZZZ is not a known instrument" in line and "instruments.yaml" in line
    assert not (home / "atlas" / "ZZZ").exists()

    home.mkdir(parents=True, exist_ok=True)
    (home / "instruments.yaml").write_text("ZZZ:\n  tick_size: 0.01\n  point_value: 1\n")
    ingest = runner.invoke(app, ["--home", str(home), "data", "ingest", source,
                                 "--symbol", "zzz"])
    assert ingest.exit_code == 0, ingest.output
    info = runner.invoke(app, ["--home", str(home), "data", "info", "--symbol", "ZZZ"])
    assert info.exit_code == 0, info.output
    assert "ATLAS ZZZ" in info.output


def test_a_header_field_over_the_csv_limit_is_one_line(tmp_path):
    home = tmp_path / "home"
    path = tmp_path / "wide.csv"
    path.write_text("ts,open,high,low,close,volume," + "x" * 200_000 + "\n"
                    "2024-01-02T00:00:00Z,1,1,1,1,1,a\n")
    result = runner.invoke(app, ["--home", str(home), "data", "ingest", str(path),
                                 "--symbol", "MNQ"])
    line = _one_line_error(result)
    assert str(path) in line and "rule: header row" in line and "128 KiB" in line
    assert not (home / "atlas").exists()


@pytest.mark.parametrize("header", [
    "ts,open,high,low,close,\x1b]0;pwned\x07vol\x1b[2J",          # listed as found columns
    "\x1b[31mtime\x9b2J\x07,open,high,low,close,volume",           # quoted header
    "ts,open\rhigh,low,close,volume\x1b[2J",                          # a carriage return
])
def test_escape_sequences_from_a_csv_header_never_reach_the_terminal(tmp_path, header):
    home = tmp_path / "home"
    path = tmp_path / "hostile.csv"
    path.write_text(header + "\n2024-01-02T00:00:00Z,1,1,1,1,1\n")
    result = runner.invoke(app, ["--home", str(home), "data", "ingest", str(path),
                                 "--symbol", "MNQ"])
    line = _one_line_error(result)
    for raw in ("\x1b", "\x07", "\r", "\x9b"):
        assert raw not in result.output
    assert "\\x1b" in line or "carriage returns alone" in line
