"""What the design phase prepares before a designer chooses: data, spans, library, history.

Data: the symbol's bars (the demo market is built when the demo symbol has none) and the
ATLAS timeframes of the hierarchy. Spans, unless overridden: training from the first bar's
UTC date to the start of the trade date that holds the point 70 % of the way through the
finest timeframe's bars (``research.prepare.split_time``, so no day is split), backtest from
there to the day after the last bar. Overriding ``training.end`` alone moves the backtest
start with it. Then the template library (``ops.agent.library.ensure_library``) on the
training span, and the experiments history.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from stratforge.data.atlas import build_atlas
from stratforge.data.demo import ensure_symbol_data
from stratforge.data.load import load_bars
from stratforge.errors import DataError
from stratforge.ops.agent.designer import DesignContext, TemplateInfo
from stratforge.ops.agent.experiments import history
from stratforge.ops.agent.library import LibraryChoice, ensure_library
from stratforge.ops.agent.spec import merge
from stratforge.ops.db import Database
from stratforge.progress import ProgressCallback
from stratforge.research.prepare import split_time
from stratforge.timeframes import parse_timeframe

TRAIN_FRACTION = 0.7
LIBRARY_SEED = 0
"""random_state of the agent's template clustering (fixed: a designer seed never changes
the templates)."""


def _iso(stamp: pd.Timestamp) -> str:
    return stamp.tz_convert("UTC").isoformat()


def default_spans(symbol: str, hierarchy: list[str], home: Path | str | None
                  ) -> dict[str, dict[str, str]]:
    """The default training and backtest spans (see the module docstring)."""
    finest = min(hierarchy, key=lambda tf: parse_timeframe(tf).seconds)
    bars = load_bars(symbol, finest, home=home)
    if len(bars) < 2:
        raise DataError(f"{symbol} has {len(bars)} {finest} bars: too few to split into "
                        "training and backtest spans; ingest more data, or choose coarser "
                        "timeframes (override timeframes, or STRATFORGE_AGENT_TIMEFRAMES)")
    split = pd.Timestamp(split_time(bars, TRAIN_FRACTION, symbol, home), tz="UTC")
    first = bars["ts"].iloc[0].floor("D")
    last = (bars["ts"].iloc[-1] + pd.Timedelta(days=1)).floor("D")
    return {"training": {"start": _iso(first), "end": _iso(split)},
            "backtest": {"start": _iso(split), "end": _iso(last)}}


def _spans(defaults: dict[str, dict[str, str]], overrides: Mapping[str, Any]
           ) -> dict[str, dict[str, str]]:
    training = merge(defaults["training"], overrides.get("training") or {})
    backtest = dict(defaults["backtest"])
    if "end" in (overrides.get("training") or {}):
        backtest["start"] = training["end"]
    return {"training": training, "backtest": merge(backtest, overrides.get("backtest") or {})}


def prepare_design(db: Database, parameters: Mapping[str, Any], *,
                   home: Path | str | None = None, progress: ProgressCallback
                   ) -> tuple[DesignContext, LibraryChoice]:
    """The designer's context and the library it draws from, for a cycle's parameters
    (``overrides`` and ``defaults``: seed, n_sets, timeframes, signal_timeframes)."""
    overrides = dict(parameters.get("overrides") or {})
    defaults = dict(parameters.get("defaults") or {})
    symbol = str(overrides.get("symbol") or defaults.get("symbol") or "MNQ").upper()
    hierarchy = list(overrides.get("timeframes") or defaults.get("timeframes")
                     or ("1h", "15m", "5m"))
    ensure_symbol_data(symbol, home, progress, phase="data")
    build_atlas(symbol, [parse_timeframe(tf) for tf in hierarchy], home=home)
    progress("data", 1, 1, f"{symbol} bars on {', '.join(hierarchy)}")
    spans = _spans(default_spans(symbol, hierarchy, home), overrides)
    train_end = pd.Timestamp(spans["training"]["end"])
    choice = ensure_library(symbol, hierarchy, train_end, home=home, seed=LIBRARY_SEED,
                            progress=progress)
    wanted = list(defaults.get("signal_timeframes") or hierarchy)
    signal_timeframes = [tf for tf in wanted if tf in hierarchy] or [hierarchy[-1]]
    base = {"symbol": symbol, "timeframes": hierarchy, **spans,
            "n_sets": int(defaults.get("n_sets", 64)), "signal": {"library": choice.digest}}
    templates = tuple(TemplateInfo(t.template_id, tuple(t.timeframes), int(t.members))
                      for t in choice.library)
    context = DesignContext(base=base, templates=templates,
                            signal_timeframes=tuple(signal_timeframes),
                            history=tuple(history(db)), overrides=overrides,
                            seed=int(defaults.get("seed", 0)))
    return context, choice
