"""Discovery does not depend on the price level: a synthetic EURUSD market and the same market
with every price and the tick size multiplied by 1000 (a user instrument EURUSDK, tick 0.01)
give identical patterns, templates and matches. Float rounding differs between the two (1000
times 1.08123 is not exactly 1081.23), so this holds only because the features come from
prices in whole ticks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from stratforge.data import build_atlas
from stratforge.data.ingest import write_base_bars
from stratforge.data.resample import BarArrays
from stratforge.data.store import AtlasStore
from stratforge.data.synthetic import generate_market
from stratforge.discovery.fractal import discover_patterns
from stratforge.discovery.matching import match_library, timeframe_vectors
from stratforge.discovery.patterns import PATTERN_COLUMNS
from stratforge.discovery.templates import cluster_patterns
from stratforge.features.cache import read_states
from stratforge.instruments import get_instrument
from stratforge.timeframes import parse_timeframe

SCALE = 1000.0
HIERARCHY = ["4h", "1h", "15m", "5m", "1m"]
PRICE_PATTERN_COLUMNS = ("close", "velocity", "sigma", "oracle_mfe", "oracle_mae")
"""Pattern columns in price units: the only ones that differ (by the scale)."""
USER_INSTRUMENTS = """\
EURUSDK:
  tick_size: 0.01
  point_value: 100
  currency: USD
  session: fx_24x5
  reference_price: 1080
  daily_volatility: 0.005
"""


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """One home holding EURUSD (20 days of synthetic 1m bars) and EURUSDK (the same bars with
    every price times 1000, tick 0.01); both ATLASes built."""
    home = tmp_path_factory.mktemp("scale-free-home")
    (home / "instruments.yaml").write_text(USER_INSTRUMENTS)
    eurusd = get_instrument("EURUSD", home)
    bars = generate_market(eurusd, days=20, seed=5, resolution="1m").bars
    scaled = bars.assign(**{c: bars[c] * SCALE for c in ("open", "high", "low", "close")})
    assert get_instrument("EURUSDK", home).tick_size == 0.01
    assert eurusd.tick_size * SCALE != 0.01 or not np.array_equal(
        scaled["close"] / 0.01, bars["close"] / eurusd.tick_size)  # rounding does differ
    for symbol, frame in (("EURUSD", bars), ("EURUSDK", scaled)):
        write_base_bars(AtlasStore.open(symbol, home), BarArrays.from_frame(frame),
                        parse_timeframe("1m"), replace_all=True, source=f"test {symbol}")
        build_atlas(symbol, home=home)
    return home


def _patterns(home, symbol, scan):
    return discover_patterns(symbol, timeframes=HIERARCHY, home=home, scan=scan,
                             fresh=True).patterns


@pytest.mark.parametrize("scan", ["full", "drill"])
def test_patterns_are_identical_at_1000x_the_price_level(twins, scan):
    base = _patterns(twins, "EURUSD", scan)
    moved = _patterns(twins, "EURUSDK", scan)
    assert len(base) > (50 if scan == "full" else 3)  # the drill-down funnel finds few
    assert len(set(base["timeframe"])) >= 2
    scale_free = [c for c in PATTERN_COLUMNS if c not in (*PRICE_PATTERN_COLUMNS, "symbol")]
    pd.testing.assert_frame_equal(moved[scale_free], base[scale_free], check_exact=True)
    for column in PRICE_PATTERN_COLUMNS:
        np.testing.assert_allclose(moved[column], base[column] * SCALE, rtol=1e-12,
                                   err_msg=column)
    assert (base["oracle_label"] != "NOISE").any()


def _library(home, symbol):
    patterns = _patterns(home, symbol, "full")
    train_end = patterns["ts"].quantile(0.7)
    return cluster_patterns(patterns[patterns["ts"] < train_end], train_end=train_end,
                            random_state=3)


def test_templates_and_matches_are_identical_at_1000x_the_price_level(twins):
    base, moved = _library(twins, "EURUSD"), _library(twins, "EURUSDK")
    assert len(base) >= 3
    assert moved.scalers == base.scalers and moved.metadata == base.metadata
    for a, b in zip(base, moved, strict=True):
        # MFE/MAE percentiles are in price units: they scale; every other field is equal
        np.testing.assert_allclose(b.mfe_percentiles, np.multiply(a.mfe_percentiles, SCALE),
                                   rtol=1e-12)
        np.testing.assert_allclose(b.mae_percentiles, np.multiply(a.mae_percentiles, SCALE),
                                   rtol=1e-12)
        assert dataclasses.replace(b, mfe_percentiles=a.mfe_percentiles,
                                   mae_percentiles=a.mae_percentiles) == a

    hierarchy = HIERARCHY
    total = 0
    for tf in hierarchy[1:]:
        found = {}
        for symbol, library in (("EURUSD", base), ("EURUSDK", moved)):
            vectors = timeframe_vectors(symbol, tf, hierarchy, home=twins)
            flags = read_states(symbol, tf, columns=("cascade_detected", "structure_confirmed"),
                                home=twins)
            eligible = flags["cascade_detected"].to_numpy() | flags["structure_confirmed"]
            everywhere = match_library(library, vectors, tf)
            found[symbol] = (everywhere, match_library(library, vectors, tf,
                                                       eligible=eligible.to_numpy()))
        for a, b in zip(found["EURUSD"], found["EURUSDK"], strict=True):
            pd.testing.assert_frame_equal(b, a, check_exact=True)
        total += len(found["EURUSD"][0])
    assert total > 0
