"""The trainer's two leaks (issue 16, "What was seen" 6 and 8), on an MNQ-like 1m market and
an EURUSD-like 1h market:

- a template library trained up to T makes ``train`` refuse the days on or before T (it
  starts after them; ``--start`` inside them is an error naming T and the options), and
  ``--allow-library-days`` trades them labelled in-sample;
- the brain learns, by default, from the trades of the parameters chosen before each day
  (checked against a plain reconstruction from the training folder: the day's champion
  parameters simulated on the day's fired entries), and ``--learn-from best`` learns from
  the day's best iteration as before, labelled in-sample.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from stratforge.cli.main import app
from stratforge.data.atlas import build_atlas
from stratforge.data.demo import synthesize_into_store
from stratforge.data.load import load_bars
from stratforge.discovery.fractal import discover_patterns
from stratforge.discovery.library import FeatureScaler, Template, TemplateLibrary
from stratforge.discovery.templates import cluster_patterns
from stratforge.errors import ConfigError, DataError
from stratforge.instruments import get_instrument
from stratforge.sim.backtest import simulate
from stratforge.trainer.analysis import oos_distribution
from stratforge.trainer.config import make_train_config
from stratforge.trainer.library_span import LibrarySpan, first_trade_day, library_span
from stratforge.trainer.loop import train
from stratforge.trainer.market import hierarchy_for
from stratforge.trainer.summary import finish_training

pytestmark = pytest.mark.slow
KINDS = {"MNQ": ("1m", 24), "EURUSD": ("1h", 160)}
"""Symbol: (traded timeframe, synthetic days): MNQ minutes and EURUSD hours."""
LEARNING = {"MNQ": {"warmup_days": 8, "max_days": 5},
            "EURUSD": {"warmup_days": 40, "max_days": 100, "match_threshold": 6.0,
                       "min_probability": 0.3}}
"""Warm-up runs that trade enough (hourly patterns are rare: more days, looser matching)."""
SMALL = {"iterations": 12}
LIBRARY_DAY = 14
"""The research library of the fixture is trained on the days before this one."""


def _first_bars(bars: pd.DataFrame, symbol: str) -> tuple[list[str], np.ndarray]:
    """Trade dates and the first bar time (ns) of each, from the instrument's calendar."""
    stamps = bars["ts"].array.asi8
    calendar = get_instrument(symbol).session.trade_days_covering(stamps)
    index = calendar.index_of(stamps)
    starts = np.flatnonzero(np.r_[True, np.diff(index) != 0])
    return [str(d) for d in calendar.dates[index[starts]]], stamps[starts]


def _save_run_library(home: Path, symbol: str, timeframe: str, train_end: pd.Timestamp,
                      run_id: str = "run_20990101_000000_leaktest") -> TemplateLibrary:
    """What a research run saves: templates clustered on the patterns before ``train_end``,
    in ``runs/<run id>/library``."""
    hierarchy = hierarchy_for(timeframe)
    result = discover_patterns(symbol, timeframes=hierarchy, home=home, scan="full")
    patterns = result.patterns[result.patterns["ts"] < train_end]
    library = cluster_patterns(patterns, train_end=train_end, random_state=3)
    library = library.with_templates([], metadata={"hierarchy": result.hierarchy,
                                                   "symbol": symbol})
    library.save(home / "runs" / run_id / "library")
    return library


@pytest.fixture(scope="module", params=list(KINDS))
def market(request, tmp_path_factory) -> dict:
    symbol = request.param
    timeframe, days = KINDS[symbol]
    home = tmp_path_factory.mktemp(f"leak-{symbol}") / "home"
    synthesize_into_store(symbol, days=days, seed=5, kind="realistic",
                          resolution="1m" if symbol == "MNQ" else None, replace=True,
                          home=home)
    build_atlas(symbol, home=home)
    bars = load_bars(symbol, timeframe, home=home)
    names, first_ns = _first_bars(bars, symbol)
    train_end = pd.Timestamp(int(first_ns[LIBRARY_DAY]), tz="UTC")
    library = _save_run_library(home, symbol, timeframe, train_end)
    # the library saw bars up to the later of train_end and its latest member bar's close
    closes = [int(m.split(":")[1]) + pd.Timedelta(m.split(":")[0]).value
              for t in library for m in t.member_ids]
    seen_until = max(int(train_end.value), *closes)
    first_honest = int(np.flatnonzero(first_ns >= seen_until)[0])
    return {"symbol": symbol, "timeframe": timeframe, "home": home, "days": names,
            "first_ns": first_ns, "train_end": train_end, "first_honest": first_honest}


