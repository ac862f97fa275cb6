"""``train``: walk the trading days in order, learning as it goes, with a checkpoint per day.

Each day (docs/trainer.md): the day's template matches are gated by the brain; yesterday's
parameters trade the day first (the out-of-sample figure, decided before the day is seen);
then K design-of-experiments iterations are simulated on the day and the best one (Sharpe
with at least ``min_trades`` trades, else PnL) is the day's in-sample result. The brain learns
from the trades of the parameters chosen before the day (``learn_from="champion"``, the
honest stream), or with ``learn_from="best"`` from the day's best iteration (in sample: it
was picked on the day it is scored on). The end-of-day regret report biases the next day's
parameter space. Days the template library was trained on are not traded unless
``allow_library_days`` (then they are labelled in-sample; ``trainer.library_span``). After every day
the brain, the regret bias, the chosen parameters, the day table and the trades are written
atomically, so ``resume`` continues after the last finished day with identical results
(every random draw of a day comes from ``(seed, day)`` alone).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stratforge.config import resolve_home
from stratforge.data.atlas import build_atlas
from stratforge.data.atomic import atomic_write_bytes, atomic_write_json, read_json
from stratforge.data.demo import ensure_symbol_data
from stratforge.data.load import default_timeframes, load_bars, store_timeframes
from stratforge.data.store import AtlasStore
from stratforge.discovery.patterns import ORACLE_LOOKAHEAD
from stratforge.errors import ConfigError, DataError
from stratforge.instruments import get_instrument
from stratforge.progress import ProgressCallback, no_progress
from stratforge.search.brain import BayesianBrain
from stratforge.sim.backtest import sweep
from stratforge.sim.explain import cost_model_facts
from stratforge.sim.params import Costs
from stratforge.timeframes import parse_timeframe
from stratforge.trainer.config import TrainConfig
from stratforge.trainer.day import day_space, day_yardstick, gate_entries, run_day
from stratforge.trainer.library_span import LibrarySpan, first_trade_day, in_library_span
from stratforge.trainer.market import TrainingMarket, load_market
from stratforge.trainer.regret import (
    RegretBias,
    day_regret,
    higher_timeframes,
    next_bias,
    trade_regret,
)

STATE_FILE = "state.json"
CONFIG_FILE = "config.json"
BRAIN_FILE = "brain.parquet"
DAYS_FILE = "days.parquet"
TRADES_FILE = "trades.parquet"
OOS_TRADES_FILE = "oos_trades.parquet"
REGRET_FILE = "regret.json"
FIRED_FILE = "fired.parquet"
LIBRARY_FILE = "library_span.json"
VOLATILITY_DAYS = 5
"""Trade days before the traded one whose bars measure its yardstick."""
CHAMPION_DAYS = 5


def with_timeframe(config: TrainConfig, home: Path | str | None) -> TrainConfig:
    """``config`` with its timeframe chosen when not given: the finest of the store's default
    timeframes (``data.load.default_timeframes``: 1m for 1s or 1m bars, 1h for hourly FX).
    The trainer walks trade days bar by bar, so daily bars are refused with a clear error."""
    if config.timeframe is not None:
        return config
    chosen = default_timeframes(config.symbol, home)
    counts = store_timeframes(config.symbol, home)
    if not chosen:
        raise DataError(f"{config.symbol}: too few bars to train on (the store holds "
                        f"{', '.join(counts) or 'nothing'}); ingest more data")
    if parse_timeframe(chosen[0]).seconds >= 86_400:
        raise DataError(f"{config.symbol}: the day-by-day trainer needs intraday bars, but the "
                        f"finest timeframe the store holds is {chosen[0]}; research daily "
                        "bars with `stratforge run` instead")
    return config.model_copy(update={"timeframe": chosen[0]})


def training_folder(config: TrainConfig, home: Path | str | None = None) -> Path:
    """``<home>/training/<SYMBOL>-<timeframe>/``."""
    return resolve_home(home) / "training" / f"{config.symbol}-{config.timeframe}"


@dataclass
class TrainState:
    """What a checkpoint holds besides the tables: the next day, bias and parameters."""

    next_day: int
    bias: RegretBias = field(default_factory=RegretBias)
    previous: dict[str, float] | None = None


def _identity(config: TrainConfig, costs: Costs | None = None) -> dict[str, Any]:
    """The settings a resumed run must share: the config and the resolved cost model (an
    edited ``instruments.yaml`` changes what the run charges)."""
    identity = config.model_dump(mode="json", exclude={"max_days"})
    if costs is not None:
        identity["cost_model"] = costs.to_dict()
    return identity


def _frame_bytes(frame: pd.DataFrame) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def _read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.exists() else pd.DataFrame()


@dataclass
class Checkpoint:
    """The training folder's tables and state, read back or new."""

    folder: Path
    state: TrainState
    brain: BayesianBrain
    days: pd.DataFrame
    trades: pd.DataFrame
    regret: list[dict[str, Any]]
    fired: pd.DataFrame = field(default_factory=pd.DataFrame)
    oos_trades: pd.DataFrame = field(default_factory=pd.DataFrame)

    def save(self) -> None:
        """Write tables first, the state last (all atomic): a crash in between leaves a state
        that points before the extra rows, which ``open_checkpoint`` trims."""
        atomic_write_bytes(self.folder / DAYS_FILE, _frame_bytes(self.days))
        atomic_write_bytes(self.folder / TRADES_FILE, _frame_bytes(self.trades))
        atomic_write_bytes(self.folder / OOS_TRADES_FILE, _frame_bytes(self.oos_trades))
        atomic_write_bytes(self.folder / FIRED_FILE, _frame_bytes(self.fired))
        self.brain.save(self.folder / BRAIN_FILE)
        atomic_write_json(self.folder / REGRET_FILE, self.regret)
        atomic_write_json(self.folder / STATE_FILE, {
            "next_day": self.state.next_day, "bias": self.state.bias.to_json(),
            "previous": self.state.previous, "brain_sha": _brain_counts(self.brain)})


