"""The dashboard's number formats (``web/js/format.js``), run by node against Python
references: prices with the decimals of the instrument's tick size (``Instrument.format_price``),
money with its currency, exit parameters in price units, and the robust axis of the template
chart (numpy's quantile). Skips without node, or fails under ``STRATFORGE_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from db_helpers import require_service
from stratforge.instruments import get_instrument

FORMAT_JS = Path(__file__).resolve().parents[1] / "src" / "stratforge" / "web" / "js" / \
    "format.js"
NODE = shutil.which("node")


def _market(symbol: str) -> dict:
    spec = get_instrument(symbol)
    return {"symbol": spec.symbol, "currency": spec.currency, "tick_size": spec.tick_size,
            "point_value": spec.point_value, "price_decimals": spec.price_decimals}


def call(function: str, *calls: list) -> list:
    """``function(*args)`` of format.js for each argument list in ``calls``, run by node."""
    if NODE is None:
        require_service("node is not installed (apt-get install nodejs)")
    script = (f"import * as f from {json.dumps(FORMAT_JS.as_uri())};\n"
              "const calls = JSON.parse(process.argv[1]);\n"
              f"console.log(JSON.stringify(calls.map((a) => f.{function}(...a))));")
    done = subprocess.run([NODE, "--input-type=module", "-e", script, json.dumps(calls)],
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


@pytest.mark.parametrize("symbol", ["EURUSD", "MNQ", "SPY"])
def test_prices_have_the_decimals_of_the_tick_size(symbol):
    market = _market(symbol)
    spec = get_instrument(symbol)
    rng = np.random.default_rng(3)
    # prices and distances on the tick grid, near the instrument's price level and tiny
    ticks = np.concatenate([rng.integers(0, 400, 40), rng.integers(1, 3_000_000, 40)])
    values = [float(k * spec.tick_size) for k in ticks]
    got = call("price", *[[v, market] for v in values])
    assert got == [spec.format_price(v) for v in values]
    assert all(len(text.split(".")[1]) == spec.price_decimals for text in got if "." in text)


def test_an_fx_distance_is_not_written_as_zero():
    # "trail widen points 0.0 for 0.00227", "Median MAE 0.00"
    eurusd = _market("EURUSD")
    assert call("price", [0.00227, eurusd], [0.0016899999999999693, eurusd]) == \
        ["0.00227", "0.00169"]
    assert call("paramText", ["trail_widen_points", 0.00227, eurusd],
                ["stop_ticks", 227, eurusd], ["max_hold_bars", 9, eurusd]) == \
        ["trail widen at 0.00227", "stop 0.00227 (227 ticks)", "max hold 9 bars"]
    mnq = _market("MNQ")
    assert call("paramText", ["stop_ticks", 10, mnq], ["trail_widen_points", 7.5, mnq]) == \
        ["stop 2.50 (10 ticks)", "trail widen at 7.50"]
    params = {"max_hold_bars": 9, "trail_widen_points": 0.00227, "stop_ticks": 227,
              "target_ticks": 450, "trail_tight_ticks": 40}
    assert call("paramsShort", [params, eurusd]) == [
        "stop 0.00227, target 0.00450, tight 0.00040, widen at 0.00227, hold 9 bars"]
    assert call("paramsText", [params, eurusd])[0].startswith(
        "stop 0.00227 (227 ticks), target 0.00450 (450 ticks), trail tight 0.00040 (40 ticks)")
    assert call("statedParamsText", [{"stop_ticks": {"ticks": 227, "price": 0.00227,
                                                     "yardsticks": 1.5},
                                      "max_hold_bars": {"bars": 12}}, eurusd]) == \
        ["stop 0.00227 (227 ticks, 1.50 yardsticks), max hold 12 bars"]
    assert call("rangeText", [{"low_price": 0.00067, "high_price": 0.00402}, eurusd],
                [{"low_bars": 2, "high_bars": 12}, eurusd]) == ["0.00067–0.00402",
                                                                "2–12 bars"]


def test_money_and_titles_name_the_currency():
    eur = {**_market("EURUSD"), "currency": "EUR"}
    assert call("money", [-1234.5, _market("MNQ")], [19.0, eur], [None, eur]) == \
        ["-1,234.50 USD", "19.00 EUR", "–"]
    assert call("inCurrency", ["OOS PnL", eur], ["PnL", None]) == ["OOS PnL (EUR)", "PnL"]
    assert call("priceFormat", [_market("EURUSD")], [_market("MNQ")]) == [",.5f", ",.2f"]


def _reference_top(values: list[float]) -> dict | None:
    """The documented rule, with numpy: at least 5 values; clip when the largest exceeds 3x
    the 90th percentile (method "lower"); the axis then ends at 1.25x that percentile."""
    xs = np.asarray(values, dtype=float)
    if len(xs) < 5:
        return None
    q = float(np.quantile(xs, 0.9, method="lower"))
    if not q > 0 or xs.max() <= 3 * q:
        return None
    return {"top": 1.25 * q, "clipped": int((xs > 1.25 * q).sum()), "quantile": 0.9}


def test_one_outlier_does_not_squash_the_template_chart():
    # "|momentum| 38,088,249,049 on EURUSD, and one outlier squashes the template chart"
    values = [0.8, 1.1, 1.3, 0.9, 2.0, 1.7, 38_088_249_049.0]
    got = call("robustTop", [values])[0]
    assert got == pytest.approx(_reference_top(values))
    assert got["clipped"] == 1 and got["top"] < 3
    assert call("robustTop", [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]) == [None]


@settings(max_examples=15, deadline=None)
@given(st.lists(st.floats(0, 1e12, allow_nan=False), min_size=0, max_size=40))
def test_the_robust_axis_follows_the_numpy_reference(values):
    got = call("robustTop", [values])[0]
    expected = _reference_top(values)
    if expected is None:
        assert got is None
    else:
        assert got["clipped"] == expected["clipped"]
        assert got["top"] == pytest.approx(expected["top"])


def test_side_labels_match_the_python_ones():
    from stratforge.discovery.library import side_label

    directions = [-1, 0, 1, -1.0, 0.0, 1.0]
    assert call("sideLabel", *[[d] for d in directions]) == [side_label(d) for d in directions]
