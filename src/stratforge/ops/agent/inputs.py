"""What the design phase prepares before a designer chooses: data, spans, library, history.

Data: the symbol's bars (the demo market is built when the demo symbol has none) and the
ATLAS timeframes of the hierarchy. Spans, unless overridden: training from the first bar's
UTC date to the start of the trade date that holds the point 70 % of the way through the
finest timeframe's bars (``research.prepare.split_time``, so no day is split), backtest from
there to the day after the last bar. Overriding ``training.end`` alone moves the backtest
start with it. Then the template library (``ops.agent.library.ensure_library``) on the
training span (not for a cycle whose overrides ask for model designs only), the model
designs on offer (``model_options``), the experiments history, each hierarchy
timeframe's yardstick (the median true range in ticks of its training-span bars: the
preset regions' unit) and the symbol's cost model (with the ``costs`` overrides), written
into every design.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from stratforge.data.atlas import build_atlas
from stratforge.data.demo import ensure_symbol_data
from stratforge.data.load import load_bars
from stratforge.errors import ConfigError, DataError
from stratforge.instruments import Instrument, get_instrument
from stratforge.ops.agent.designer import DesignContext, ModelOption, TemplateInfo
from stratforge.ops.agent.experiments import history
from stratforge.ops.agent.library import LibraryChoice, ensure_library
from stratforge.ops.agent.modeling import FEATURE_SETS
from stratforge.ops.agent.settings import ENV_PREFIX
from stratforge.ops.agent.spec import CostModel, merge
from stratforge.ops.db import Database
from stratforge.progress import ProgressCallback
from stratforge.research.prepare import split_time
from stratforge.search.space import measure_yardstick
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


def training_yardsticks(symbol: str, timeframes: list[str], training: Mapping[str, str],
                        instrument: Instrument, home: Path | str | None) -> dict[str, float]:
    """Each timeframe's yardstick in ticks, measured on its bars in the training span only
    (``search.space.measure_yardstick``); a DataError when a timeframe has none there."""
    start, end = pd.Timestamp(training["start"]), pd.Timestamp(training["end"])
    out = {}
    for tf in timeframes:
        bars = load_bars(symbol, tf, start, end, home=home)
        if len(bars) == 0:
            raise DataError(f"{symbol} has no {tf} bars in the training span "
                            f"[{training['start']}, {training['end']}); choose spans inside "
                            "the data")
        out[tf] = measure_yardstick(bars, float(instrument.tick_size))
    return out


def _spans(defaults: dict[str, dict[str, str]], overrides: Mapping[str, Any]
           ) -> dict[str, dict[str, str]]:
    training = merge(defaults["training"], overrides.get("training") or {})
    backtest = dict(defaults["backtest"])
    if "end" in (overrides.get("training") or {}):
        backtest["start"] = training["end"]
    return {"training": training, "backtest": merge(backtest, overrides.get("backtest") or {})}


def prepare_design(db: Database, parameters: Mapping[str, Any], *,
                   home: Path | str | None = None, progress: ProgressCallback
                   ) -> tuple[DesignContext, LibraryChoice | None]:
    """The designer's context and the library it draws from (None for a cycle that only
    designs models), for a cycle's parameters (``overrides`` and ``defaults``: seed, n_sets,
    timeframes, signal_timeframes, design_kinds and the model options)."""
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
    kinds = tuple(defaults.get("design_kinds") or ("template",))
    probe = DesignContext(base={}, templates=(), signal_timeframes=(), overrides=overrides,
                          kinds=kinds)
    choice = None
    if "template" in probe.wanted_kinds():  # a model-only cycle needs no template library
        choice = ensure_library(symbol, hierarchy, train_end, home=home, seed=LIBRARY_SEED,
                                progress=progress)
    wanted = list(defaults.get("signal_timeframes") or hierarchy)
    signal_timeframes = [tf for tf in wanted if tf in hierarchy] or [hierarchy[-1]]
    instrument = get_instrument(symbol, home)
    costs = CostModel(**dict(overrides.get("costs") or {})).resolve(instrument)
    base = {"symbol": symbol, "timeframes": hierarchy, **spans,
            "n_sets": int(defaults.get("n_sets", 64)), "costs": CostModel.of(costs)}
    templates: tuple[TemplateInfo, ...] = ()
    if choice is not None:
        base["signal"] = {"library": choice.digest}
        templates = tuple(TemplateInfo(t.template_id, tuple(t.timeframes), int(t.members))
                          for t in choice.library)
    context = DesignContext(base=base, templates=templates,
                            signal_timeframes=tuple(signal_timeframes),
                            history=tuple(history(db)), overrides=overrides,
                            seed=int(defaults.get("seed", 0)),
                            yardsticks=training_yardsticks(symbol, hierarchy,
                                                           spans["training"], instrument, home),
                            tick_size=float(instrument.tick_size), kinds=kinds,
                            models=model_options(defaults))
    return context, choice


def model_options(defaults: Mapping[str, Any]) -> tuple[ModelOption, ...]:
    """The model designs on offer: every feature set x algorithm x horizon of the cycle's
    defaults (``model_feature_sets``, ``model_algorithms``, ``model_horizons``), in that
    order; a feature set not in ``modeling.FEATURE_SETS`` is a ConfigError."""
    out = []
    for name in defaults.get("model_feature_sets") or ():
        if name not in FEATURE_SETS:
            raise ConfigError(f"{ENV_PREFIX}MODEL_FEATURE_SETS: unknown feature set {name!r}; "
                              f"known: {', '.join(FEATURE_SETS)}")
        for algorithm in defaults.get("model_algorithms") or ("elasticnet",):
            for horizon in defaults.get("model_horizons") or (1,):
                out.append(ModelOption(name, FEATURE_SETS[name], str(algorithm),
                                       int(horizon)))
    return tuple(out)