def _brain_counts(brain: BayesianBrain) -> int:
    names = brain.keys()
    return int(sum(brain.n(k) for k in names))


def open_checkpoint(config: TrainConfig, home: Path | str | None, *, resume: bool,
                    fresh: bool, folder: Path | None = None,
                    costs: Costs | None = None) -> Checkpoint:
    """The training folder for ``config`` (``folder`` overrides ``training_folder``): new, or
    (``resume``) the saved one; an existing run without ``resume`` or ``fresh`` is an error,
    so nothing is overwritten by mistake. ``costs`` (the run's resolved cost model) is part
    of what a resumed run must share."""
    folder = Path(folder) if folder is not None else training_folder(config, home)
    if fresh:
        shutil.rmtree(folder, ignore_errors=True)
    state_path = folder / STATE_FILE
    if state_path.exists() and not resume:
        raise ConfigError(f"a training run of {config.symbol} {config.timeframe} exists in "
                          f"{folder}; pass --resume to continue it or --fresh to start over")
    if not state_path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(folder / CONFIG_FILE, _identity(config, costs))
        return Checkpoint(folder, TrainState(0), BayesianBrain(), pd.DataFrame(),
                          pd.DataFrame(), [])
    stored = read_json(folder / CONFIG_FILE)
    identity = _identity(config, costs)
    if stored != identity:
        changed = sorted(k for k in set(stored) | set(identity)
                         if stored.get(k) != identity.get(k))
        raise ConfigError(f"the training run in {folder} used other settings ({', '.join(changed)}"
                          "); resume with the same settings or pass --fresh")
    raw = read_json(state_path)
    state = TrainState(raw["next_day"], RegretBias.from_json(raw["bias"]), raw["previous"])
    days = _read(folder / DAYS_FILE)
    trades = _read(folder / TRADES_FILE)
    if len(days):
        days = days[days["day_index"] < state.next_day].reset_index(drop=True)
    if len(trades):
        trades = trades[trades["day_index"] < state.next_day].reset_index(drop=True)
    fired = _read(folder / FIRED_FILE)
    if len(fired):
        fired = fired[fired["day_index"] < state.next_day].reset_index(drop=True)
    oos_trades = _read(folder / OOS_TRADES_FILE)
    if len(oos_trades):
        oos_trades = oos_trades[oos_trades["day_index"] < state.next_day].reset_index(drop=True)
    regret = [r for r in read_json(folder / REGRET_FILE) if r["day_index"] < state.next_day] \
        if (folder / REGRET_FILE).exists() else []
    brain = BayesianBrain.load(folder / BRAIN_FILE)
    if _brain_counts(brain) != raw["brain_sha"]:
        raise ConfigError(f"the brain in {folder} does not match its state file; pass --fresh")
    return Checkpoint(folder, state, brain, days, trades, regret, fired, oos_trades)


