"""The end of a training run: ``training_log.json`` (summary, parameter evolution, top
patterns, the honest out-of-sample verdict) and ``training_report.html``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from stratforge.data.atomic import atomic_write_json, json_ready
from stratforge.errors import ConfigError
from stratforge.instruments import get_instrument
from stratforge.trainer.analysis import (
    CONFIDENT_LEVEL,
    breakdowns,
    compare_periods,
    confident_states,
    hour_of_day,
    learning_progression,
    oos_distribution,
    parameter_evolution,
    strongest_states,
    trade_durations,
)
from stratforge.trainer.config import TrainConfig
from stratforge.trainer.loop import TrainResult
from stratforge.trainer.report import write_training_report

LOG_FILE = "training_log.json"


_clean = json_ready


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [_clean(r) for r in frame.to_dict("records")]


LEARNING_LABELS = {
    "champion": "out of sample: the trades of the parameters chosen before each day",
    "best": "IN SAMPLE: the trades of each day's best iteration, picked on the day it is "
            "scored on (optimistic)",
}
"""How the log and the report name what the brain learned from (``TrainConfig.learn_from``)."""


def library_days_text(days: pd.DataFrame) -> str:
    """How many trained days the template library was trained on (labelled in-sample)."""
    count = int(days["library_in_sample"].fillna(False).astype(bool).sum()) \
        if "library_in_sample" in days.columns else 0
    if not count:
        return "none: every trained day is after the template library's training data"
    return (f"{count} IN SAMPLE: the template library was trained on these days "
            "(--allow-library-days); they are left out of the out-of-sample verdict")


def session_zone(symbol: str) -> str:
    """The time zone of ``symbol``'s trading session ("UTC" when the symbol is unknown)."""
    try:
        return get_instrument(symbol).session.timezone
    except ConfigError:
        return "UTC"


def training_summary(result: TrainResult, config: TrainConfig, *,
                     state_level: float = CONFIDENT_LEVEL,
                     tz: str | None = None) -> dict[str, Any]:
    """The summary of a training run (what ``training_log.json`` holds): besides the
    figures, ``learning`` (what the brain learned from, labelled), ``library_days`` (the
    trained days the template library saw, labelled in-sample) and ``library`` (where the
    library's training data ends); ``confident_states`` (posterior probability of a win
    >= ``state_level``, most confident first), ``hour_of_day`` (trades by entry hour in
    ``tz``, default the instrument's session zone, named in ``session_timezone``) and
    ``durations`` (average trade duration)."""
    days, trades = result.days, result.trades
    zone = tz or session_zone(config.symbol)
    return _clean({
        "symbol": config.symbol, "timeframe": config.timeframe,
        "config": config.model_dump(mode="json"), "templates": result.library_source,
        "library": result.span.to_json() if result.span is not None else None,
        "cost_model": result.cost_model,
        "summary": {
            "learning": LEARNING_LABELS[config.learn_from],
            "library_days": library_days_text(days),
            "days": len(days), "trades": int(days["trades"].sum()) if len(days) else 0,
            "pnl": float(days["pnl"].sum()) if len(days) else 0.0,
            "oos_pnl": float(days["oos_pnl"].sum()) if len(days) else 0.0,
            "states_learned": len(result.brain.keys()),
            "first_vs_last": compare_periods(days) if len(days) else {},
            "out_of_sample": oos_distribution(days) if len(days) else {},
        },
        "strongest_states": _records(strongest_states(result.brain, result.learned_trades)),
        "confident_level": float(state_level),
        "confident_states": _records(confident_states(result.brain, result.learned_trades,
                                                      level=state_level)),
        "session_timezone": zone,
        "hour_of_day": _records(hour_of_day(trades, zone)),
        "durations": trade_durations(trades),
        "breakdowns": {k: _records(v) for k, v in breakdowns(trades).items()}
        if len(trades) else {},
        "learning_progression": _records(learning_progression(days)) if len(days) else [],
        "parameter_evolution": _records(parameter_evolution(days)) if len(days) else [],
        "regret": result.regret,
        "days": _records(days),
    })


def finish_training(result: TrainResult, config: TrainConfig, *,
                    state_level: float = CONFIDENT_LEVEL,
                    tz: str | None = None) -> tuple[dict[str, Any], Path]:
    """Write ``training_log.json`` and ``training_report.html``; return the log and the
    report's path (``state_level`` and ``tz``: :func:`training_summary`)."""
    log = training_summary(result, config, state_level=state_level, tz=tz)
    atomic_write_json(result.folder / LOG_FILE, log)
    return log, write_training_report(result.folder)
