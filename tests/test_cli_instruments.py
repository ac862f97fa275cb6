"""``stratforge instruments``: the table in force, each session with its calendar, and the
user file named as where one would go unless it exists."""

from __future__ import annotations

from typer.testing import CliRunner

from stratforge.cli.main import app

runner = CliRunner()


def listing(home) -> str:
    result = runner.invoke(app, ["--home", str(home), "instruments"])
    assert result.exit_code == 0, result.output
    return result.output


def cells(output: str, symbol: str) -> list[str]:
    """The first line of the symbol's row, split into its cells."""
    line = next(line for line in output.splitlines() if line.startswith(f"│ {symbol} "))
    return [cell.strip() for cell in line.split("│")[1:-1]]


COLUMNS = ["symbol", "tick", "point value", "currency", "daily flat", "calendar"]


def row(output: str, symbol: str) -> dict[str, str]:
    return dict(zip(COLUMNS, cells(output, symbol), strict=False))


def test_no_user_file_is_not_claimed(home):
    output = listing(home)
    assert not (home / "instruments.yaml").exists()
    assert f"No user instruments file: add your own in {home / 'instruments.yaml'}" in output
    assert "user file:" not in output and "User instruments" not in output
    assert [row(output, "MNQ")[k] for k in ("daily flat", "calendar")] == ["15:55", "CMES"]
    assert [row(output, "SPY")[k] for k in ("daily flat", "calendar")] == ["15:55", "XNYS"]
    assert [row(output, "EURUSD")[k] for k in ("daily flat", "calendar")] == ["16:55", "-"]


def test_user_file_is_named_and_its_sessions_shown(home):
    home.mkdir(parents=True)
    (home / "instruments.yaml").write_text(
        "BTCUSD:\n  tick_size: 0.01\n  point_value: 1\n  session: crypto_24x7\n"
        "DAX:\n  tick_size: 0.5\n  point_value: 25\n  currency: EUR\n"
        "  session: {timezone: Europe/Berlin, open: '08:00', close: '22:00', flat: '21:55',"
        " calendar: XETR}\n")
    output = listing(home)
    assert f"User instruments (*): {home / 'instruments.yaml'} (2 defined)." in output
    assert "No user instruments file" not in output
    btc = row(output, "BTCUSD")
    assert (btc["symbol"], btc["daily flat"], btc["calendar"]) == ("BTCUSD *", "no daily flat",
                                                                  "-")
    dax = row(output, "DAX")
    assert (dax["symbol"], dax["daily flat"], dax["calendar"]) == ("DAX *", "21:55", "XETR")
    assert row(output, "MNQ")["symbol"] == "MNQ"  # built in, not marked