def learned_trades_file(folder: Path) -> Path:
    """The table of the trades the brain of the training run in ``folder`` learned from:
    ``oos_trades.parquet`` (``learn_from`` "champion") or ``trades.parquet`` ("best"; runs
    from before the setting existed learned from the best iteration)."""
    config = read_json(folder / CONFIG_FILE) if (folder / CONFIG_FILE).is_file() else {}
    return folder / (OOS_TRADES_FILE if config.get("learn_from") == "champion"
                     else TRADES_FILE)


def champion(market: TrainingMarket, checkpoint: Checkpoint, day: int, config: TrainConfig
             ) -> dict[str, float] | None:
    """The parameters to trade ``day`` with, chosen before seeing it: among the sets chosen
    on the last ``CHAMPION_DAYS`` days, the one with the highest total PnL over those days'
    fired entries (ties go to the most recent). None before the first chosen set."""
    days = checkpoint.days
    if not len(days):
        return None
    recent = days[days["day_index"] >= day - CHAMPION_DAYS]
    recent = recent[recent["params"] != "{}"]
    if not len(recent):
        return checkpoint.state.previous
    sets = list(dict.fromkeys(reversed(recent["params"].tolist())))  # newest first, unique
    table = pd.DataFrame([json.loads(p) for p in sets])
    first = int(recent["day_index"].min())
    lo, hi = int(market.day_start[first]), int(market.day_start[day])
    fired = checkpoint.fired
    fired = fired[(fired["day_index"] >= first) & (fired["day_index"] < day)] if len(fired) \
        else fired
    if not len(fired) or len(table) == 1:
        return {k: float(v) for k, v in table.iloc[0].items()}
    costs = config.costs_for(market.instrument)
    summary = sweep(market.bars.iloc[lo:hi].reset_index(drop=True),
                    fired["position"].to_numpy(np.int64) - lo, fired["side"].to_numpy(np.int64),
                    table, instrument=market.instrument, costs=costs)
    best = int(np.argmax(summary["total_pnl"].to_numpy()))  # first max = the newest
    return {k: float(v) for k, v in table.iloc[best].items()}


def _same_library(folder: Path, span: LibrarySpan) -> None:
    """Record the run's template library (its source and training end) on the first call;
    later calls (a resume) refuse another library, which would change the days traded."""
    path = folder / LIBRARY_FILE
    if not path.exists() or not (folder / STATE_FILE).exists():  # no day trained yet
        atomic_write_json(path, span.to_json())
        return
    stored = read_json(path)
    if stored != span.to_json():
        raise ConfigError(f"the training run in {folder} used the template library from "
                          f"{stored.get('source')} (trained up to {stored.get('end')}), but "
                          f"the newest is from {span.source} (trained up to "
                          f"{span.end_text}); pass --fresh to train with it")


