"""Helpers shared by the research tests: small synthetic markets and planted-event checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from stratforge.costs import COST_FIELDS, Costs
from stratforge.data.demo import synthesize_into_store, synthetic_spec
from stratforge.data.load import load_bars
from stratforge.search.sweep import read_frame
from stratforge.search.validation import exit_params
from stratforge.sim import simulate

WIDE_SPACE = str(Path(__file__).parent / "data" / "wide_space.yaml")
SMALL = {"mc_iters": 64, "top_combos": 4, "refine_budget": 160, "refine_rounds": 4,
         "refine_min": 10, "folds": 2, "pbo_configs": 16, "checkpoint_every": 4,
         "optimize_templates": 3, "optimize_iterations": 12, "optimize_members": 10}
"""Sizes that keep a pipeline run of a small market to seconds."""


def make_market(home: Path, kind: str, days: int, seed: int) -> None:
    """A synthetic MNQ market at one-minute resolution in ``home``."""
    synthesize_into_store("MNQ", days=days, seed=seed, kind=kind, resolution="1m",
                          replace=True, home=home)


def planted_share(home: Path, run: Path, strategy: dict) -> tuple[float, float, int]:
    """Out-of-sample trades of a playbook strategy: the share entered on the bar of a planted
    shock, the share of those entered against the shock (the planted reversion), and the
    trade count. Recomputed from the bars, the matches file and the planted event list."""
    spec = synthetic_spec("MNQ", home)
    events = pd.DataFrame(spec["planted"]["events"])
    event_ns = pd.to_datetime(events["ts"], utc=True).astype("datetime64[ns, UTC]").array.asi8
    shock = events["direction"].to_numpy()
    train_end = pd.Timestamp(json.loads((run / "summary.json").read_text())["data"]["train_end"])
    tf = strategy["timeframe"]
    bars = load_bars("MNQ", tf, start=train_end, home=home)
    matches = read_frame(run / "matches" / f"{tf}.parquet")
    matches = matches[matches["template_id"] == strategy["template_id"]]
    stamps = bars["ts"].array.asi8
    at = np.searchsorted(stamps, matches["ts"].to_numpy())
    inside = at < len(stamps)
    inside[inside] = stamps[at[inside]] == matches["ts"].to_numpy()[inside]
    costs = Costs(**{k: v for k, v in strategy["execution"]["cost_model"].items()
                     if k in COST_FIELDS})
    trades = simulate(bars, at[inside], matches["side"].to_numpy()[inside],
                      exit_params(strategy["params"]), instrument="MNQ", costs=costs)
    entry_ns = stamps[trades["entry_bar"].to_numpy()]
    last = np.searchsorted(event_ns, entry_ns, side="right") - 1
    on_event = (last >= 0) & (entry_ns - event_ns[np.maximum(last, 0)]
                              < pd.Timedelta(tf).value)
    fade = trades["side"].to_numpy() == -shock[np.maximum(last, 0)]
    share = float(on_event.mean()) if len(trades) else 0.0
    fade_share = float(fade[on_event].mean()) if on_event.any() else 0.0
    return share, fade_share, len(trades)
