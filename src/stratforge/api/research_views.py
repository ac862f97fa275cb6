"""``/research/runs/{run_id}/...``: the pieces of a research run the dashboard draws.

Each route reads the run folder's artifacts (docs/research.md) and answers plain JSON
(``NaN`` and infinities become ``null``): the ANOVA effects, the stop x target heatmap of one
template x timeframe combo, the Thompson allocation over refinement rounds, the validation
tier table, the equity curves, the run's template library and one template's trades replayed
on its bars. A missing artifact answers 404 saying which.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Query
from fastapi import Path as PathParam

from stratforge.api.dashboard_models import (
    CurvesOut,
    PhasesOut,
    PriceFormat,
    RunMarketOut,
    RunTemplatesOut,
    SweepOut,
    TemplateTradesOut,
    TiersOut,
)
from stratforge.api.deps import NAME_PATTERN, DbDep, HomeDep
from stratforge.api.errors import NOT_FOUND
from stratforge.api.files import read_document
from stratforge.api.research import RunId, run_folder
from stratforge.costs import COST_FIELDS, Costs
from stratforge.data.atomic import json_ready
from stratforge.data.load import load_bars
from stratforge.discovery.library import LIBRARY_FILE, TemplateLibrary
from stratforge.errors import DataError
from stratforge.features.vectors import FEATURE_NAMES
from stratforge.instruments import Instrument, get_instrument
from stratforge.ops.operations import NotFoundError
from stratforge.research.config import ResearchConfig
from stratforge.research.outputs import public_market
from stratforge.research.report import tier_table
from stratforge.research.report_charts import HEATMAP_COLUMNS, best_is_pnl, heatmap_grid
from stratforge.research.runs import CONFIG_FILE, PHASES, STATE_FILE
from stratforge.search.validation import exit_params
from stratforge.sim import simulate
from stratforge.sim.params import EXIT_PARAM_NAMES

router = APIRouter(prefix="/research", tags=["research"])
OBJECT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {"schema": {"type": "object"}}},
          "description": "A JSON object read from the run's artifacts."}}
RESPONSES = {**OBJECT, **NOT_FOUND}
MAX_CANDLES = 10_000
"""Bars sent with a template's trades (the span of the trades, newest kept)."""
CANDLE_MARGIN = 20
TemplateId = Annotated[str, PathParam(pattern=NAME_PATTERN, description="A template id.")]
Name = Annotated[str | None, Query(pattern=NAME_PATTERN, description="A name such as T0001 "
                                   "or 5m.")]


