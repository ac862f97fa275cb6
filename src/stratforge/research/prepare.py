"""The first phases of a run: data (demo market when there is none, the market block with the
cost model, yardsticks and resolved parameter spaces), discovery and matching."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stratforge.data.atlas import build_atlas
from stratforge.data.demo import describe_synthetic_market, ensure_symbol_data, synthetic_spec
from stratforge.data.load import default_timeframes, load_bars, store_timeframes
from stratforge.data.market import Market, resolve_market
from stratforge.data.timeframe_choice import missing_timeframes_message, quick_timeframes
from stratforge.discovery.fractal import LevelReport, discover_patterns
from stratforge.discovery.library import TemplateLibrary, library_folder
from stratforge.discovery.matching import match_library, timeframe_vectors
from stratforge.discovery.span import training_patterns
from stratforge.discovery.templates import cluster_patterns
from stratforge.errors import DataError
from stratforge.features.cache import read_states
from stratforge.instruments import get_instrument
from stratforge.progress import ProgressCallback
from stratforge.research.config import ResearchConfig
from stratforge.research.runs import RunFolder
from stratforge.search.space import (
    ParameterSpace,
    default_space,
    measure_yardstick,
    space_from_rows,
    space_rows,
)
from stratforge.search.sweep import write_frame
from stratforge.timeframes import parse_timeframe

LIBRARY_DIR = "library"
MATCHES_DIR = "matches"


def choose_timeframes(config: ResearchConfig, home: Path | str | None,
                      progress: ProgressCallback) -> ResearchConfig:
    """``config`` with its timeframes chosen from what the store holds, when not given.

    Builds the demo market when there is no data for the demo symbol, then takes
    ``data.load.default_timeframes`` (the ladder 1m 5m 15m 1h 4h 1D 1W from the finest
    timeframe at or above the store's base, those with enough bars; an MNQ 1s store gives 1m,
    5m, 15m, 1h, 4h, hourly FX 1h, 4h, 1D, ten years of daily bars 1D, 1W); a quick run takes
    ``timeframe_choice.quick_timeframes`` of those (MNQ: 1m, 5m, 15m).
    """
    if config.timeframes is not None:
        return config
    ensure_symbol_data(config.symbol, home, progress)
    chosen = default_timeframes(config.symbol, home)
    if not chosen:
        counts = store_timeframes(config.symbol, home)
        have = ", ".join(f"{tf} ({n:,} bars)" for tf, n in counts.items())
        raise DataError(f"{config.symbol.upper()} has too little data for a research run: no "
                        f"timeframe at or above its base has enough bars (the store holds "
                        f"{have or 'nothing'}); ingest more data or name --timeframes")
    if config.quick:
        chosen = tuple(quick_timeframes(chosen))
    return config.model_copy(update={"timeframes": tuple(chosen)})


def ensure_data(run: RunFolder, home: Path | str | None, progress: ProgressCallback
                ) -> dict[str, Any]:
    """Make sure the symbol's ATLAS has every timeframe of the run; with no data at all for
    a symbol with a synthetic profile, build its synthetic market first (and say so). Returns
    the data figures: whether the data is a synthetic market (``demo_market``, and
    ``synthetic`` describing it), span, train end (the start of the trade date holding the
    ``train_fraction`` point of the span), bars per timeframe and the market block
    (:func:`market_block`)."""
    config = run.config
    timeframes = config.run_timeframes
    ensure_symbol_data(config.symbol, home, progress)
    spec = synthetic_spec(config.symbol, home)
    build_atlas(config.symbol, [parse_timeframe(tf) for tf in timeframes], home=home)
    progress("data", 1, 3, "ATLAS ready")
    bars = {tf: load_bars(config.symbol, tf, home=home) for tf in timeframes}
    empty = [tf for tf, frame in bars.items() if len(frame) == 0]
    if empty:
        market = resolve_market(config.symbol, home)
        raise DataError(missing_timeframes_message(config.symbol, empty, market.bar_counts,
                                                   market.base_timeframe))
    finest = bars[min(timeframes, key=lambda tf: parse_timeframe(tf).seconds)]
    train_end = split_time(finest, config.train_fraction, config.symbol, home)
    progress("data", 2, 3, f"train until {pd.Timestamp(train_end, tz='UTC')}")
    market = resolve_market(config.symbol, home, cost_overrides=config.cost_overrides)
    block = market_block(market, config, bars, train_end)
    progress("data", 3, 3, f"costs: {market.costs.describe()}")
    stamps = finest["ts"].array.asi8
    return {"demo_market": spec is not None,
            "synthetic": describe_synthetic_market(spec) if spec else None,
            "first": _iso(int(stamps[0])), "last": _iso(int(stamps[-1])),
            "train_end": _iso(train_end), "train_end_ns": int(train_end),
            "bars": {tf: len(frame) for tf, frame in bars.items()}, "market": block}


def market_block(market: Market, config: ResearchConfig, bars: dict[str, pd.DataFrame],
                 train_end_ns: int) -> dict[str, Any]:
    """What the run knows of its market: symbol, base timeframe, timeframes, the cost model
    (settings, per fill and per round trip in price units and currency at the in-sample
    median close) and, per run timeframe, the yardstick (median true range of the in-sample
    bars, in ticks and price units) and the resolved parameter space (each parameter's
    range in the simulator's units, and distances in price units)."""
    tick = market.tick_size
    finest = bars[min(bars, key=lambda tf: parse_timeframe(tf).seconds)]
    in_sample = finest[finest["ts"].array.asi8 < train_end_ns]
    price = float(in_sample["close"].median())
    frames = {}
    for tf, frame in bars.items():
        train = frame[frame["ts"].array.asi8 < train_end_ns]
        if len(train) < 2:
            raise DataError(f"{market.symbol} {tf}: {len(train)} in-sample bar(s); too few to "
                            "measure the volatility yardstick (choose coarser-than-base "
                            "timeframes with more bars, or ingest more data)")
        yardstick = measure_yardstick(train, tick)
        space = timeframe_space(config, tf, yardstick, tick)
        frames[tf] = {"yardstick_ticks": yardstick, "yardstick_price": yardstick * tick,
                      "in_sample_bars": len(train), "space_rows": [list(r) for r in
                                                                   space_rows(space)],
                      "resolved_space": resolved_space(space, tick)}
    return {"symbol": market.symbol, "currency": market.instrument.currency,
            "tick_size": tick, "point_value": float(market.instrument.point_value),
            "price_decimals": market.instrument.price_decimals,
            "base_timeframe": market.base_timeframe, "timeframes": list(bars),
            "session": market.session.describe(),
            "cost_model": market.cost_block(price), "per_timeframe": frames}


def timeframe_space(config: ResearchConfig, timeframe: str, yardstick_ticks: float,
                    tick_size: float) -> ParameterSpace:
    """The run's parameter space of one timeframe: the YAML file's (``--space``) or the
    house default, resolved with the timeframe's yardstick."""
    if config.space_path:
        return ParameterSpace.from_yaml(config.space_path, timeframe,
                                        yardstick_ticks=yardstick_ticks, tick_size=tick_size)
    return default_space(timeframe, yardstick_ticks=yardstick_ticks, tick_size=tick_size)


def resolved_space(space: ParameterSpace, tick_size: float) -> dict[str, dict[str, Any]]:
    """Each parameter's range as run: ticks and price units for distances, bars for
    ``max_hold_bars``."""
    out: dict[str, dict[str, Any]] = {}
    for p in space.parameters:
        if p.name == "max_hold_bars":
            out[p.name] = {"low_bars": p.low, "high_bars": p.high}
        elif p.name == "trail_widen_points":
            out[p.name] = {"low_price": p.low, "high_price": p.high,
                           "low_ticks": p.low / tick_size, "high_ticks": p.high / tick_size}
        else:
            out[p.name] = {"low_ticks": p.low, "high_ticks": p.high,
                           "low_price": p.low * tick_size, "high_price": p.high * tick_size}
    return out


def run_space(run: RunFolder, timeframe: str) -> ParameterSpace:
    """The resolved parameter space of a run timeframe (from the data phase)."""
    rows = run.info("data")["market"]["per_timeframe"][timeframe]["space_rows"]
    return space_from_rows(rows)


def _iso(ns: int) -> str:
    return pd.Timestamp(ns, tz="UTC").isoformat()


def split_time(bars: pd.DataFrame, fraction: float, symbol: str,
               home: Path | str | None) -> int:
    """The in-sample end (exclusive, UTC ns): the first instant of the trade date that holds
    the point ``fraction`` of the way through the bars' span, so no day is split."""
    stamps = bars["ts"].array.asi8
    point = int(stamps[0] + fraction * (int(stamps[-1]) - int(stamps[0])))
    calendar = get_instrument(symbol, home).session.trade_days_covering(stamps)
    day = int(calendar.index_of(np.asarray([point]))[0])
    first_of_day = int(np.searchsorted(calendar.index_of(stamps), day, side="left"))
    if first_of_day == 0 or first_of_day >= len(stamps):
        raise DataError(f"{symbol}: too little data to split in and out of sample "
                        f"({len(stamps)} bars); ingest more days")
    return int(stamps[first_of_day])


def discover(run: RunFolder, home: Path | str | None, train_end_ns: int, fresh: bool,
             progress: ProgressCallback) -> dict[str, Any]:
    """Patterns of the run timeframes (every bar with ``scan="full"``, the fractal
    drill-down with ``scan="drill"``), clustered into templates on the in-sample patterns
    only (``training_patterns``: every bar a pattern reads, its oracle lookahead and, in a
    drill-down, its parents included, ends by the in-sample end); the library is saved in
    the run folder. The figures hold ``levels`` (:func:`discovery_levels`)."""
    config = run.config
    result = discover_patterns(config.symbol, timeframes=config.hierarchy, home=home,
                               fresh=fresh, scan=config.scan, progress=progress)
    train_end = pd.Timestamp(train_end_ns, tz="UTC")
    span = training_patterns(result.patterns, train_end, symbol=config.symbol, home=home)
    patterns = span.patterns
    levels = discovery_levels(result.levels, patterns)
    if len(patterns) == 0:
        raise DataError(f"{config.symbol}: discovery found no in-sample pattern on "
                        f"{', '.join(config.hierarchy)}; add data or timeframes")
    library = cluster_patterns(patterns, train_end=train_end, random_state=config.seed,
                               progress=progress)
    if config.max_templates is not None and len(library) > config.max_templates:
        # templates come ordered by member count: keep the largest ones
        library = TemplateLibrary(library.templates[:config.max_templates], library.scalers,
                                  library.metadata)
    library = library.with_templates([], metadata={"hierarchy": config.hierarchy,
                                                   "symbol": config.symbol,
                                                   "training_span": span.metadata()})
    library.save(run.path / LIBRARY_DIR)
    write_frame(run.path / "patterns.parquet", patterns)  # the optimize phase's members
    return {"scan": config.scan, "patterns": len(result.patterns),
            "in_sample_patterns": len(patterns), "templates": len(library), "levels": levels}


def discovery_levels(reports: list[LevelReport], in_sample: pd.DataFrame
                     ) -> list[dict[str, Any]]:
    """One record per discovery level, top down: level (depth), timeframe, bars scanned,
    drill-down windows (0 on a full scan), patterns found, in-sample patterns (those the
    templates were clustered from), ``full_scan`` (the level scanned every bar) and
    ``skipped`` (it found no pattern). Only figures the data decides: no timings."""
    kept = in_sample["timeframe"].astype(str).value_counts()
    return [{"level": r.depth, "timeframe": r.timeframe, "bars_scanned": int(r.bars_scanned),
             "windows": int(r.windows), "patterns": int(r.patterns),
             "in_sample_patterns": int(kept.get(r.timeframe, 0)),
             "full_scan": bool(r.full_scan), "skipped": bool(r.skipped)} for r in reports]


def reuse_library(run: RunFolder, source: Path) -> dict[str, Any]:
    """Copy a saved template library into the run (``--mc-only``)."""
    library = TemplateLibrary.load(source)
    library.save(run.path / LIBRARY_DIR)
    return {"templates": len(library), "library_from": str(source)}


def latest_library(run: RunFolder, home: Path | str | None) -> Path:
    """The library of the newest other run that has one, else the symbol's discovery
    library; DataError when there is none."""
    runs = sorted(p for p in run.path.parent.glob("run_*") if p != run.path
                  and (p / LIBRARY_DIR).exists())
    if runs:
        return runs[-1] / LIBRARY_DIR
    saved = library_folder(run.config.symbol, home)
    if saved.exists():
        return saved
    raise DataError(f"--mc-only reuses templates, but there are none for {run.config.symbol}: "
                    "run `stratforge run` (or `stratforge discover`) first")


def match(run: RunFolder, home: Path | str | None, progress: ProgressCallback
          ) -> dict[str, Any]:
    """The matches of every template on every run timeframe, one file per timeframe
    (``matches/<tf>.parquet``: template_id, ts, side)."""
    config = run.config
    library = TemplateLibrary.load(run.path / LIBRARY_DIR)
    hierarchy = list(library.metadata.get("hierarchy") or config.hierarchy)
    folder = run.path / MATCHES_DIR
    shutil.rmtree(folder, ignore_errors=True)
    counts = {}
    for i, tf in enumerate(config.run_timeframes):
        started = time.perf_counter()
        if tf not in library.scalers:
            # no in-sample pattern on this timeframe: no scaler, so nothing can match it
            write_frame(folder / f"{tf}.parquet", pd.DataFrame(
                {"template_id": pd.array([], dtype="str"), "ts": np.empty(0, np.int64),
                 "side": np.empty(0, np.int8)}))
            counts[tf] = 0
            progress("matching", i + 1, len(config.run_timeframes),
                     f"{tf}: no in-sample patterns, nothing to match")
            continue
        vectors = timeframe_vectors(config.symbol, tf, hierarchy, home=home)
        eligible = None
        if config.match_bars == "patterns":
            flags = read_states(config.symbol, tf, columns=("cascade_detected",
                                                            "structure_confirmed"), home=home)
            eligible = (flags["cascade_detected"].to_numpy()
                        | flags["structure_confirmed"].to_numpy())
        found = match_library(library, vectors, tf, threshold=config.match_threshold,
                              eligible=eligible)
        stamps = vectors["ts"].array.asi8
        frame = pd.DataFrame({"template_id": found["template_id"],
                              "ts": stamps[found["position"].to_numpy()].astype(np.int64),
                              "side": found["side"]})
        write_frame(folder / f"{tf}.parquet", frame)
        counts[tf] = len(frame)
        progress("matching", i + 1, len(config.run_timeframes),
                 f"{tf}: {len(frame):,} matches ({time.perf_counter() - started:.1f} s)")
    return {"matches": counts}


def matches_path(run: RunFolder, timeframe: str) -> Path:
    """The matches file of one timeframe."""
    return run.path / MATCHES_DIR / f"{timeframe}.parquet"