def start_text(market: TrainingMarket, first_day: int, in_sample: np.ndarray,
               config: TrainConfig, last: int | None = None) -> str:
    """Lines for the terminal: the banner ("Training on N days ...", when ``last``, the end
    of the days to train, is given); the first trained day with the library's training end,
    labelled when library days are traded; and what the brain learns from."""
    span = market.span
    banner = ""
    if last is not None and last > first_day:
        banner = (f"Training on {last - first_day} day(s) of {config.symbol} "
                  f"{config.timeframe} bars, {market.days[first_day]} to "
                  f"{market.days[last - 1]}, {config.iterations} parameter sets per day\n")
    labelled = int(in_sample[first_day:].sum())
    where = (f"training starts on {market.days[first_day]}; {span.describe()}")
    if labelled:
        where += (f"; {labelled} day(s) from {market.days[first_day]} are IN SAMPLE for the "
                  "templates (--allow-library-days) and labelled so")
    learning = ("the brain learns from the out-of-sample trades (parameters chosen before "
                "each day)" if config.learn_from == "champion" else
                "the brain learns from each day's best iteration: IN SAMPLE (--learn-from "
                "best), optimistic")
    return f"{banner}{where}\n{learning}"


def _higher_bars(config: TrainConfig, home: Path | str | None) -> dict[str, pd.DataFrame]:
    available = [str(tf) for tf in AtlasStore.open(config.symbol, home).timeframes()]
    names = higher_timeframes(config.timeframe, available)
    out = {}
    for name in names:
        bars = load_bars(config.symbol, name, home=home)
        if len(bars):
            out[name] = bars
    return out


def _trade_rows(result_trades: pd.DataFrame, gate_rows: pd.DataFrame, states: list[str],
                entries: np.ndarray, config: TrainConfig, day: str, day_index: int,
                lo: int) -> pd.DataFrame:
    """The day's trades with their day, state, template, zone and z (entry bars are made
    absolute positions in the timeframe's bars)."""
    trades = result_trades.copy()
    # each trade was entered on one fired signal; find it by its signal bar
    signal = np.searchsorted(entries, trades["entry_bar"].to_numpy(), side="right") - 1
    signal = np.clip(signal, 0, max(len(entries) - 1, 0))
    trades["entry_bar"] = trades["entry_bar"] + lo
    trades["exit_bar"] = trades["exit_bar"] + lo
    trades["day"] = pd.array([day] * len(trades), dtype="str")
    trades["day_index"] = np.full(len(trades), day_index, dtype=np.int64)
    pick = gate_rows.iloc[signal] if len(trades) else gate_rows.iloc[0:0]
    trades["state"] = pd.array([states[i] for i in signal] if len(trades) else [], dtype="str")
    trades["template_id"] = pick["template_id"].astype("str").to_numpy()
    trades["timeframe"] = pd.array([config.timeframe] * len(trades), dtype="str")
    trades["zone"] = pick["zone"].astype("str").to_numpy()
    trades["z"] = pick["z"].to_numpy(np.float64)
    return trades


def _day_row(index: int, day: str, gate, result, checkpoint: Checkpoint, report,
             bias: RegretBias, seconds: float, *, champion_params: dict[str, float] | None,
             learned: int, library_in_sample: bool) -> dict[str, Any]:
    trades = result.trades
    pnl = trades["pnl"].to_numpy(np.float64)
    wins = pnl > 0
    brain = checkpoint.brain
    names = brain.keys()
    confident = sum(1 for k in names if brain.n(k) >= 10 and brain.confidence(k) >= 0.6)
    bars = trades["bars_held"].to_numpy(np.float64)
    return {
        "day_index": index, "day": day, "candidates": gate.candidates,
        "fired": len(gate.entries), "trades": len(trades), "wins": int(wins.sum()),
        "win_rate": float(wins.mean()) if len(pnl) else math.nan,
        "pnl": float(pnl.sum()),
        "sharpe": float(pnl.mean() / pnl.std(ddof=1)) if len(pnl) > 1 and pnl.std(ddof=1) > 0
        else math.nan,
        "oos_trades": len(result.oos_trades),
        "oos_pnl": float(result.oos_trades["pnl"].sum()),
        "states_learned": len(brain.keys()), "high_confidence": confident,
        "avg_win_bars": float(bars[wins].mean()) if wins.any() else math.nan,
        "avg_loss_bars": float(bars[~wins].mean()) if (~wins).any() else math.nan,
        "mean_efficiency": _finite(report.mean_efficiency),
        "share_early": _finite(report.share_early), "share_late": _finite(report.share_late),
        "target_scale": bias.target_scale, "trail_scale": bias.trail_scale,
        "params": json.dumps(result.params, sort_keys=True),
        "oos_params": json.dumps(champion_params or {}, sort_keys=True),
        "learned_trades": int(learned), "library_in_sample": bool(library_in_sample),
        "seconds": round(seconds, 4),
    }


