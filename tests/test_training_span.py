"""The training span rule (``discovery.span.training_patterns``) on hand-worked cases.

A 24/7 market (BTCUSD's session: trade dates start at 00:00 UTC, no daily flat), so every
intraday bar ends at its start plus its duration, a 1D bar at the next midnight and a 1W bar
seven days on, and every number below can be checked by hand. The oracle lookahead is 8 bars
on 1h and 5 on 1D (``ORACLE_LOOKAHEAD``).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratforge.discovery.patterns import chain_entry
from stratforge.discovery.span import label_ends, training_patterns
from stratforge.errors import ConfigError
from stratforge.instruments import get_instrument

SESSION = get_instrument("BTCUSD").session
DAY0 = pd.Timestamp("2024-03-01", tz="UTC")
T = pd.Timestamp("2024-03-06 20:00", tz="UTC")


def _series(freq: str, days: int) -> np.ndarray:
    return pd.date_range(DAY0, DAY0 + pd.Timedelta(days=days), freq=freq, tz="UTC",
                         inclusive="left").as_unit("ns").asi8


STARTS = {"1W": _series("7D", 14), "1D": _series("1D", 12), "1h": _series("1h", 12)}


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def chain(*parents: tuple[str, str]) -> str:
    """A parent chain JSON, nearest ancestor first."""
    return json.dumps([chain_entry(tf, "ROCHE_SNAP", 1.0, 0.0, 0.5, utc(at))
                       for tf, at in parents])


def frame(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    """Patterns (timeframe, bar start, parent chain) with the columns the rule reads."""
    out = []
    for tf, at, parents in rows:
        ts = utc(at)
        bar = int(np.searchsorted(STARTS[tf], ts.value))
        assert STARTS[tf][bar] == ts.value
        out.append({"pattern_id": f"{tf}:{ts.value}", "timeframe": tf, "ts": ts, "bar": bar,
                    "parent_chain": parents})
    return pd.DataFrame(out)


def select(patterns: pd.DataFrame, end: pd.Timestamp = T):
    return training_patterns(patterns, end, starts=STARTS, session=SESSION)


def kept(patterns: pd.DataFrame, end: pd.Timestamp = T) -> list[str]:
    return [f"{r.timeframe} {r.ts:%m-%d %H:%M}" for r in select(patterns, end).patterns
            .itertuples()]


def test_every_bar_of_the_oracle_lookahead_must_end_by_t():
    patterns = frame([("1h", "2024-03-06 05:00", "[]"),   # reads bars to 13:00, ends 14:00
                      ("1h", "2024-03-06 11:00", "[]"),   # ends exactly at T: before it
                      ("1h", "2024-03-06 12:00", "[]"),   # ends 21:00: lookahead
                      ("1h", "2024-03-06 20:00", "[]"),   # starts at T
                      ("1h", "2024-03-07 02:00", "[]"),   # starts after T
                      ("1D", "2024-03-01", "[]")])        # reads 03-06, ends 03-07 00:00
    assert kept(patterns) == ["1h 03-06 05:00", "1h 03-06 11:00"]
    span = select(patterns)
    assert span.excluded == {"starts_at_or_after": 2, "lookahead": 2, "drill_parent": 0}
    assert span.total == 6 and span.metadata()["used"] == 2
    assert span.describe() == ("training span to 2024-03-06T20:00:00+00:00: 2 of 6 patterns "
                               "(4 left out: 2 start at or after T, 2 read bars after T (own "
                               "bar or oracle lookahead))")
    expected = ["2024-03-06 14:00", "2024-03-06 20:00", "2024-03-06 21:00",
                "2024-03-07 05:00", "2024-03-07 11:00", "2024-03-07 00:00"]
    assert label_ends(patterns, STARTS, SESSION).tolist() == [utc(e).value for e in expected]
    # one hour later the third pattern is in; the 1D one needs T at 03-07 00:00
    assert kept(patterns, utc("2024-03-06 21:00"))[-1] == "1h 03-06 12:00"
    assert "1D 03-01 00:00" in kept(patterns, utc("2024-03-07"))


def test_a_lookahead_cut_short_by_the_series_ends_with_its_last_bar():
    patterns = frame([("1h", "2024-03-12 21:00", "[]")])   # two bars before the last one
    assert label_ends(patterns, STARTS, SESSION).tolist() == [utc("2024-03-13").value]


def test_a_drilled_pattern_needs_a_parent_that_ended_by_t():
    parent_done, parent_open = ("1D", "2024-03-04"), ("1D", "2024-03-06")
    patterns = frame([
        (*parent_done, "[]"), (*parent_open, "[]"),
        # window of the 03-04 parent: [03-04 00:00, 03-05 06:00) (its 30th 1h bar ends then)
        ("1h", "2024-03-04 03:00", chain(parent_done)),
        ("1h", "2024-03-05 05:00", chain(parent_done)),
        # its lookahead ends at 14:00, but only the open 03-06 parent's window holds it:
        # a discovery on the bars before T would not have looked there
        ("1h", "2024-03-06 05:00", chain(parent_open)),
    ])
    assert kept(patterns) == ["1h 03-04 03:00", "1h 03-05 05:00"]
    assert select(patterns).excluded == {"starts_at_or_after": 0, "lookahead": 2,
                                         "drill_parent": 1}
    # once the open parent's bar has ended, it holds its child
    assert "1h 03-06 05:00" in kept(patterns, utc("2024-03-07"))


def test_the_parent_must_itself_be_known_by_t_up_the_hierarchy():
    week = ("1W", "2024-03-01")          # ends 03-08 00:00
    day = ("1D", "2024-03-02")           # ends 03-03 00:00, drilled from the week
    patterns = frame([(*week, "[]"), (*day, chain(week)),
                      ("1h", "2024-03-02 03:00", chain(day, week))])
    assert kept(patterns) == []
    assert select(patterns).excluded["drill_parent"] == 1
    # at 03-07 the day's lookahead (03-03 .. 03-07) is not over and the week is still open
    assert kept(patterns, utc("2024-03-07")) == []
    # at 03-08 the week has ended: it holds the day, the day holds the hour; the week's own
    # lookahead (four more weeks) is not over
    assert kept(patterns, utc("2024-03-08")) == ["1D 03-02 00:00", "1h 03-02 03:00"]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 11 * 24 - 1), st.integers(1, 48), st.lists(st.integers(0, 11 * 24 - 1),
                                                                  min_size=1, max_size=12))
def test_the_span_only_grows_with_t_and_never_holds_a_pattern_at_or_after_it(hour, more,
                                                                          hours):
    days = sorted({h // 24 for h in hours})
    rows = [("1D", str(DAY0.tz_convert(None) + pd.Timedelta(days=d)), "[]") for d in days]
    for h in sorted(set(hours)):
        parent = ("1D", str(DAY0.tz_convert(None) + pd.Timedelta(days=h // 24)))
        at = str(DAY0.tz_convert(None) + pd.Timedelta(hours=h + 1))
        if utc(at).value < STARTS["1h"][-1]:
            rows.append(("1h", at, chain(parent)))
    patterns = frame(rows)
    early = DAY0 + pd.Timedelta(hours=hour)
    later = early + pd.Timedelta(hours=more)
    first, second = select(patterns, early).patterns, select(patterns, later).patterns
    assert set(first["pattern_id"]) <= set(second["pattern_id"])
    ends = label_ends(first, STARTS, SESSION)
    assert (ends <= early.value).all() and (first["ts"] < early).all()


def test_bad_input_says_what_is_wrong():
    patterns = frame([("1h", "2024-03-06 05:00", "[]")])
    with pytest.raises(ConfigError, match=r"lacks column\(s\) bar"):
        select(patterns.drop(columns="bar"))
    with pytest.raises(ConfigError, match="do not match the 1h bars"):
        select(patterns.assign(bar=patterns["bar"] + 1))
    with pytest.raises(ConfigError, match="no bars given for timeframe 1h"):
        training_patterns(patterns, T, starts={"1D": STARTS["1D"]}, session=SESSION)
    with pytest.raises(ConfigError, match="name the symbol"):
        training_patterns(patterns, T)
    with pytest.raises(ConfigError, match="ISO-8601"):
        select(patterns, "after lunch")
    naive = select(patterns, pd.Timestamp("2024-03-06 20:00"))
    assert naive.train_end == T
