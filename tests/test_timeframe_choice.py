"""Default timeframes from what a store holds, the --quick subset, the ATLAS targets of a base
and the one message for missing timeframes.

Row counts of the reference markets are hand-computed from the sessions' hours: CME Globex
trades 23 hours a trade date (1380 one-minute bars, 276 of 5m, 92 of 15m, 23 of 1h and six 4h
bars anchored at 17:00: 17, 21, 1, 5, 9, 13); FX 24x5 trades 24 hours on five trade dates a
week (six 4h bars a day); US equities give one daily bar per trade date, about 252 a year.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import random_bars
from stratforge.data import build_atlas, ingest_files, load_bars
from stratforge.data.demo import synthesize_into_store
from stratforge.data.load import default_timeframes, store_base_timeframe, store_timeframes
from stratforge.data.timeframe_choice import (
    DEFAULT_MIN_BARS,
    TIMEFRAME_LADDER,
    atlas_targets,
    can_build,
    choose_timeframes,
    missing_timeframes_message,
    quick_timeframes,
)
from stratforge.errors import DataError
from stratforge.timeframes import ATLAS_TIMEFRAMES, parse_timeframe

LADDER = [str(t) for t in TIMEFRAME_LADDER]


def _cme_rows(days: int) -> dict[str, int]:
    per_day = {"1m": 1380, "5m": 276, "15m": 92, "1h": 23, "4h": 6, "1D": 1}
    rows = {tf: n * days for tf, n in per_day.items()}
    rows["1W"] = -(-days // 5)
    return rows


def _fx_rows(weeks: int) -> dict[str, int]:
    return {"1h": 120 * weeks, "4h": 30 * weeks, "1D": 5 * weeks, "1W": weeks}


# --- default_timeframes / choose_timeframes ------------------------------------------------

@pytest.mark.parametrize("days", [60, 403])
def test_mnq_one_second_store_keeps_todays_defaults(days):
    rows = {"1s": 82_800 * days, "5s": 16_560 * days, "15s": 5_520 * days, **_cme_rows(days)}
    assert choose_timeframes(rows, "1s") == ("1m", "5m", "15m", "1h", "4h")


def test_hourly_fx_two_years_and_daily_equity_ten_years():
    assert choose_timeframes(_fx_rows(104), "1h") == ("1h", "4h", "1D")
    assert choose_timeframes({"1D": 2_520, "1W": 522}, "1D") == ("1D", "1W")
    assert choose_timeframes({"1D": 2_520, "1W": 522}, "1D", min_bars=600) == ("1D",)
    assert choose_timeframes(_fx_rows(104), "1h", limit=2) == ("1h", "4h")


def test_default_timeframes_of_real_stores(home, tmp_path):
    synthesize_into_store("MNQ", days=60, seed=3, resolution="1m")
    # before the atlas: counts of unbuilt timeframes are estimated from the base
    assert default_timeframes("MNQ") == ("1m", "5m", "15m", "1h", "4h")
    build_atlas("MNQ")
    # 60 CME trade dates from 2023-01-03 (01-02 is an exchange holiday): six 4h bars each
    # (17:00-16:00 Chicago), but MLK and Presidents' Day close at 12:00: five bars there
    assert store_timeframes("MNQ")["4h"] == 58 * 6 + 2 * 5
    assert store_base_timeframe("MNQ") == "1m"
    assert default_timeframes("MNQ") == ("1m", "5m", "15m", "1h", "4h")

    days = [d.date() for d in pd.bdate_range("2014-01-02", "2023-12-29")]
    rng = np.random.default_rng(4)
    close = 100 + 0.01 * np.cumsum(rng.integers(-50, 51, len(days)))
    daily = pd.DataFrame({"date": [d.isoformat() for d in days], "open": close,
                          "high": close + 0.05, "low": close - 0.05, "close": close,
                          "volume": 1e5})
    daily.to_csv(tmp_path / "equity.csv", index=False)
    ingest_files([tmp_path / "equity.csv"], "EQUITY")
    build_atlas("EQUITY")
    assert store_timeframes("EQUITY") == {"1D": len(days), "1W": 522}
    assert default_timeframes("EQUITY") == ("1D", "1W")
    assert default_timeframes("NOPE") == ()


def test_default_timeframes_of_a_real_hourly_fx_store(home, tmp_path):
    bars = random_bars(5, "2022-01-03", "2023-12-30", step_seconds=3600, keep=1.0,
                       drop_days=0)
    bars = bars[bars["ts"].dt.day_of_week < 5].reset_index(drop=True)
    for column in ("open", "high", "low", "close"):
        bars[column] = 1.08 + (bars[column] - 100) * 1e-3
    bars.assign(ts=bars["ts"].dt.strftime("%Y-%m-%dT%H:%MZ")).to_csv(tmp_path / "fx.csv",
                                                                      index=False)
    ingest_files([tmp_path / "fx.csv"], "EURUSD")
    assert default_timeframes("EURUSD") == ("1h", "4h", "1D")   # from estimates
    build_atlas("EURUSD")
    assert default_timeframes("EURUSD") == ("1h", "4h", "1D")
    assert store_timeframes("EURUSD")["1W"] < DEFAULT_MIN_BARS


rows_strategy = st.dictionaries(st.sampled_from([str(t) for t in ATLAS_TIMEFRAMES]),
                                st.integers(0, 5_000))


@given(rows=rows_strategy, base=st.sampled_from([str(t) for t in ATLAS_TIMEFRAMES[:-1]]),
       min_bars=st.integers(1, 3_000), limit=st.integers(0, 7))
def test_choice_properties(rows, base, min_bars, limit):
    chosen = choose_timeframes(rows, base, min_bars=min_bars, limit=limit)
    assert len(chosen) <= limit
    assert list(chosen) == sorted(chosen, key=LADDER.index)   # finest first, no repeats
    base_tf = parse_timeframe(base)
    for name in chosen:
        assert parse_timeframe(name) >= base_tf and rows.get(name, 0) >= min_bars
    # greedy along the ladder: every eligible ladder timeframe before the last kept is kept
    eligible = [t for t in LADDER if parse_timeframe(t) >= base_tf and rows.get(t, 0) >= min_bars]
    assert list(chosen) == eligible[:limit]


@given(st.lists(st.sampled_from(LADDER), min_size=1, max_size=7, unique=True))
def test_quick_subset_properties(timeframes):
    quick = quick_timeframes(timeframes)
    ordered = sorted(timeframes, key=LADDER.index)
    assert 1 <= len(quick) <= 3 and set(quick) <= set(timeframes)
    assert list(quick) == ordered[:3]  # the finest three: the most bars, the most trades


def test_quick_matches_todays_quick_run():
    assert quick_timeframes(("1m", "5m", "15m", "1h", "4h")) == ("1m", "5m", "15m")
    assert quick_timeframes(("1h", "4h", "1D")) == ("1h", "4h", "1D")
    assert quick_timeframes(("1D", "1W")) == ("1D", "1W")


# --- ATLAS targets --------------------------------------------------------------------------

@pytest.mark.parametrize(("base", "targets"), [
    ("1s", ["5s", "15s", "1m", "5m", "15m", "1h", "4h", "1D", "1W"]),
    ("1m", ["5m", "15m", "1h", "4h", "1D", "1W"]),
    ("1h", ["4h", "1D", "1W"]),
    ("1D", ["1W"]),
])
def test_atlas_targets_are_at_or_above_the_base(base, targets):
    built, left_out = atlas_targets(base)
    assert [str(t) for t in built] == targets
    assert [str(t) for t in left_out] == [str(t) for t in ATLAS_TIMEFRAMES
                                          if parse_timeframe(str(t)) < parse_timeframe(base)]
    with pytest.raises(ValueError, match="1s"):
        atlas_targets("1m", ["1s", "1h"])


def test_can_build_needs_whole_base_bars():
    assert can_build("1h", "4h") and can_build("1h", "1D") and can_build("1D", "1W")
    assert not can_build("1h", "1m") and not can_build("1D", "4h")
    assert not can_build("2h", "3h")   # 3h is not a multiple of 2h


# --- messages -------------------------------------------------------------------------------

def test_message_for_timeframes_finer_than_the_base_never_says_run_atlas():
    text = missing_timeframes_message("eurusd", ["1m", "5m", "15m", "1h", "4h"],
                                      {"1h": 12_480, "4h": 3_120, "1D": 520, "1W": 104}, "1h")
    assert text.startswith("EURUSD has no 1m, 5m, 15m bars (stored: base 1h; timeframes 1h, "
                           "4h, 1D, 1W)")
    assert "finer than the base 1h" in text and "--timeframes 1h,4h,1D,1W" in text
    assert "data atlas" not in text


def test_message_for_buildable_timeframes_names_the_atlas_command():
    text = missing_timeframes_message("MNQ", ["1m", "5m"], ["1s"], "1s")
    assert "MNQ has no 1m, 5m bars (stored: base 1s; timeframes 1s)" in text
    assert "run `stratforge data atlas --symbol MNQ`" in text
    both = missing_timeframes_message("GOOG", ["1h", "1W"], ["1D"], "1D")
    assert "atlas --symbol GOOG` to build 1W" in both and "1h cannot be made" in both
    empty = missing_timeframes_message("SPY", ["1D"], [], None)
    assert "stratforge data ingest FILE --symbol SPY" in empty


def test_store_message_on_hourly_data_names_what_is_present(home, tmp_path):
    start = date(2024, 1, 1)
    bars = random_bars(6, start.isoformat(), (start + timedelta(days=40)).isoformat(),
                       step_seconds=3600, keep=1.0, drop_days=0)
    bars.assign(ts=bars["ts"].dt.strftime("%Y-%m-%dT%H:%MZ")).to_csv(tmp_path / "h.csv",
                                                                      index=False)
    ingest_files([tmp_path / "h.csv"], "EURUSD")
    build_atlas("EURUSD")
    with pytest.raises(DataError) as caught:
        load_bars("EURUSD", "1m")
    text = str(caught.value)
    assert "EURUSD has no 1m bars (stored: base 1h; timeframes 1h, 4h, 1D, 1W)" in text
    assert "data atlas" not in text
    with pytest.raises(DataError, match=r"cannot build 1m, 5m from its 1h base bars.*1h, 4h, "
                                        r"1D, 1W.*stored: 1h, 4h, 1D, 1W"):
        build_atlas("EURUSD", [parse_timeframe("1m"), parse_timeframe("5m")])