def _copy(market: dict, tmp_path: Path, name: str) -> Path:
    home = tmp_path / name
    shutil.copytree(market["home"], home)
    return home


def _config(market: dict, **values):
    return make_train_config(symbol=market["symbol"], timeframe=market["timeframe"],
                             **SMALL, **values)


# ----------------------------------------------------------------- the library's days

def test_library_span_is_the_later_of_train_end_and_the_latest_member_close():
    zeros = [0.0] * 14

    def template(tid: str, members: list[str]) -> Template:
        return Template(tid, ["1m"], zeros, zeros, len(members), members, 1)

    ns = pd.Timestamp("2024-03-05T22:00:00Z").value
    hour = 3_600 * 10**9
    scalers = {"1m": FeatureScaler(zeros, [1.0] * 14)}
    # a 4h member opening two hours before train_end closes two hours after it
    lib = TemplateLibrary([template("T1", [f"1m:{ns - 60 * 10**9}", f"4h:{ns - 2 * hour}"])],
                          scalers, {"train_end": "2024-03-05T22:00:00+00:00"})
    span = library_span(lib, "test")
    assert span.end_ns == ns + 2 * hour
    assert span.recorded == "2024-03-05T22:00:00+00:00"
    assert span.latest_member == "2024-03-06T00:00:00+00:00"
    # members all before train_end: the recorded end
    inside = TemplateLibrary([template("T1", [f"1m:{ns - 120 * 10**9}"])], scalers,
                             {"train_end": "2024-03-05T22:00:00Z"})
    assert library_span(inside, "test").end_ns == ns
    # no train_end (discover without --train-end): the latest member's close
    untimed = TemplateLibrary([template("T1", [f"15m:{ns}"])], scalers, {"train_end": None})
    assert library_span(untimed, "test").end_ns == ns + 15 * 60 * 10**9
    # nothing dated at all: unknown
    blind = TemplateLibrary([template("T1", ["p1"])], scalers, {})
    assert library_span(blind, "test").end_ns is None


def test_first_trade_day_by_hand():
    days = ["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07", "2024-03-08"]
    first_ns = np.array([pd.Timestamp(d).value for d in days], dtype=np.int64)
    span = LibrarySpan("lib", int(first_ns[2]) + 1, "2024-03-06T00:00:00.000000001+00:00",
                       None)  # the library saw the first nanosecond of day 2

    def first(**values):
        options = {"default_first": 1, "start": None, "span": span,
                   "allow_library_days": False, **values}
        return first_trade_day(days, first_ns, **options)

    assert first() == 3
    assert first(span=None) == 1
    assert first(allow_library_days=True) == 1
    assert first(start=date(2024, 3, 8)) == 4
    assert first(start=date(2024, 3, 5), allow_library_days=True) == 1
    with pytest.raises(ConfigError, match=r"2024-03-06T00:00:00\.000000001.*start on "
                                          r"2024-03-07 or later"):
        first(start=date(2024, 3, 6))
    with pytest.raises(ConfigError, match="before the first day the trainer can trade"):
        first(start=date(2024, 3, 4), allow_library_days=True)
    with pytest.raises(ConfigError, match="after the last trade day"):
        first(start=date(2024, 3, 9))
    late = LibrarySpan("lib", int(first_ns[-1]) + 1, None, None)
    with pytest.raises(DataError, match="no trade day to train on after"):
        first(span=late)
    unknown = LibrarySpan("lib", None, None, None)
    with pytest.raises(DataError, match="records no training end"):
        first(span=unknown)
    assert first(span=unknown, allow_library_days=True) == 1


def test_the_verdict_leaves_out_the_library_days():
    days = pd.DataFrame({"day_index": range(5), "oos_pnl": [0.0, 10.0, 20.0, -5.0, 7.0],
                         "library_in_sample": [True, True, False, False, False]})
    verdict = oos_distribution(days)
    # the first day (no champion) and the library days go: 20, -5, 7
    assert verdict["n_days"] == 3
    assert verdict["mean"] == pytest.approx(22 / 3)
    assert verdict["std"] == pytest.approx(np.std([20.0, -5.0, 7.0], ddof=1))


def test_train_with_a_library_starts_after_its_training_days(market, tmp_path):
    home = _copy(market, tmp_path, "default")
    result = train(_config(market, max_days=2), home=home)
    days = market["days"]
    first = market["first_honest"]
    assert first >= LIBRARY_DAY
    assert list(result.days["day"]) == days[first:first + 2]
    # no traded day holds a bar before the library's training end
    assert (market["first_ns"][result.days["day_index"]] >= market["train_end"].value).all()
    assert not result.days["library_in_sample"].any()
    log, _ = finish_training(result, _config(market, max_days=2))
    assert log["library"]["recorded_train_end"] == market["train_end"].isoformat()
    assert log["summary"]["library_days"].startswith("none")