def _finite(value: Any) -> float:
    return float(value) if value is not None and math.isfinite(float(value)) else math.nan


@dataclass
class TrainResult:
    """A finished (or stopped) training run: its folder, tables and brain."""

    folder: Path
    days: pd.DataFrame
    trades: pd.DataFrame
    brain: BayesianBrain
    regret: list[dict[str, Any]]
    library_source: str
    resumed_days: int = 0
    cost_model: dict[str, Any] = field(default_factory=dict)
    oos_trades: pd.DataFrame = field(default_factory=pd.DataFrame)
    span: LibrarySpan | None = None
    first_day: int = 0
    learn_from: str = "champion"

    @property
    def learned_trades(self) -> pd.DataFrame:
        """The trades the brain learned from: the out-of-sample ones (``learn_from``
        ``"champion"``) or the day's best iteration's (``"best"``)."""
        return self.oos_trades if self.learn_from == "champion" else self.trades


DayCallback = Callable[[dict[str, Any], dict[str, Any]], None]


def train(config: TrainConfig, *, home: Path | str | None = None, resume: bool = False,
          fresh: bool = False, progress: ProgressCallback = no_progress,
          on_day: DayCallback | None = None, folder: Path | None = None,
          on_start: Callable[[str], None] | None = None,
          on_trades: Callable[[pd.DataFrame], None] | None = None) -> TrainResult:
    """Train day by day (see the module docstring); returns the run's tables.

    ``folder`` replaces the default training folder (operations train into their own).
    With no data at all for the demo symbol (MNQ) the demo market is built first, and the
    ATLAS is brought up to date. ``progress("train", days_done, days_total, message)`` is
    called after every day (the event the dashboard and operations follow);
    ``on_day(row, regret_report)`` too; ``on_start(text)`` once, before the first day, with
    the first trained day and why (the library's training end), and what the brain learns
    from; ``on_trades(trades)`` after every day with the day's trades (those the day's row
    counts), after ``on_day``.

    Days the template library was trained on (``trainer.library_span``) are not traded:
    training starts after them (or on ``config.start``, which may not fall inside them)
    unless ``config.allow_library_days``, which trades them with ``library_in_sample`` set in
    their day rows. With ``config.learn_from`` "champion" (default) the brain learns from the
    day's out-of-sample trades (the parameters chosen before the day); with "best" from the
    day's best iteration (in sample).

    Every simulated trade pays the instrument's cost model with the config's overrides
    (``TrainConfig.costs_for``; part of what a resumed run must share). Each day's design
    space is in volatility units: its scale is the yardstick (median true range in ticks)
    of the ``VOLATILITY_DAYS`` trade days before it (``day_yardstick``), so the first trade
    day of the data is never traded.
    """
    ensure_symbol_data(config.symbol, home, progress)
    config = with_timeframe(config, home)
    costs = config.costs_for(get_instrument(config.symbol, home))
    checkpoint = open_checkpoint(config, home, resume=resume, fresh=fresh, folder=folder,
                                 costs=costs)
    build_atlas(config.symbol, home=home)  # incremental: nothing to do when it is current
    market = load_market(config, home)
    _same_library(checkpoint.folder, market.span)
    higher = _higher_bars(config, home)
    # day 0 has no earlier bars to measure its yardstick on: it is never traded
    default_first = max(market.first_day, 1)
    if len(market.days) <= default_first:
        raise DataError(f"{config.symbol} has {len(market.days)} trade day(s) of "
                        f"{config.timeframe} bars: the trainer needs one day before the first "
                        "traded day to measure volatility on; ingest more data")
    first_ns = market.bars["ts"].array.asi8[market.day_start[:-1]]
    first_day = first_trade_day(market.days, first_ns, default_first=default_first,
                                start=config.start, span=market.span,
                                allow_library_days=config.allow_library_days)
    in_sample = in_library_span(first_ns, market.span)
    last = len(market.days) if config.max_days is None else \
        min(len(market.days), first_day + config.max_days)
    if on_start is not None:
        on_start(start_text(market, first_day, in_sample, config, last))
    start = max(checkpoint.state.next_day, first_day)
    resumed = len(checkpoint.days)
    positions = market.matches["position"].to_numpy()
    hold = ORACLE_LOOKAHEAD.get(config.timeframe, 30)
    total = last - first_day
    tick = float(market.instrument.tick_size)
    for index in range(start, last):
        started = time.perf_counter()
        lo, hi = int(market.day_start[index]), int(market.day_start[index + 1])
        rng = np.random.default_rng([config.seed, index])
        rows = market.matches.iloc[np.searchsorted(positions, lo):np.searchsorted(positions, hi)]
        gate = gate_entries(rows, checkpoint.brain, config, rng, lo)
        bars = market.bars.iloc[lo:hi].reset_index(drop=True)
        bias = checkpoint.state.bias
        yardstick = day_yardstick(market.bars, market.day_start, index, tick, VOLATILITY_DAYS)
        space = day_space(yardstick, hold, bias.target_scale, bias.trail_scale)
        chosen_before = champion(market, checkpoint, index, config)
        result = run_day(bars, gate, space, config, instrument=market.instrument,
                         day_index=index, previous=chosen_before, yardstick_ticks=yardstick)
        trades = _trade_rows(result.trades, gate.rows, gate.states, gate.entries, config,
                             market.days[index], index, lo)
        oos_trades = _trade_rows(result.oos_trades, gate.rows, gate.states, gate.entries,
                                 config, market.days[index], index, lo)
        learned = oos_trades if config.learn_from == "champion" else trades
        if len(learned):
            checkpoint.brain.batch_update(learned["state"].tolist(),
                                          (learned["pnl"].to_numpy() > 0).tolist())
        regret = trade_regret(result.trades, higher, after_bars=config.regret_after_bars)
        report = day_regret(regret, day_bars=bars)
        new_bias = next_bias(bias, report)
        row = _day_row(index, market.days[index], gate, result, checkpoint, report, bias,
                       time.perf_counter() - started, champion_params=chosen_before,
                       learned=len(learned), library_in_sample=bool(in_sample[index]))
        record = {"day_index": index, "day": market.days[index], **report.to_json(),
                  "bias_after": new_bias.to_json()}
        checkpoint.days = pd.concat([checkpoint.days, pd.DataFrame([row])], ignore_index=True)
        if len(trades):
            checkpoint.trades = pd.concat([checkpoint.trades, trades], ignore_index=True) \
                if len(checkpoint.trades) else trades
        if len(oos_trades):
            checkpoint.oos_trades = pd.concat([checkpoint.oos_trades, oos_trades],
                                              ignore_index=True) \
                if len(checkpoint.oos_trades) else oos_trades
        checkpoint.regret.append(record)
        fired = pd.DataFrame({"day_index": np.full(len(gate.entries), index, np.int64),
                              "position": gate.entries + lo, "side": gate.sides,
                              "state": pd.array(gate.states, dtype="str")})
        checkpoint.fired = pd.concat([checkpoint.fired, fired], ignore_index=True) \
            if len(checkpoint.fired) else fired
        checkpoint.state = TrainState(index + 1, new_bias,
                                      result.params or checkpoint.state.previous)
        checkpoint.save()
        progress("train", index + 1 - first_day, total,
                 f"{market.days[index]}: {row['trades']} trades, PnL {row['pnl']:,.2f} "
                 f"{market.instrument.currency}")
        if on_day is not None:
            on_day(row, record)
        if on_trades is not None:
            on_trades(trades)
    price = float(np.median(market.bars["close"].to_numpy(np.float64)))
    return TrainResult(checkpoint.folder, checkpoint.days, checkpoint.trades,
                       checkpoint.brain, checkpoint.regret, market.library_source, resumed,
                       cost_model_facts(costs, market.instrument, price),
                       checkpoint.oos_trades, market.span, first_day, config.learn_from)