def _frame(path: Path, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise NotFoundError(f"{what} is not written yet ({path.name} missing in {path.parent})")
    return read_frame(path, what)


def read_frame(path: Path, what: str) -> pd.DataFrame:
    """The Parquet file at ``path``; a DataError (422) naming the file and what to do when
    it cannot be read (a damaged or foreign file)."""
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several kinds for a damaged file
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise DataError(f"{what} at {path} is not a readable Parquet file ({reason}); "
                        "delete it and rerun the run with --resume to write it again",
                        source=str(path)) from None


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json_ready(frame.astype(object).where(frame.notna(), None).to_dict("records"))


def _config(path: Path) -> dict[str, Any]:
    return read_document(path / CONFIG_FILE, f"research run {path.name}").get("config") or {}


def _market_block(path: Path) -> dict[str, Any]:
    """The market block the run's data phase recorded (``{}`` before that phase)."""
    state = read_document(path / STATE_FILE, f"the state of run {path.name}") \
        if (path / STATE_FILE).is_file() else {}
    return ((state.get("phases") or {}).get("data") or {}).get("market") or {}


def run_symbol(path: Path) -> str:
    """The symbol a run folder researched (its config; the config's default when unset)."""
    default = ResearchConfig.model_fields["symbol"].default
    return str(_config(path).get("symbol") or default).upper()


def price_format(path: Path, home: Path) -> dict[str, Any]:
    """How to write the run's numbers: tick size, decimals and currency as the run recorded
    them, else as its instrument says."""
    block = _market_block(path)
    if all(k in block for k in ("symbol", "currency", "tick_size", "point_value",
                                "price_decimals")):
        return PriceFormat(**{k: block[k] for k in PriceFormat.model_fields}).model_dump()
    return PriceFormat.of(get_instrument(run_symbol(path), home)).model_dump()


def _run_costs(path: Path, instrument: Instrument) -> Costs:
    """The cost model the run charged (its data phase's market block), else the
    instrument's."""
    block = _market_block(path).get("cost_model") or {}
    settings = {k: float(v) for k, v in block.items() if k in COST_FIELDS}
    return Costs(**settings) if settings else instrument.costs


@router.get("/runs/{run_id}/phases", response_model=PhasesOut, responses=NOT_FOUND)
def get_phases(run_id: RunId, db: DbDep, home: HomeDep) -> Any:
    """The phases finished so far (`state.json`, written as each phase ends, so it is
    readable while the run goes): their figures and `seconds` per phase, in order."""
    path = run_folder(db, home, run_id)
    state = read_document(path / STATE_FILE, f"the state of run {path.name}") \
        if (path / STATE_FILE).is_file() else {}
    phases = state.get("phases") or {}
    done = [p for p in PHASES if p in phases]
    return json_ready({"run_id": path.name, "done": done,
                       "seconds": {p: phases[p].get("seconds") if isinstance(phases[p], dict)
                                   else None for p in done},
                       "phases": {p: phases[p] for p in done}})


@router.get("/runs/{run_id}/market", response_model=RunMarketOut, responses=NOT_FOUND)
def get_market(run_id: RunId, db: DbDep, home: HomeDep) -> Any:
    """The run's market: instrument, currency, tick size and price decimals, session, the
    cost model per fill and per round trip (price units and currency), and per timeframe the
    yardstick and the resolved stop/target/trail ranges (ticks and price units). Recorded by
    the data phase; before it, the instrument's facts alone (`source` says which)."""
    path = run_folder(db, home, run_id)
    block = _market_block(path)
    if block:
        shown = public_market(block)
        return json_ready({**shown, "cost_model": shown.get("cost_model") or None,
                           "source": "run"})
    return {**price_format(path, home), "source": "instrument"}


@router.get("/runs/{run_id}/anova", responses=RESPONSES)
def get_anova(run_id: RunId, db: DbDep, home: HomeDep) -> Any:
    """`anova.json`: one-way and multi-factor effects per factor, top combos."""
    path = run_folder(db, home, run_id)
    return json_ready(read_document(path / "anova.json", f"the ANOVA of run {path.name}"))


@router.get("/runs/{run_id}/refinement", responses=RESPONSES)
def get_refinement(run_id: RunId, db: DbDep, home: HomeDep) -> Any:
    """`refine/history.json`: per round, the Thompson allocation of trials to combos and the
    best per-trade Sharpe so far."""
    path = run_folder(db, home, run_id)
    history = read_document(path / "refine" / "history.json",
                            f"the refinement history of run {path.name}")
    return json_ready(history)


def param_rows(path: Path) -> pd.DataFrame:
    """Sweep summaries and refinement trials of a run folder, one frame (404 without a
    sweep)."""
    frames = [_frame(path / "sweep" / "summaries.parquet", f"the sweep of run {path.name}")]
    trials = path / "refine" / "trials.parquet"
    if trials.is_file():
        frames.append(read_frame(trials, f"the refinement trials of run {path.name}"))
    rows = pd.concat([f for f in frames if not f.empty] or frames[:1], ignore_index=True)
    for column in ("template_id", "timeframe"):
        rows[column] = rows[column].astype(str)
    return rows


def price_bin_labels(ticks: np.ndarray, bins: int, tick_size: float, decimals: int
                     ) -> list[str]:
    """The labels of ``bins`` equal-width bins over ``ticks`` (the report's binning,
    ``report_charts.equal_width_bins``) written in price units with ``decimals``."""
    def price(value: float) -> str:
        return f"{value * tick_size:,.{decimals}f}"

    lo, hi = float(np.min(ticks)), float(np.max(ticks))
    if bins <= 1 or lo == hi:
        return [price(lo)]
    edges = np.linspace(lo, hi, bins + 1)
    return [f"{price(edges[i])}–{price(edges[i + 1])}" for i in range(bins)]


def heatmap(rows: pd.DataFrame, tick_size: float | None = None,
            decimals: int = 2) -> dict[str, Any]:
    """The report's stop x target grid of ``rows`` (``report_charts.heatmap_grid``) as JSON:
    labels, ``z[target][stop]`` (null for an empty cell), rows per cell; with
    ``tick_size``, the bins' labels in price units too."""
    grid = heatmap_grid(rows)
    if grid is None:
        return {"stop_labels": [], "target_labels": [], "z": [], "counts": [], "rows": 0,
                "stop_price_labels": [], "target_price_labels": []}
    stop_labels, target_labels, z, counts, used = grid
    out = {"stop_labels": stop_labels, "target_labels": target_labels,
           "z": [[float(v) if np.isfinite(v) else None for v in row] for row in z],
           "counts": counts.tolist(), "rows": used,
           "stop_price_labels": [], "target_price_labels": []}
    if tick_size:
        data = pd.DataFrame({c: pd.to_numeric(rows[c], errors="coerce")
                             for c in HEATMAP_COLUMNS})
        data = data[(data["trades"] > 0) & np.isfinite(data).all(axis=1)]
        out["stop_price_labels"] = price_bin_labels(
            data["stop_ticks"].to_numpy(), len(stop_labels), tick_size, decimals)
        out["target_price_labels"] = price_bin_labels(
            data["target_ticks"].to_numpy(), len(target_labels), tick_size, decimals)
    return out


def default_combo(path: Path, combos: list[dict[str, Any]]) -> tuple[str, str]:
    """The combo a heatmap opens on: the best validated strategy's (the first row of the tier
    table, best tiers first, then by in-sample Sharpe per trade) when it has sweep rows with
    trades, else the combo with the highest mean PnL per trade."""
    validation = path / "validation.parquet"
    swept = {(c["template_id"], c["timeframe"]) for c in combos}
    if validation.is_file():
        frame = pd.read_parquet(validation)
        if {"template_id", "timeframe"} <= set(frame.columns) and not frame.empty:
            for row in tier_table(frame).itertuples(index=False):
                combo = (str(row.template_id), str(row.timeframe))
                if combo in swept:
                    return combo
    return combos[0]["template_id"], combos[0]["timeframe"]


@router.get("/runs/{run_id}/sweep", response_model=SweepOut, responses=NOT_FOUND)
def get_sweep(run_id: RunId, db: DbDep, home: HomeDep, template_id: Name = None,
              timeframe: Name = None) -> Any:
    """The combos of the sweep (rows, best PnL per trade) and the stop x target heatmap of
    one (default: the best validated strategy's combo, else the one with the highest mean PnL
    per trade)."""
    path = run_folder(db, home, run_id)
    rows = param_rows(path)
    market = price_format(path, home)
    traded = rows[pd.to_numeric(rows["trades"], errors="coerce") > 0]
    stats = traded.groupby(["template_id", "timeframe"], sort=True)["pnl_per_trade"].agg(
        ["count", "mean", "max"])
    combos = [{"template_id": t, "timeframe": tf, "rows": int(r["count"]),
               "mean_pnl_per_trade": r["mean"], "best_pnl_per_trade": r["max"]}
              for (t, tf), r in stats.sort_values("mean", ascending=False,
                                                  kind="stable").iterrows()]
    if template_id is None and timeframe is None and combos:
        template_id, timeframe = default_combo(path, combos)
    chosen = rows[(rows["template_id"] == template_id) & (rows["timeframe"] == timeframe)]
    if (template_id is not None or timeframe is not None) and chosen.empty:
        raise NotFoundError(f"no sweep rows for template {template_id} at {timeframe}")
    grid = heatmap(chosen, market["tick_size"], market["price_decimals"])
    return json_ready({"total_rows": len(rows), "combos": combos, "market": market,
                       "heatmap": {"template_id": template_id, "timeframe": timeframe,
                                   **grid}})


@router.get("/runs/{run_id}/tiers", response_model=TiersOut, responses=NOT_FOUND)
def get_tiers(run_id: RunId, db: DbDep, home: HomeDep) -> Any:
    """Every validated strategy (`validation.parquet`), best tiers first, then by in-sample
    per-trade Sharpe; `params` and the walk-forward fold lists parsed; the run's overfitting
    block beside them."""
    path = run_folder(db, home, run_id)
    frame = tier_table(_frame(path / "validation.parquet", f"the validation of run {path.name}"))
    rows = _records(frame)
    for row in rows:
        for key in ("params", "wf_fold_pnl", "wf_fold_params", "wf_fold_efficiency"):
            if isinstance(row.get(key), str):
                row[key] = json.loads(row[key])
    overfitting = path / "overfitting.json"
    return {"strategies": rows, "count": len(rows), "market": price_format(path, home),
            "overfitting": read_document(overfitting, f"the overfitting block of run "
                                                      f"{path.name}")
            if overfitting.exists() else None}


@router.get("/runs/{run_id}/curves", response_model=CurvesOut, responses=NOT_FOUND)
def get_curves(run_id: RunId, db: DbDep, home: HomeDep) -> Any:
    """The equity curves of the best strategies (`curves.parquet`): per strategy, its trades
    in order with their exit time, PnL, cumulative PnL and segment (in or out of sample)."""
    path = run_folder(db, home, run_id)
    curves = _frame(path / "curves.parquet", f"the equity curves of run {path.name}")
    strategies = []
    for sid, group in curves.groupby(curves["strategy_id"].astype(str), sort=False):
        pnl = group["pnl"].astype("float64").fillna(0.0)
        times = pd.to_datetime(group["exit_time"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        strategies.append({"strategy_id": sid, "exit_time": times.tolist(),
                           "pnl": pnl.tolist(), "equity": pnl.cumsum().tolist(),
                           "segment": group["segment"].astype(str).tolist()})
    train_end = (read_document(path / STATE_FILE, f"the state of run {path.name}")
                 .get("phases", {}).get("data", {}).get("train_end"))
    return json_ready({"train_end": train_end, "strategies": strategies,
                       "market": price_format(path, home)})


def _library(path: Path) -> TemplateLibrary:
    folder = path / "library"
    if not (folder / LIBRARY_FILE).is_file():
        raise NotFoundError(f"the template library of run {path.name} is not written yet")
    return TemplateLibrary.load(folder)


def _best_params(path: Path, template_id: str, timeframe: str
                 ) -> tuple[dict[str, float] | None, str]:
    """The validated parameters of the pair, else the sweep row with the best PnL per trade."""
    validation = path / "validation.parquet"
    if validation.is_file():
        frame = read_frame(validation, f"the validation of run {path.name}")
        hit = frame[(frame["template_id"].astype(str) == template_id)
                    & (frame["timeframe"].astype(str) == timeframe)]
        if not hit.empty:
            return json.loads(hit.iloc[0]["params"]), "validated"
    if not (path / "sweep" / "summaries.parquet").is_file():
        return None, "none"
    rows = param_rows(path)
    rows = rows[(rows["template_id"] == template_id) & (rows["timeframe"] == timeframe)
                & (rows["trades"] > 0)]
    if rows.empty:
        return None, "none"
    best = rows.sort_values(["pnl_per_trade", "set_id"], ascending=[False, True],
                            kind="stable").iloc[0]
    names = [c for c in EXIT_PARAM_NAMES if c in rows.columns]
    return {c: float(best[c]) for c in names}, "best sweep row"


@router.get("/runs/{run_id}/templates", response_model=RunTemplatesOut, responses=NOT_FOUND)
def get_templates(run_id: RunId, db: DbDep, home: HomeDep) -> Any:
    """The run's templates: centroid |z| and |momentum strength|, members, oracle statistics,
    the best in-sample PnL of the template in the validation table (`null` if none)."""
    path = run_folder(db, home, run_id)
    library = _library(path)
    validation = path / "validation.parquet"
    best = best_is_pnl(read_frame(validation, f"the validation of run {path.name}")
                       if validation.is_file() else None)
    ix, iy = FEATURE_NAMES.index("abs_z"), FEATURE_NAMES.index("abs_momentum_strength")
    templates = [{"template_id": t.template_id, "timeframes": t.timeframes,
                  "abs_z": t.centroid_raw[ix], "abs_momentum_strength": t.centroid_raw[iy],
                  "members": t.members, "direction": t.direction,
                  "oracle_win_rate": t.oracle_win_rate,
                  "mae_median": t.mae_percentiles[1], "mfe_median": t.mfe_percentiles[1],
                  "best_is_pnl": best.get(t.template_id)} for t in library]
    return json_ready({"run_id": path.name, "count": len(templates), "templates": templates,
                       "market": price_format(path, home)})


def _candles(bars: pd.DataFrame, trades: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The bars around the trades (at most ``MAX_CANDLES``, newest kept) and the trades that
    fall inside them."""
    if trades.empty:
        return bars.iloc[-MAX_CANDLES:], trades
    lo = max(0, int(trades["entry_bar"].min()) - CANDLE_MARGIN)
    hi = min(len(bars), int(trades["exit_bar"].max()) + CANDLE_MARGIN + 1)
    lo = max(lo, hi - MAX_CANDLES)
    return bars.iloc[lo:hi], trades[trades["entry_bar"] >= lo]


@router.get("/runs/{run_id}/templates/{template_id}", response_model=TemplateTradesOut,
            responses=NOT_FOUND)
def get_template(run_id: RunId, template_id: TemplateId, db: DbDep, home: HomeDep,
                 timeframe: Name = None) -> Any:
    """One template: statistics, member ids, and its matches replayed on the bars of
    ``timeframe`` (default: its first) with the validated parameters (else the best sweep
    row): the trades and the candles they sit on."""
    path = run_folder(db, home, run_id)
    try:
        template = _library(path).get(template_id)
    except KeyError as exc:
        raise NotFoundError(str(exc.args[0])) from None
    config = _config(path)
    timeframes = [str(tf) for tf in config.get("timeframes") or template.timeframes]
    timeframe = timeframe or (timeframes[0] if timeframes else None)
    matches_path = path / "matches" / f"{timeframe}.parquet"
    detail = json_ready(asdict(template))
    out: dict[str, Any] = {"template": detail, "timeframe": timeframe, "timeframes": timeframes,
                           "params": None, "params_source": "none", "trades": [],
                           "candles": {"ts": [], "open": [], "high": [], "low": [],
                                       "close": []}, "matches": 0,
                           "market": price_format(path, home)}
    if not matches_path.is_file():
        return out
    matches = read_frame(matches_path, f"the matches of run {path.name}")
    matches = matches[matches["template_id"].astype(str) == template_id]
    out["matches"] = len(matches)
    params, source = _best_params(path, template_id, str(timeframe))
    out.update(params=params, params_source=source)
    symbol = str(config.get("symbol") or "MNQ")
    bars = load_bars(symbol, str(timeframe), home=home)
    stamps = bars["ts"].array.asi8
    at = np.searchsorted(stamps, matches["ts"].to_numpy(np.int64))
    inside = at < len(stamps)
    inside[inside] = stamps[at[inside]] == matches["ts"].to_numpy(np.int64)[inside]
    trades = pd.DataFrame(columns=["entry_bar", "exit_bar"])
    if params is not None and inside.any():
        instrument = get_instrument(symbol, home)
        trades = simulate(bars, at[inside], matches["side"].to_numpy()[inside],
                          exit_params(params), instrument=instrument,
                          costs=_run_costs(path, instrument),
                          fill=str(config.get("fill", "close")))
    shown, trades = _candles(bars, trades)
    out["candles"] = {"ts": shown["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ").tolist(),
                      **{c: shown[c].tolist() for c in ("open", "high", "low", "close")}}
    keep = [c for c in ("entry_time", "exit_time", "side", "entry_price", "exit_price",
                        "reason", "bars_held", "pnl") if c in trades.columns]
    table = trades[keep].copy()
    for column in ("entry_time", "exit_time"):
        if column in table:
            table[column] = pd.to_datetime(table[column], utc=True).dt.strftime(
                "%Y-%m-%dT%H:%M:%SZ")
    out["trades"] = _records(table)
    return json_ready(out)