def test_start_inside_the_library_days_is_refused_naming_the_train_end(market, tmp_path):
    home = _copy(market, tmp_path, "refused")
    days = market["days"]
    early = days[LIBRARY_DAY - 3]
    with pytest.raises(ConfigError) as caught:
        train(_config(market, max_days=1, start=early), home=home)
    message = str(caught.value)
    assert market["train_end"].isoformat() in message
    assert "--allow-library-days" in message and "--templates warmup" in message
    assert days[market["first_honest"]] in message  # where an honest run may start
    runner = CliRunner()
    out = runner.invoke(app, ["--home", str(home), "train", "--symbol", market["symbol"],
                              "--timeframe", market["timeframe"], "--iterations", "12",
                              "--max-days", "1", "--start", early])
    assert out.exit_code != 0 and "--allow-library-days" in out.output


def test_start_picks_the_first_trade_day(market, tmp_path):
    home = _copy(market, tmp_path, "start")
    days = market["days"]
    later = market["first_honest"] + 2
    result = train(_config(market, max_days=1, start=days[later]), home=home)
    assert list(result.days["day_index"]) == [later]
    # a calendar date that is no trade day starts on the next trade day
    date = (pd.Timestamp(days[later]) - pd.Timedelta(days=1)).date()
    if str(date) not in days:
        again = train(_config(market, max_days=1, start=str(date)), home=home, fresh=True)
        assert list(again.days["day"]) == [days[later]]
    with pytest.raises(ConfigError, match="after the last trade day"):
        train(_config(market, start="2100-01-01"), home=home, fresh=True)


def test_allow_library_days_trades_them_labelled_in_sample(market, tmp_path):
    home = _copy(market, tmp_path, "allowed")
    days = market["days"]
    early = LIBRARY_DAY - 2
    honest = market["first_honest"]
    count = honest - early + 2
    config = _config(market, max_days=count, start=days[early], allow_library_days=True)
    result = train(config, home=home)
    assert list(result.days["day_index"]) == list(range(early, early + count))
    expected = market["first_ns"][early:early + count] < np.int64(
        market["first_ns"][honest])
    assert result.days["library_in_sample"].tolist() == expected.tolist()
    log, report = finish_training(result, config)
    assert log["summary"]["library_days"].startswith(f"{honest - early} IN SAMPLE")
    # the in-sample days are left out of the out-of-sample verdict (as is the first day)
    assert log["summary"]["out_of_sample"]["n_days"] == 2
    assert "IN SAMPLE" in report.read_text()
    # the terminal labels the days too
    runner = CliRunner()
    out = runner.invoke(app, ["--home", str(home), "train", "--symbol", market["symbol"],
                              "--timeframe", market["timeframe"], "--iterations", "12",
                              "--max-days", "1", "--start", days[early],
                              "--allow-library-days", "--fresh"])
    assert out.exit_code == 0, out.output
    assert "IN SAMPLE: the templates were trained on this day" in " ".join(out.output.split())


def test_a_library_with_no_day_after_it_is_refused(market, tmp_path):
    home = _copy(market, tmp_path, "late")
    bars = load_bars(market["symbol"], market["timeframe"], home=home)
    _save_run_library(home, market["symbol"], market["timeframe"],
                      pd.Timestamp(bars["ts"].iloc[-1]) + pd.Timedelta(days=1))
    with pytest.raises(DataError, match="no trade day to train on after"):
        train(_config(market, max_days=1), home=home)


# ----------------------------------------------------------------- what the brain learns

def _replayed_counts(home: Path, market: dict, folder: Path, column: str) -> Counter:
    """Per state: (wins, losses) of the day's fired entries traded with the parameters in
    ``column`` of days.parquet, re-simulated from the bars (a trade is a win when its PnL
    after costs is above zero)."""
    symbol = market["symbol"]
    instrument = get_instrument(symbol, home)
    costs = make_train_config(symbol=symbol).costs_for(instrument)
    bars = load_bars(symbol, market["timeframe"], home=home)
    _, first_ns = _first_bars(bars, symbol)
    stamps = bars["ts"].array.asi8
    day_start = np.r_[np.searchsorted(stamps, first_ns), len(bars)]
    days = pd.read_parquet(folder / "days.parquet")
    fired = pd.read_parquet(folder / "fired.parquet")
    counts: Counter = Counter()
    for row in days.itertuples():
        params = json.loads(getattr(row, column))
        entries = fired[fired["day_index"] == row.day_index]
        if not params or not len(entries):
            continue
        lo, hi = int(day_start[row.day_index]), int(day_start[row.day_index + 1])
        positions = entries["position"].to_numpy(np.int64) - lo
        trades = simulate(bars.iloc[lo:hi].reset_index(drop=True), positions,
                          entries["side"].to_numpy(np.int64), params, instrument=instrument,
                          costs=costs)
        for entry, pnl in zip(trades["entry_bar"], trades["pnl"], strict=True):
            state = entries["state"].iloc[int(np.flatnonzero(positions <= entry)[-1])]
            counts[(state, bool(pnl > 0))] += 1
    return counts


