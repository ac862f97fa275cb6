"""The first phases of a run: data (demo market when there is none), discovery and matching."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stratforge.data.atlas import build_atlas
from stratforge.data.demo import ensure_symbol_data
from stratforge.data.load import load_bars
from stratforge.discovery.fractal import discover_patterns
from stratforge.discovery.library import TemplateLibrary, library_folder
from stratforge.discovery.matching import match_library, timeframe_vectors
from stratforge.discovery.templates import cluster_patterns
from stratforge.errors import DataError
from stratforge.features.cache import read_states
from stratforge.instruments import get_instrument
from stratforge.progress import ProgressCallback
from stratforge.research.runs import RunFolder
from stratforge.search.sweep import write_frame
from stratforge.timeframes import parse_timeframe

LIBRARY_DIR = "library"
MATCHES_DIR = "matches"


def ensure_data(run: RunFolder, home: Path | str | None, progress: ProgressCallback
                ) -> dict[str, Any]:
    """Make sure the symbol's ATLAS has every timeframe of the run; with no data at all for
    the demo symbol, build the demo market first (and say so). Returns the data figures:
    span, train end (the start of the trade date holding the ``train_fraction`` point of the
    span) and bars per timeframe."""
    config = run.config
    demo = ensure_symbol_data(config.symbol, home, progress)
    build_atlas(config.symbol, [parse_timeframe(tf) for tf in config.timeframes], home=home)
    progress("data", 1, 2, "ATLAS ready")
    bars = {tf: load_bars(config.symbol, tf, home=home) for tf in config.timeframes}
    empty = [tf for tf, frame in bars.items() if len(frame) == 0]
    if empty:
        raise DataError(f"{config.symbol} has no bars at {', '.join(empty)} (the base "
                        "timeframe may be coarser); choose other --timeframes")
    finest = bars[min(config.timeframes, key=lambda tf: parse_timeframe(tf).seconds)]
    train_end = split_time(finest, config.train_fraction, config.symbol, home)
    progress("data", 2, 2, f"train until {pd.Timestamp(train_end, tz='UTC')}")
    stamps = finest["ts"].array.asi8
    return {"demo_market": demo, "first": _iso(int(stamps[0])), "last": _iso(int(stamps[-1])),
            "train_end": _iso(train_end), "train_end_ns": int(train_end),
            "bars": {tf: len(frame) for tf, frame in bars.items()}}


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
    """Patterns on every bar of every run timeframe, clustered into templates on the
    in-sample patterns only; the library is saved in the run folder."""
    config = run.config
    result = discover_patterns(config.symbol, timeframes=config.hierarchy, home=home,
                               fresh=fresh, scan="full", progress=progress)
    train_end = pd.Timestamp(train_end_ns, tz="UTC")
    patterns = result.patterns[result.patterns["ts"] < train_end]
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
                                                   "symbol": config.symbol})
    library.save(run.path / LIBRARY_DIR)
    return {"patterns": len(result.patterns), "in_sample_patterns": len(patterns),
            "templates": len(library)}


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
    for i, tf in enumerate(config.timeframes):
        started = time.perf_counter()
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
        progress("matching", i + 1, len(config.timeframes),
                 f"{tf}: {len(frame):,} matches ({time.perf_counter() - started:.1f} s)")
    return {"matches": counts}


def matches_path(run: RunFolder, timeframe: str) -> Path:
    """The matches file of one timeframe."""
    return run.path / MATCHES_DIR / f"{timeframe}.parquet"
