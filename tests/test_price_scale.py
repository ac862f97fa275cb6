"""Price-scale invariance of the whole research loop (issue 15): a market and the same market
with every price and the tick size multiplied by 1000 (point value divided by 1000, so money
is unchanged) give identical templates, matches, trades in ticks and tiers through
``stratforge run --quick``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from stratforge.cli.main import app
from stratforge.data.demo import synthesize_into_store
from stratforge.data.load import load_bars
from stratforge.discovery.library import TemplateLibrary
from stratforge.search.sweep import read_frame

pytestmark = pytest.mark.slow
SCALE = 1000.0
SCALED_INSTRUMENT = """\
MNQX:
  tick_size: 250.0
  point_value: 0.002
  currency: USD
  session: cme_globex
  costs: {commission: 0.62, spread_ticks: 1, slippage_ticks: 1}
"""


def _invoke(home, *args):
    result = CliRunner().invoke(app, ["--home", str(home), *args])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("scale")
    plain, scaled = base / "plain", base / "scaled"
    synthesize_into_store("MNQ", days=40, seed=5, kind="planted", resolution="1m",
                          home=plain)
    bars = load_bars("MNQ", "1m", home=plain)
    for column in ("open", "high", "low", "close"):
        bars[column] = bars[column] * SCALE
    scaled.mkdir()
    (scaled / "instruments.yaml").write_text(SCALED_INSTRUMENT)
    source = base / "mnqx.parquet"
    bars.to_parquet(source, index=False)
    _invoke(scaled, "data", "ingest", str(source), "--symbol", "MNQX")
    out = {}
    for home, symbol in ((plain, "MNQ"), (scaled, "MNQX")):
        _invoke(home, "run", "--quick", "--symbol", symbol, "--workers", "1")
        out[symbol] = max((home / "runs").glob("run_*"))
    return out["MNQ"], out["MNQX"]


def test_same_templates(runs):
    a, b = (TemplateLibrary.load(run / "library") for run in runs)
    assert [t.template_id for t in a] == [t.template_id for t in b]
    for x, y in zip(a, b, strict=True):
        assert x.member_ids == y.member_ids and x.direction == y.direction
        np.testing.assert_allclose(x.centroid_scaled, y.centroid_scaled, rtol=1e-9, atol=1e-9)


def test_same_matches(runs):
    for path in sorted((runs[0] / "matches").glob("*.parquet")):
        pd.testing.assert_frame_equal(read_frame(path), read_frame(runs[1] / "matches" /
                                                                   path.name))


def test_same_trades_in_ticks_and_tiers(runs):
    a, b = (read_frame(run / "validation.parquet") for run in runs)
    assert len(a) > 0
    same = ["strategy_id", "tier_name", "is_trades", "oos_trades", "wf_positive_folds"]
    pd.testing.assert_frame_equal(a[same], b[same])
    for x, y in zip(a["params"], b["params"], strict=True):
        px, py = json.loads(x), json.loads(y)
        widen = "trail_widen_points"
        assert py.pop(widen) == pytest.approx(px.pop(widen) * SCALE, rel=1e-9)
        assert px == py  # every distance in ticks, the hold in bars
    for column in ("is_pnl", "oos_pnl"):  # money is unchanged: point value / 1000
        np.testing.assert_allclose(a[column], b[column], rtol=1e-6, atol=1e-6)


def test_same_sweep(runs):
    a, b = (read_frame(run / "sweep" / "summaries.parquet") for run in runs)
    assert (a["trades"].to_numpy() == b["trades"].to_numpy()).all()
    np.testing.assert_allclose(a["total_pnl"], b["total_pnl"], rtol=1e-6, atol=1e-6)