def _brain_counts(brain) -> Counter:
    counts: Counter = Counter()
    states = brain.keys()
    for key in states:
        counts[(key, True)] += brain.wins(key)
        counts[(key, False)] += brain.losses(key)
    return +counts


@pytest.fixture(scope="module")
def learned(market, tmp_path_factory) -> dict:
    """A warm-up training run of each learning source, on a copy of the market."""
    out = {}
    for source in ("champion", "best"):
        home = tmp_path_factory.mktemp(f"learn-{market['symbol']}-{source}") / "home"
        shutil.copytree(market["home"], home)
        shutil.rmtree(home / "runs")  # warm-up templates: trade from day warmup_days
        config = _config(market, templates="warmup", learn_from=source,
                         **LEARNING[market["symbol"]])
        result = train(config, home=home)
        out[source] = (home, result, config)
    return out


def test_the_brain_learns_from_the_parameters_chosen_before_the_day(market, learned):
    home, result, config = learned["champion"]
    days = result.days
    # every day trades a champion chosen among the earlier days' chosen sets (none on the
    # first day)
    for i, row in enumerate(days.itertuples()):
        if i == 0:
            assert row.oos_params == "{}" and row.learned_trades == 0
            continue
        assert row.oos_params in {"{}", *days["params"].iloc[:i]}
        assert row.learned_trades == row.oos_trades
    replayed = _replayed_counts(home, market, result.folder, "oos_params")
    assert sum(replayed.values()) == int(days["oos_trades"].sum()) > 0
    assert _brain_counts(result.brain) == +replayed
    # ... and not from the day's best iteration
    assert _brain_counts(result.brain) != +_replayed_counts(home, market, result.folder,
                                                            "params")
    log, report = finish_training(result, config)
    assert log["summary"]["learning"].startswith("out of sample")
    assert "out of sample: the trades of the parameters chosen before each day" in \
        report.read_text()


def test_learn_from_best_keeps_the_in_sample_learning_labelled(market, learned):
    home, result, config = learned["best"]
    days = result.days
    replayed = _replayed_counts(home, market, result.folder, "params")
    assert sum(replayed.values()) == int(days["trades"].sum()) > 0
    assert _brain_counts(result.brain) == +replayed
    assert (days["learned_trades"] == days["trades"]).all()
    # the old behaviour: every chosen trade teaches the brain, from the first day on
    states = result.brain.keys()
    assert sum(result.brain.n(k) for k in states) == days["trades"].sum()
    first = days.iloc[0]
    # both runs see the same first day (an empty brain gates alike)
    other = learned["champion"][1].days.iloc[0]
    assert (first["fired"], first["trades"], first["params"]) == \
        (other["fired"], other["trades"], other["params"])
    log, report = finish_training(result, config)
    assert log["summary"]["learning"].startswith("IN SAMPLE")
    assert log["config"]["learn_from"] == "best"
    assert "IN SAMPLE: the trades of each day" in report.read_text()


def test_resume_refuses_other_learning_or_day_settings(market, learned, tmp_path):
    config = learned["champion"][2]
    home = tmp_path / "resume"
    shutil.copytree(learned["champion"][0], home)
    for change, name in (({"learn_from": "best"}, "learn_from"),
                         ({"allow_library_days": True}, "allow_library_days"),
                         ({"start": market["days"][12]}, "start")):
        with pytest.raises(ConfigError, match=name):
            train(make_train_config(**{**config.model_dump(), **change}), home=home,
                  resume=True)


def test_resume_refuses_a_changed_template_library(market, tmp_path):
    home = _copy(market, tmp_path, "changed")
    train(_config(market, max_days=1), home=home)
    later = pd.Timestamp(int(market["first_ns"][LIBRARY_DAY + 1]), tz="UTC")
    # a newer research run's library, trained one day longer
    _save_run_library(home, market["symbol"], market["timeframe"], later,
                      run_id="run_20990101_000001_newer")
    with pytest.raises(ConfigError, match="pass --fresh"):
        train(_config(market, max_days=2), home=home, resume=True)
