"""Real daily bars: the S&P 500 series shipped in the ``arch`` package, ingested as the
package ships it (a gzipped CSV with Date, Open, High, Low, Close, Adj Close, Volume),
built into an ATLAS, researched with ``run --quick`` and reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from market_checks import check_market_block
from stratforge.cli.main import app

sp500 = pytest.importorskip("arch.data.sp500", reason="the arch package ships the S&P 500 "
                                                      "daily series (pip install arch)")
INSTRUMENTS = """\
SPX:
  tick_size: 0.01
  point_value: 1
  currency: USD
  session: us_equity_rth
  costs: {spread_ticks: 2, slippage_ticks: 1}
"""


@pytest.mark.slow
def test_sp500_daily_bars_ingest_atlas_research_and_report(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "instruments.yaml").write_text(INSTRUMENTS)
    shipped = Path(sp500.__file__).parent / "sp500.csv.gz"
    runner = CliRunner()

    ingest = runner.invoke(app, ["--home", str(home), "data", "ingest", str(shipped),
                                 "--symbol", "SPX"])
    assert ingest.exit_code == 0, ingest.output
    assert "bar size 1D" in ingest.output
    atlas = runner.invoke(app, ["--home", str(home), "data", "atlas", "--symbol", "SPX"])
    assert atlas.exit_code == 0, atlas.output

    run = runner.invoke(app, ["--home", str(home), "run", "--quick", "--symbol", "SPX"])
    assert run.exit_code == 0, run.output
    folder = max((home / "runs").glob("run_*"))
    summary = check_market_block(folder, home, "America/New_York")
    market = summary["market"]
    assert market["base_timeframe"] == "1D" and market["timeframes"] == ["1D", "1W"]
    assert market["cost_model"]["round_trip_currency"] == pytest.approx(0.04)
    # the daily strategies trade (a daily bar holds across sessions: no daily flat)
    assert summary["phases"]["anova"]["rows"] > 0
    report = (folder / "report.html").read_text()
    assert "Market and costs" in report and "SPX" in report
    playbook = json.loads((folder / "playbook.json").read_text())
    assert playbook["market"]["symbol"] == "SPX"
