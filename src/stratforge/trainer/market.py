"""What the trainer walks over: the bars split into trading days, the template library and
every template match of the timeframe, with the state of each matched bar."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stratforge.config import resolve_home
from stratforge.data.load import load_bars
from stratforge.discovery.fractal import discover_patterns
from stratforge.discovery.library import TemplateLibrary, library_folder
from stratforge.discovery.matching import match_library, timeframe_vectors
from stratforge.discovery.span import training_patterns
from stratforge.discovery.templates import cluster_patterns
from stratforge.errors import DataError
from stratforge.features.cache import read_states
from stratforge.instruments import Instrument, get_instrument
from stratforge.timeframes import ATLAS_TIMEFRAMES, parse_timeframe
from stratforge.trainer.config import TrainConfig
from stratforge.trainer.library_span import LibrarySpan, library_span


@dataclass
class TrainingMarket:
    """Bars of the timeframe, their trade days and the matched bars.

    ``day_start[i]:day_start[i + 1]`` are the bar positions of trade day ``i`` (``days``).
    ``matches`` has one row per (bar, template) match: ``position``, ``template_id``,
    ``side``, ``zone``, ``z``, ordered by position then library order. ``first_day`` is the
    first day the library's kind allows (after the warm-up days, else 0); ``span`` where the
    library's training data ends (``trainer.library_span``).
    """

    instrument: Instrument
    bars: pd.DataFrame
    days: list[str]
    day_start: np.ndarray
    library: TemplateLibrary
    matches: pd.DataFrame
    first_day: int
    library_source: str
    span: LibrarySpan


def trade_days(bars: pd.DataFrame, instrument: Instrument) -> tuple[list[str], np.ndarray]:
    """The trade dates holding bars (ISO strings) and the first bar position of each, plus
    ``len(bars)`` at the end."""
    stamps = bars["ts"].array.asi8
    calendar = instrument.session.trade_days_covering(stamps)
    index = calendar.index_of(stamps)
    starts = np.flatnonzero(np.r_[True, np.diff(index) != 0])
    names = [str(d) for d in calendar.dates[index[starts]]]
    return names, np.r_[starts, len(stamps)].astype(np.int64)


def hierarchy_for(timeframe: str) -> list[str]:
    """The timeframe and the two coarser intraday timeframes above it, longest first (the
    feature hierarchy of a warm-up discovery)."""
    names = [str(tf) for tf in ATLAS_TIMEFRAMES if tf.intraday]
    i = names.index(timeframe) if timeframe in names else len(names) - 1
    return sorted(names[i:i + 3], key=lambda tf: -parse_timeframe(tf).seconds)


def latest_library(symbol: str, timeframe: str, home: Path | str | None
                   ) -> tuple[TemplateLibrary, str] | None:
    """The newest research run's library (or the symbol's discovery library) whose hierarchy
    holds ``timeframe``; None when there is none."""
    runs = sorted((resolve_home(home) / "runs").glob("run_*/library"))
    candidates = [*reversed(runs), library_folder(symbol, home)]
    for folder in candidates:
        if not (folder / "library.json").exists():
            continue
        library = TemplateLibrary.load(folder)
        if library.metadata.get("symbol", symbol) != symbol:
            continue
        if timeframe in (library.metadata.get("hierarchy") or []) and timeframe in \
                library.scalers:
            return library, str(folder)
    return None


def warmup_library(config: TrainConfig, bars: pd.DataFrame, day_start: np.ndarray,
                   home: Path | str | None) -> TemplateLibrary:
    """Templates discovered on the warm-up days only (patterns before the first trained
    day, full scans of the timeframe and the two above it)."""
    hierarchy = hierarchy_for(config.timeframe)
    result = discover_patterns(config.symbol, timeframes=hierarchy, home=home, scan="full")
    cutoff = pd.Timestamp(int(bars["ts"].array.asi8[day_start[config.warmup_days]]), tz="UTC")
    # patterns whose every bar, the oracle's lookahead included, ends by the cutoff
    patterns = training_patterns(result.patterns, cutoff, symbol=config.symbol,
                                 home=home).patterns
    if len(patterns) == 0:
        raise DataError(f"{config.symbol}: no pattern in the {config.warmup_days} warm-up "
                        f"days on {', '.join(hierarchy)}; use more --warmup-days")
    library = cluster_patterns(patterns, train_end=cutoff, random_state=config.seed)
    return library.with_templates([], metadata={"hierarchy": result.hierarchy,
                                                "symbol": config.symbol})


def load_market(config: TrainConfig, home: Path | str | None) -> TrainingMarket:
    """Bars, days, templates and matches for a training run."""
    instrument = get_instrument(config.symbol, home)
    bars = load_bars(config.symbol, config.timeframe, home=home)
    if len(bars) == 0:
        raise DataError(f"no {config.timeframe} bars for {config.symbol}; build the ATLAS "
                        f"with `stratforge data atlas --symbol {config.symbol}`")
    days, day_start = trade_days(bars, instrument)
    found = latest_library(config.symbol, config.timeframe, home) \
        if config.templates == "latest" else None
    first_day = 0
    if found is None:
        if len(days) <= config.warmup_days:
            raise DataError(f"{config.symbol} has {len(days)} trading days: too few for "
                            f"{config.warmup_days} warm-up days; ingest more data")
        library, source = warmup_library(config, bars, day_start, home), "warm-up discovery"
        first_day = config.warmup_days
    else:
        library, source = found
    hierarchy = list(library.metadata.get("hierarchy") or hierarchy_for(config.timeframe))
    vectors = timeframe_vectors(config.symbol, config.timeframe, hierarchy, home=home)
    states = read_states(config.symbol, config.timeframe,
                         columns=("cascade_detected", "structure_confirmed", "zone"), home=home)
    eligible = states["cascade_detected"].to_numpy() | states["structure_confirmed"].to_numpy()
    found_matches = match_library(library, vectors, config.timeframe,
                                  threshold=config.match_threshold, eligible=eligible)
    positions = found_matches["position"].to_numpy()
    matches = pd.DataFrame({
        "position": positions,
        "template_id": found_matches["template_id"],
        "side": found_matches["side"].to_numpy(np.int64),
        "zone": states["zone"].astype("str").to_numpy()[positions],
        "z": vectors["z"].to_numpy(np.float64)[positions],
    })
    order = np.argsort(positions, kind="stable")  # by bar, then library order
    return TrainingMarket(instrument, bars, days, day_start, library,
                          matches.iloc[order].reset_index(drop=True), first_day, source,
                          library_span(library, source))
