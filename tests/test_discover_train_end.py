"""`stratforge discover --train-end T` learns from the bars before T only.

Two markets identical up to T and different after it (the bars from T on come from another
seed, shifted to continue from the last price before T) must give identical training
patterns, template libraries, optimised exit parameters and fission, through the CLI and
through the Python functions; and no template member may read a bar at or after T. Checked on
synthetic MNQ 1m bars (tick 0.25, price ~18,000, CME session) and EURUSD 1h bars (tick
0.00001, price ~1.08, 24/5 FX session).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from stratforge.cli.main import app
from stratforge.data import build_atlas
from stratforge.data.ingest import write_base_bars
from stratforge.data.load import load_bars
from stratforge.data.resample import BarArrays
from stratforge.data.store import AtlasStore
from stratforge.data.synthetic.market import generate_market
from stratforge.discovery.fractal import discover_patterns
from stratforge.discovery.library import TemplateLibrary, library_folder
from stratforge.discovery.optimize import optimize_templates
from stratforge.discovery.patterns import ORACLE_LOOKAHEAD
from stratforge.discovery.span import training_patterns
from stratforge.discovery.templates import cluster_patterns
from stratforge.errors import ConfigError
from stratforge.instruments import get_instrument
from stratforge.timeframes import parse_timeframe

runner = CliRunner()

MARKETS = {
    # symbol: (trading days, base bars, hierarchy for discovery)
    "MNQ": (30, "1m", "15m,5m,1m"),
    "EURUSD": (520, "1h", "4h,1h"),
}
ORACLE = ["oracle_side", "oracle_mfe", "oracle_mae", "oracle_win", "oracle_label"]


@dataclass
class Twins:
    symbol: str
    hierarchy: str
    train_end: pd.Timestamp
    homes: tuple[Path, Path]
    patterns: tuple[pd.DataFrame, pd.DataFrame]


def _store(symbol: str, bars: pd.DataFrame, resolution: str, home: Path) -> None:
    write_base_bars(AtlasStore.open(symbol, home), BarArrays.from_frame(bars),
                    parse_timeframe(resolution), replace_all=True, source="test")
    build_atlas(symbol, home=home)


def _train_end(symbol: str, patterns: pd.DataFrame, home: Path) -> pd.Timestamp:
    """Two bars after a pattern of the finest timeframe past 55% of the series: that pattern
    starts before T but its oracle lookahead reaches past it."""
    finest = min(patterns["timeframe"].unique(), key=lambda tf: parse_timeframe(tf).seconds)
    stamps = load_bars(symbol, finest, home=home)["ts"]
    rows = patterns[(patterns["timeframe"] == finest)
                    & (patterns["bar"] >= int(0.55 * len(stamps)))]
    return stamps.iloc[int(rows["bar"].min()) + 2]


@pytest.fixture(scope="module", params=sorted(MARKETS))
def twins(request, tmp_path_factory) -> Twins:
    symbol = request.param
    days, resolution, hierarchy = MARKETS[symbol]
    instrument = get_instrument(symbol)
    first = generate_market(instrument, days=days, seed=5, resolution=resolution).bars
    other = generate_market(instrument, days=days, seed=6, resolution=resolution).bars
    root = tmp_path_factory.mktemp(f"twins-{symbol}")
    home_a, home_b = root / "a", root / "b"
    _store(symbol, first, resolution, home_a)
    found_a = discover_patterns(symbol, timeframes=hierarchy, home=home_a).patterns
    end = _train_end(symbol, found_a, home_a)

    before = first[first["ts"] < end]
    after = other[other["ts"] >= end].copy()
    tick = instrument.tick_size
    shift = round((before["close"].iloc[-1] - after["open"].iloc[0]) / tick) * tick
    for column in ("open", "high", "low", "close"):
        after[column] = np.round((after[column] + shift) / tick) * tick
    _store(symbol, pd.concat([before, after], ignore_index=True), resolution, home_b)
    found_b = discover_patterns(symbol, timeframes=hierarchy, home=home_b).patterns
    return Twins(symbol, hierarchy, end, (home_a, home_b), (found_a, found_b))


def test_the_twins_differ_after_t_and_the_old_rule_leaks(twins):
    a, b = twins.patterns
    end = twins.train_end
    assert not a[a["ts"] >= end]["pattern_id"].reset_index(drop=True).equals(
        b[b["ts"] >= end]["pattern_id"].reset_index(drop=True))
    # the old research rule (ts < T) keeps patterns whose oracle reads bars after T
    old_a = a[a["ts"] < end].set_index("pattern_id")
    old_b = b[b["ts"] < end].set_index("pattern_id")
    assert old_a.index.equals(old_b.index)
    assert not old_a[ORACLE].equals(old_b[ORACLE])


def test_training_patterns_depend_only_on_bars_before_t(twins):
    spans = [training_patterns(p, twins.train_end, home=h)
             for p, h in zip(twins.patterns, twins.homes, strict=True)]
    a, b = (s.patterns for s in spans)
    assert len(a) > 20
    pd.testing.assert_frame_equal(a, b)
    assert spans[0].excluded["lookahead"] >= 1  # the pattern two bars before T
    assert (a["ts"] < twins.train_end).all()


def test_no_member_reads_a_bar_at_or_after_t(twins):
    """Independent check: every member's own bar and its oracle lookahead (the next L bars of
    its timeframe) start before T and last no longer than their duration."""
    home = twins.homes[0]
    span = training_patterns(twins.patterns[0], twins.train_end, home=home)
    library = cluster_patterns(span.patterns, train_end=twins.train_end)
    by_id = twins.patterns[0].set_index("pattern_id")
    stamps = {tf: load_bars(twins.symbol, tf, home=home)["ts"].tolist()
              for tf in twins.patterns[0]["timeframe"].unique()}
    end = twins.train_end
    checked = 0
    for template in library:
        for member in template.member_ids:
            row = by_id.loc[member]
            series = stamps[row["timeframe"]]
            position = series.index(row["ts"])
            last = min(position + ORACLE_LOOKAHEAD[row["timeframe"]], len(series) - 1)
            duration = pd.Timedelta(seconds=parse_timeframe(row["timeframe"]).seconds)
            assert series[last] + duration <= end, member
            checked += 1
    assert checked == len(span.patterns) - library.metadata["dropped_rows"] > 0
    # and the rule bites: some pattern that starts before T is not a member
    early = set(by_id.index[by_id["ts"] < end])
    members = {m for t in library for m in t.member_ids}
    assert early - members


def _fit(twins: Twins, home: Path, folder: Path):
    found = discover_patterns(twins.symbol, timeframes=twins.hierarchy, home=home).patterns
    span = training_patterns(found, twins.train_end, home=home)
    library = cluster_patterns(span.patterns, train_end=twins.train_end, random_state=3)
    return optimize_templates(library, span.patterns, symbol=twins.symbol, home=home,
                              iterations=12, members_per_template=6, fission_members=30,
                              fission_iterations=8, min_silhouette=0.3, random_state=3,
                              checkpoint_dir=folder, resume=False)


def test_functions_cluster_optimise_and_split_identically(twins, tmp_path):
    first, second = (_fit(twins, home, tmp_path / name)
                     for home, name in zip(twins.homes, ("a", "b"), strict=True))
    assert len(first.library) >= 2
    assert first.library == second.library
    pd.testing.assert_frame_equal(first.report, second.report)
    assert first.splits == second.splits
    assert (first.report["fission_members"] > 0).any()   # fission ran
    assert first.library.metadata["optimization"]["train_end"] == twins.train_end.isoformat()


def test_cli_discover_train_end_gives_identical_libraries(twins):
    libraries, outputs = [], []
    for home in twins.homes:
        result = runner.invoke(app, [
            "--home", str(home), "discover", "--symbol", twins.symbol, "--timeframes",
            twins.hierarchy, "--train-end", twins.train_end.isoformat(), "--optimize",
            "--iterations", "12", "--members", "5", "--show", "3"])
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
        libraries.append(TemplateLibrary.load(library_folder(twins.symbol, home)))
    first, second = libraries
    assert len(first) >= 2 and all(t.params for t in first)
    assert first == second
    assert all("training span to" in output for output in outputs)
    meta = first.metadata
    assert meta["train_end"] == twins.train_end.isoformat()
    assert meta["training_span"]["used"] == meta["n_patterns"]
    members = {m for t in first for m in t.member_ids}
    late = set(twins.patterns[0].loc[twins.patterns[0]["ts"] >= twins.train_end,
                                     "pattern_id"])
    assert members and not members & late


def test_cli_rejects_an_unreadable_or_too_early_train_end(twins):
    home = twins.homes[0]
    bad = runner.invoke(app, ["--home", str(home), "discover", "--symbol", twins.symbol,
                              "--timeframes", twins.hierarchy, "--train-end", "soon"])
    assert bad.exit_code == 1 and "--train-end" in bad.output and "ISO-8601" in bad.output
    early = runner.invoke(app, ["--home", str(home), "discover", "--symbol", twins.symbol,
                                "--timeframes", twins.hierarchy, "--train-end", "2000-01-01"])
    assert early.exit_code == 1 and "no pattern" in early.output


def test_cluster_patterns_refuses_patterns_at_or_after_train_end(twins):
    patterns = twins.patterns[0]
    with pytest.raises(ConfigError, match="training_patterns"):
        cluster_patterns(patterns, train_end=twins.train_end)


def test_the_optimiser_refuses_a_later_train_end_or_late_members(twins, tmp_path):
    home = twins.homes[0]
    span = training_patterns(twins.patterns[0], twins.train_end, home=home)
    library = cluster_patterns(span.patterns, train_end=twins.train_end)
    with pytest.raises(ConfigError, match="after the library's training end"):
        optimize_templates(library, span.patterns, symbol=twins.symbol, home=home,
                           train_end=twins.train_end + pd.Timedelta(days=1),
                           checkpoint_dir=tmp_path)
    early = twins.patterns[0]["ts"].min() + pd.Timedelta(seconds=1)
    with pytest.raises(ConfigError, match="after the training end"):
        optimize_templates(library, span.patterns, symbol=twins.symbol, home=home,
                           train_end=early, iterations=6, checkpoint_dir=tmp_path)
    assert json.dumps(library.metadata)  # still JSON-ready


def test_research_discovery_uses_only_patterns_whose_oracle_ends_before_t(twins):
    """The research pipeline's discovery phase (full scans, in-sample patterns) gives the
    same library on both twins: before the fix it kept every pattern starting before T, and
    the oracle statistics of those near T read the bars after it."""
    from stratforge.progress import no_progress
    from stratforge.research.config import ResearchConfig
    from stratforge.research.prepare import LIBRARY_DIR, discover
    from stratforge.research.runs import RunFolder

    config = ResearchConfig(symbol=twins.symbol, timeframes=tuple(twins.hierarchy.split(",")),
                            seed=2)
    libraries, infos = [], []
    for home in twins.homes:
        run = RunFolder.create(config, home, run_id="run_train_end_test")
        infos.append(discover(run, home, twins.train_end.value, False, no_progress))
        libraries.append(TemplateLibrary.load(run.path / LIBRARY_DIR))
    assert libraries[0] == libraries[1] and len(libraries[0]) >= 2
    assert infos[0]["in_sample_patterns"] == infos[1]["in_sample_patterns"]
    assert infos[0]["patterns"] != infos[1]["patterns"]     # the twins differ after T
    assert libraries[0].metadata["training_span"]["used"] == infos[0]["in_sample_patterns"]
