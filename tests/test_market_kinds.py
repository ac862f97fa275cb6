"""Acceptance of issue 15 on four instrument kinds: MNQ-like 1s, EURUSD-like 1h, equity-like
1D and crypto-like 24/7 1m, each with its own price level, tick, volatility and session.

For each, ``stratforge run --quick --symbol X`` with no other flag builds the symbol's
synthetic market and completes; its round-trip cost lies between 0.05% and 10% of the data's
median daily range, and each traded timeframe's resolved stop range within 0.25x-10x of that
timeframe's median true range (both measured here from the bars, see market_checks). The
null kind of each (no edge at all) gives no PRODUCTION strategy.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from market_checks import check_market_block
from stratforge.cli.main import app

pytestmark = pytest.mark.slow
KINDS = {  # symbol: (session time zone, hour at which its trade date rolls)
    "MNQ": ("America/Chicago", 17),
    "EURUSD": ("America/New_York", 17),
    "AAPL": ("America/New_York", 0),
    "BTCUSD": ("UTC", 0),
}


def _run(home, *args: str) -> dict:
    result = CliRunner().invoke(app, ["--home", str(home), *args])
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("symbol", list(KINDS))
def test_quick_run_fits_the_market_and_the_null_kind_has_no_production(tmp_path, symbol):
    zone, roll = KINDS[symbol]
    home = tmp_path / "home"
    output = _run(home, "run", "--quick", "--symbol", symbol).output
    assert "synthetic market" in output
    folder = max((home / "runs").glob("run_*"))
    summary = check_market_block(folder, home, zone, roll)
    assert summary["market"]["symbol"] == symbol
    assert summary["phases"]["anova"]["rows"] > 0, "nothing traded"
    assert (folder / "report.html").is_file()

    _run(home, "data", "synth", "--symbol", symbol, "--kind", "null", "--replace")
    _run(home, "run", "--quick", "--symbol", symbol)
    null_run = max((home / "runs").glob("run_*"))
    assert null_run != folder
    null_summary = json.loads((null_run / "summary.json").read_text())
    assert null_summary["data"]["synthetic"].split(", ")[1] == "null"
    assert null_summary["tiers"]["PRODUCTION"] == 0, null_summary["tiers"]
