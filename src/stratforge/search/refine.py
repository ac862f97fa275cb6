"""Thompson-sampling refinement: more budget for the promising (template, timeframe) combos.

The top combos share an iteration budget spread over rounds. Each round draws one sample
from every combo's Beta posterior in the brain (the keys the sweep used,
:func:`~stratforge.search.brain.brain_key`), gives every combo ``min_per_combo`` parameter
sets plus a share of the rest of the round's budget in proportion to its draw
(:func:`allocate`), proposes that many sets around the combo's best so far (Gaussian
mutation, or Optuna's TPE), simulates them with the same job function as the sweep, and
adds their outcomes to the brain. After every round the trials, the brain and the round
history are checkpointed atomically; a resumed refinement continues at the next round and
ends identical to an uninterrupted one, because every round's random draws come from
``(seed, round)`` alone. Rules: docs/research.md ("Thompson refinement").
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stratforge.data.atomic import atomic_write_json, read_json
from stratforge.errors import ConfigError
from stratforge.parallel import Executor
from stratforge.progress import ProgressCallback, no_progress
from stratforge.search.brain import BayesianBrain, brain_key
from stratforge.search.samplers import mutate, tpe_proposer
from stratforge.search.space import ParameterSpace
from stratforge.search.sweep import (
    BRAIN_FILE,
    PairJob,
    evaluate_pair,
    read_frame,
    update_brain,
    write_frame,
)

PROPOSERS: tuple[str, ...] = ("mutation", "tpe")
TRIALS_FILE = "trials.parquet"
HISTORY_FILE = "history.json"
STATE_FILE = "state.json"
REFINE_VERSION = "1"

Combo = tuple[str, str]
"""(template_id, timeframe)."""


@dataclass(frozen=True)
class RefineSettings:
    """Budget and proposal settings of a refinement (defaults from the issue)."""

    budget: int = 20_000
    rounds: int = 50
    min_per_combo: int = 10
    scale: float = 0.1
    proposer: str = "mutation"
    min_trades: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if self.proposer not in PROPOSERS:
            raise ConfigError(f"proposer must be one of {', '.join(PROPOSERS)}, got "
                              f"{self.proposer!r}")
        for name in ("budget", "rounds", "min_per_combo", "min_trades"):
            if int(getattr(self, name)) < (0 if name in ("budget", "min_trades") else 1):
                raise ConfigError(f"refinement {name} must be a positive integer, got "
                                  f"{getattr(self, name)}")
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise ConfigError(f"mutation scale must be > 0, got {self.scale}")


def round_budgets(budget: int, rounds: int) -> list[int]:
    """Split ``budget`` over ``rounds`` as evenly as possible (earlier rounds get the
    remainder); the parts sum to ``budget``."""
    base, extra = divmod(int(budget), int(rounds))
    return [base + (1 if r < extra else 0) for r in range(int(rounds))]


def allocate(draws: np.ndarray, total: int, minimum: int) -> np.ndarray:
    """Parameter sets per combo for one round.

    Every combo gets ``minimum``; what is left of ``total`` is split in proportion to the
    Thompson ``draws`` by the largest-remainder method (ties go to the earlier combo), so the
    result sums to ``max(total, minimum * len(draws))``.
    """
    draws = np.asarray(draws, dtype=np.float64)
    if draws.ndim != 1 or not len(draws):
        raise ConfigError("allocate needs one draw per combo")
    if not np.isfinite(draws).all() or (draws < 0).any():
        raise ConfigError("Thompson draws must be finite and >= 0")
    counts = np.full(len(draws), int(minimum), dtype=np.int64)
    rest = int(total) - int(counts.sum())
    if rest <= 0:
        return counts
    weights = draws / draws.sum() if draws.sum() > 0 else np.full(len(draws), 1 / len(draws))
    exact = weights * rest
    floor = np.floor(exact).astype(np.int64)
    left = rest - int(floor.sum())
    order = np.lexsort((np.arange(len(draws)), -(exact - floor)))
    floor[order[:left]] += 1
    return counts + floor


def best_params(rows: pd.DataFrame, names: Sequence[str], min_trades: int) -> dict[str, float]:
    """The parameters of the best row: highest ``sharpe_per_trade`` among rows with at least
    ``min_trades`` trades, else among rows that traded, else the first row; ties go to the
    earlier row."""
    for mask in (rows["trades"] >= min_trades, rows["trades"] > 0):
        pool = rows[mask & np.isfinite(rows["sharpe_per_trade"])]
        if len(pool):
            best = pool.iloc[int(np.argmax(pool["sharpe_per_trade"].to_numpy()))]
            return {n: float(best[n]) for n in names}
    return {n: float(rows.iloc[0][n]) for n in names}


@dataclass
class RefineResult:
    """Trials of the refinement (the sweep's columns plus ``round``), the brain after it,
    and one history record per round (allocation, best combo and its Sharpe)."""

    trials: pd.DataFrame
    brain: BayesianBrain
    history: list[dict[str, Any]] = field(default_factory=list)
    resumed_rounds: int = 0


def _combo_best(rows_by_combo: dict[Combo, pd.DataFrame], min_trades: int
                ) -> tuple[str, float]:
    best_key, best = "", -np.inf
    for (template_id, timeframe), rows in rows_by_combo.items():
        values = rows.loc[rows["trades"] >= min_trades, "sharpe_per_trade"].to_numpy(np.float64)
        values = values[np.isfinite(values)]
        if len(values) and values.max() > best:
            best_key, best = brain_key(template_id, timeframe), float(values.max())
    return best_key, best


def _by_combo(frame: pd.DataFrame, combos: Sequence[Combo]) -> dict[Combo, pd.DataFrame]:
    """The rows of each combo (empty frames for combos without rows), in combo order."""
    if not len(frame):
        return {c: frame for c in combos}
    groups = dict(tuple(frame.groupby(["template_id", "timeframe"], sort=False)))
    empty = frame.iloc[0:0]
    return {c: groups.get(c, empty) for c in combos}


def _propose(space: ParameterSpace, rows: pd.DataFrame, n: int, settings: RefineSettings,
             rng: np.random.Generator) -> pd.DataFrame:
    names = list(space.names)
    if settings.proposer == "tpe":
        scores = np.where(rows["trades"] >= settings.min_trades, rows["sharpe_per_trade"],
                          np.nan)
        return tpe_proposer(space, rows[names], scores, n,
                            random_state=int(rng.integers(2**31 - 1)))
    base = best_params(rows, names, settings.min_trades)
    return mutate(space, base, n, settings.scale, random_state=rng)


def _state_key(combos: Sequence[Combo], settings: RefineSettings, job_key: str) -> str:
    payload = json.dumps({"version": REFINE_VERSION, "combos": [list(c) for c in combos],
                          "settings": settings.__dict__, "jobs": job_key}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def thompson_refine(combos: Sequence[Combo], sweep_summaries: pd.DataFrame,
                    sweep_brain: BayesianBrain, *, make_job: Callable[[str, str, pd.DataFrame,
                                                                       int], PairJob],
                    spaces: dict[str, ParameterSpace], settings: RefineSettings,
                    folder: Path | str, executor: Executor, resume: bool = True,
                    job_key: str = "", progress: ProgressCallback = no_progress
                    ) -> RefineResult:
    """Refine ``combos`` with Thompson sampling (see the module docstring).

    ``make_job(template_id, timeframe, params, first_set_id)`` builds the evaluation job of a
    proposed parameter table; ``spaces`` maps each timeframe to its parameter space;
    ``sweep_summaries`` and ``sweep_brain`` are the sweep's result (the brain is copied, not
    changed). ``job_key`` names the jobs' data (part of the checkpoint key).
    """
    if not combos:
        return RefineResult(pd.DataFrame(), _copy(sweep_brain))
    root = Path(folder)
    key = _state_key(combos, settings, job_key)
    state = _read_state(root, key) if resume else None
    if state is None:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
        trials, history, start = pd.DataFrame(), [], 0
    else:
        start = state["rounds_done"]
        trials = read_frame(root / TRIALS_FILE) if start else pd.DataFrame()
        if len(trials):  # a crash between the two writes leaves a later round's rows
            trials = trials[trials["round"] < start].reset_index(drop=True)
        history = state["history"]
    brain = _copy(sweep_brain)
    if len(trials):
        update_brain(brain, trials)
    keys = [brain_key(t, tf) for t, tf in combos]
    budgets = round_budgets(settings.budget, settings.rounds)
    # each combo's rows so far (sweep, then refinement), kept per combo: the sweep table can
    # hold millions of rows, so it is split once rather than filtered every round
    seen = _by_combo(sweep_summaries, combos)
    for combo, rows in _by_combo(trials, combos).items():
        if len(rows):
            seen[combo] = pd.concat([seen[combo], rows.drop(columns=["round"])],
                                    ignore_index=True)
    next_id = {c: int(seen[c]["set_id"].max()) + 1 if len(seen[c]) else 0 for c in combos}
    for round_no in range(start, settings.rounds):
        rng = np.random.default_rng([settings.seed, round_no])
        counts = allocate(brain.sample(keys, rng), budgets[round_no], settings.min_per_combo)
        jobs = []
        for (template_id, timeframe), n in zip(combos, counts, strict=True):
            proposal = _propose(spaces[timeframe], seen[(template_id, timeframe)], int(n),
                                settings, rng)
            jobs.append(make_job(template_id, timeframe, proposal, next_id[(template_id,
                                                                            timeframe)]))
            next_id[(template_id, timeframe)] += int(n)
        results: list[pd.DataFrame | None] = [None] * len(jobs)
        for index, result in executor.imap_unordered(evaluate_pair, jobs):
            results[index] = result
        new = pd.concat(results, ignore_index=True)
        new["round"] = np.int64(round_no)
        update_brain(brain, new)
        trials = pd.concat([trials, new], ignore_index=True) if len(trials) else new
        for combo, rows in _by_combo(new, combos).items():
            seen[combo] = pd.concat([seen[combo], rows.drop(columns=["round"])],
                                    ignore_index=True)
        best_key, best = _combo_best(seen, settings.min_trades)
        history.append({"round": round_no,
                        "allocation": {k: int(c) for k, c in zip(keys, counts, strict=True)},
                        "best_key": best_key, "best_sharpe": best if np.isfinite(best) else None})
        write_frame(root / TRIALS_FILE, trials)
        brain.save(root / BRAIN_FILE)
        atomic_write_json(root / HISTORY_FILE, {"rounds": history})
        atomic_write_json(root / STATE_FILE, {"key": key, "rounds_done": round_no + 1,
                                              "history": history})
        progress("refine", round_no + 1, settings.rounds,
                 f"best {best_key} sharpe/trade {best:.3f}" if best_key else "")
    return RefineResult(trials, brain, history, start)


def _copy(brain: BayesianBrain) -> BayesianBrain:
    clone = BayesianBrain(brain.prior_alpha, brain.prior_beta)
    keys = brain.keys()
    if keys:
        clone.batch_update_counts(keys, [brain.wins(k) for k in keys],
                                  [brain.losses(k) for k in keys])
    return clone


def _read_state(root: Path, key: str) -> dict[str, Any] | None:
    path = root / STATE_FILE
    try:
        state = read_json(path) if path.exists() else None
    except (OSError, ValueError):
        return None
    if state is None or state.get("key") != key:
        return None
    if state["rounds_done"] and not (root / TRIALS_FILE).exists():
        return None
    return state
