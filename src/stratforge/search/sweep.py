"""Monte Carlo sweep: N parameter sets for every (template, timeframe) pair.

A pair is one job (:class:`PairJob`). A job carries references, not arrays: the symbol,
timeframe, home folder and span of the bars to load from the ATLAS, and the path of the
matches file of its timeframe (the bars where each template matched, written once per run).
:func:`evaluate_pair` runs in a worker process (or a Ray task): it loads what the job names
(kept in a small per-process cache), draws the job's parameter sets from a seed derived from
the pair alone (:func:`pair_seed`), and returns one summary row per set.

:func:`run_sweep` sends the jobs through a :mod:`stratforge.parallel` executor, updates the
Bayesian brain with every outcome under :func:`~stratforge.search.brain.brain_key`, and
checkpoints after every batch of finished pairs (atomically). With ``resume`` it skips the
pairs of a matching checkpoint. Because a pair's result depends only on the job, the final
table (ordered by job, then set) is identical whatever the executor, the worker count, the
finishing order or the interruptions. Rules: docs/research.md ("Monte Carlo sweep").
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stratforge.data.atomic import atomic_write_bytes, atomic_write_json, read_json
from stratforge.data.load import load_bars
from stratforge.errors import ConfigError
from stratforge.instruments import get_instrument
from stratforge.parallel import Executor
from stratforge.progress import ProgressCallback, no_progress
from stratforge.search.brain import BayesianBrain, brain_key
from stratforge.search.samplers import around, sample
from stratforge.search.space import ParameterSpace, space_from_rows
from stratforge.sim.backtest import SUMMARY_COLUMNS, sweep
from stratforge.sim.params import Costs

KEY_COLUMNS: tuple[str, ...] = ("template_id", "timeframe", "set_id")
"""The columns that identify a summary row; parameters and ``SUMMARY_COLUMNS`` follow."""
MATCH_COLUMNS: tuple[str, ...] = ("template_id", "ts", "side")
"""Columns of a matches file: template, bar start (int64 ns UTC), side (+1 / -1)."""
SWEEP_VERSION = "2"
"""Bump when a pair's result changes for the same job (invalidates checkpoints)."""
STATE_FILE = "state.json"
SUMMARIES_FILE = "summaries.parquet"
BRAIN_FILE = "brain.parquet"
_CACHE_SIZE = 4


@dataclass(frozen=True)
class PairJob:
    """One (template, timeframe) pair: everything a worker needs, by reference.

    Attributes:
        symbol, timeframe, home: where the bars are (``home`` as a string path).
        start_ns, end_ns: the span, bars with ``start_ns <= ts < end_ns`` (None = open).
        matches_path: the timeframe's matches file (``MATCH_COLUMNS``).
        template_id: the template whose matches are the entries.
        n_sets, sampler, seed: draw ``n_sets`` parameter sets with ``sampler`` (``sobol``,
            ``lhs`` or ``uniform``) from ``pair_seed(seed, template_id, timeframe)``.
        space: the timeframe's resolved parameter space as rows ``(name, low, high, kind)``
            (``stratforge.search.space.space_rows``), in the simulator's units.
        params: explicit parameter sets (a dict of columns) instead of sampling; the
            refiner uses it. ``first_set_id`` numbers the sets from there.
        costs: the run's cost model (``Costs`` fields), the same for every set; ``fill``:
            the entry fill mode.
        centre, centre_share, centre_scale: a template optimum in the job's units (one value
            per space parameter); ``round(centre_share * n_sets)`` of the sampled sets (at
            least one) are the centre and Gaussian steps around it (``samplers.around``, sd
            ``centre_scale`` of each range), the rest come from ``sampler``.
    """

    symbol: str
    timeframe: str
    home: str
    matches_path: str
    template_id: str
    start_ns: int | None = None
    end_ns: int | None = None
    n_sets: int = 0
    sampler: str = "sobol"
    seed: int = 0
    space: tuple[tuple[str, float, float, str], ...] = ()
    params: dict[str, list[float]] | None = None
    first_set_id: int = 0
    costs: dict[str, float] = field(default_factory=dict)
    fill: str = "close"
    centre: dict[str, float] | None = None
    centre_share: float = 0.0
    centre_scale: float = 0.05

    @property
    def key(self) -> str:
        """The brain key of the pair."""
        return brain_key(self.template_id, self.timeframe)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (what a checkpoint is keyed on). The home folder is left
        out and paths inside it are given relative to it: a pair's result does not depend on
        where the home lies, so a home moved elsewhere keeps its checkpoints."""
        out = asdict(self)
        home = Path(out.pop("home"))
        matches = Path(self.matches_path)
        if matches.is_relative_to(home):
            out["matches_path"] = matches.relative_to(home).as_posix()
        return out


def pair_seed(seed: int, template_id: str, timeframe: str) -> int:
    """A 63-bit seed for one pair, from the run seed and the pair alone (never from the
    job's position, worker or executor)."""
    digest = hashlib.sha256(f"{int(seed)}:{template_id}:{timeframe}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def pair_space(job: PairJob) -> ParameterSpace:
    """The parameter space the job samples from (its resolved rows)."""
    if not job.space:
        raise ConfigError(f"pair {job.template_id} {job.timeframe}: the job carries no "
                          "parameter space")
    return space_from_rows(job.space)


class _Cache:
    """A tiny per-process LRU cache: workers keep the last few bar spans and matches files."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[tuple, Any] = OrderedDict()

    def get(self, key: tuple, build: Any) -> Any:
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        value = build()
        self.items[key] = value
        while len(self.items) > self.size:
            self.items.popitem(last=False)
        return value


_BARS = _Cache(_CACHE_SIZE)
_MATCHES = _Cache(_CACHE_SIZE)


def load_pair_bars(job: PairJob) -> pd.DataFrame:
    """The bars of the job's span (kept in a small per-process cache)."""
    def build() -> pd.DataFrame:
        start = None if job.start_ns is None else pd.Timestamp(job.start_ns, tz="UTC")
        end = None if job.end_ns is None else pd.Timestamp(job.end_ns, tz="UTC")
        return load_bars(job.symbol, job.timeframe, start, end, home=job.home)
    return _BARS.get((job.home, job.symbol, job.timeframe, job.start_ns, job.end_ns), build)


def _matches(path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    def build() -> dict[str, tuple[np.ndarray, np.ndarray]]:
        table = pq.read_table(path).to_pandas()
        out = {}
        for template_id, rows in table.groupby("template_id", sort=False):
            out[str(template_id)] = (rows["ts"].to_numpy(np.int64),
                                     rows["side"].to_numpy(np.int64))
        return out
    stat = Path(path).stat()
    return _MATCHES.get((path, stat.st_mtime_ns, stat.st_size), build)


def pair_entries(job: PairJob, bars: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``bars`` and sides of the job's template matches inside its span."""
    stamps, sides = _matches(job.matches_path).get(job.template_id,
                                                   (np.empty(0, np.int64),) * 2)
    bar_ts = bars["ts"].array.asi8
    at = np.searchsorted(bar_ts, stamps)
    inside = at < len(bar_ts)
    inside[inside] = bar_ts[at[inside]] == stamps[inside]
    return at[inside].astype(np.int64), sides[inside]


def job_params(job: PairJob) -> pd.DataFrame:
    """The job's parameter sets: its explicit table, or ``n_sets`` sampled from its seed."""
    if job.params is not None:
        return pd.DataFrame(job.params)
    space = pair_space(job)
    seed = pair_seed(job.seed, job.template_id, job.timeframe)
    near = 0
    if job.centre is not None and job.centre_share > 0 and job.n_sets > 0:
        near = min(job.n_sets, max(1, round(job.centre_share * job.n_sets)))
    if near == 0:
        return sample(space, job.n_sets, job.sampler, random_state=seed)
    parts = [around(space, job.centre, near, job.centre_scale,
                    random_state=np.random.default_rng([seed, 1]))]
    if job.n_sets > near:
        parts.append(sample(space, job.n_sets - near, job.sampler, random_state=seed))
    return pd.concat(parts, ignore_index=True)


def evaluate_pair(job: PairJob) -> pd.DataFrame:
    """Simulate every parameter set of one pair over its span: one summary row per set.

    Columns: ``KEY_COLUMNS``, the parameter columns, ``SUMMARY_COLUMNS``. A pair without a
    single match in its span gives rows with zero trades.
    """
    bars = load_pair_bars(job)
    entries, sides = pair_entries(job, bars)
    table = job_params(job).reset_index(drop=True)
    costs = Costs(**job.costs)
    instrument = get_instrument(job.symbol, job.home)
    summary = sweep(bars, entries, sides, table, instrument=instrument, costs=costs,
                    fill=job.fill)
    keys = pd.DataFrame({
        "template_id": pd.array([job.template_id] * len(table), dtype="str"),
        "timeframe": pd.array([job.timeframe] * len(table), dtype="str"),
        "set_id": np.arange(job.first_set_id, job.first_set_id + len(table), dtype=np.int64),
    })
    return pd.concat([keys, summary], axis=1)


def outcomes(summaries: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Brain outcomes of summary rows: one per parameter set that traded, a win when its
    total PnL is above zero. Returns (keys, wins, losses) for ``batch_update_counts``."""
    traded = summaries["trades"].to_numpy() > 0
    rows = summaries.loc[traded]
    keys = [brain_key(t, tf) for t, tf in zip(rows["template_id"], rows["timeframe"],
                                                strict=True)]
    won = (rows["total_pnl"].to_numpy() > 0).astype(np.int64)
    return keys, won, 1 - won


def update_brain(brain: BayesianBrain, summaries: pd.DataFrame) -> None:
    """Add the outcomes of ``summaries`` (see :func:`outcomes`) to ``brain``."""
    keys, wins, losses = outcomes(summaries)
    if keys:
        brain.batch_update_counts(keys, wins, losses)


@dataclass
class SweepResult:
    """What :func:`run_sweep` returns: the summaries (job order, then set), the brain, and
    how many pairs came from a checkpoint."""

    summaries: pd.DataFrame
    brain: BayesianBrain
    resumed_pairs: int = 0
    pairs: int = 0
    backtests: int = 0
    parts: list[str] = field(default_factory=list)


def _encode(frame: pd.DataFrame) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink,
                   compression="zstd")
    return sink.getvalue().to_pybytes()


def write_frame(path: Path, frame: pd.DataFrame) -> None:
    """Write a frame as Parquet atomically (temporary file, then rename)."""
    atomic_write_bytes(path, _encode(frame))


def read_frame(path: Path) -> pd.DataFrame:
    """Read a frame written by :func:`write_frame`, strings as ``str`` columns."""
    frame = pq.read_table(path).to_pandas()
    for column in ("template_id", "timeframe"):
        if column in frame:
            frame[column] = frame[column].astype("str")
    return frame


def _jobs_key(jobs: Sequence[PairJob], extra: dict[str, Any] | None) -> str:
    payload = json.dumps({"version": SWEEP_VERSION, "jobs": [j.describe() for j in jobs],
                          "extra": extra or {}}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _load_checkpoint(folder: Path, key: str) -> tuple[list[dict[str, Any]], list[pd.DataFrame]]:
    path = folder / STATE_FILE
    try:
        state = read_json(path) if path.exists() else None
    except (OSError, ValueError):
        state = None
    if state is None or state.get("key") != key:
        return [], []
    parts, frames = [], []
    for record in state.get("parts", []):
        file = folder / record["file"]
        if not file.exists() or hashlib.sha256(file.read_bytes()).hexdigest() != record["sha256"]:
            break
        parts.append(record)
        frames.append(read_frame(file))
    return parts, frames


def _assemble(frames: list[pd.DataFrame], order: dict[tuple[str, str], int]) -> pd.DataFrame:
    frame = pd.concat(frames, ignore_index=True)
    rank = np.asarray([order[(t, tf)] for t, tf in zip(frame["template_id"], frame["timeframe"],
                                                         strict=True)], dtype=np.int64)
    sort = np.lexsort((frame["set_id"].to_numpy(), rank))
    return frame.iloc[sort].reset_index(drop=True)


def run_sweep(jobs: Sequence[PairJob], *, folder: Path | str, executor: Executor,
              resume: bool = True, checkpoint_every: int = 8, brain: BayesianBrain | None = None,
              extra_key: dict[str, Any] | None = None, phase: str = "sweep",
              progress: ProgressCallback = no_progress) -> SweepResult:
    """Run every job through ``executor`` with checkpoints in ``folder``.

    After each ``checkpoint_every`` finished pairs their summaries are written as one part
    file and the state file lists it (both atomic). With ``resume`` the parts of a checkpoint
    made for the same jobs (and ``extra_key``) are reused and their pairs skipped; otherwise,
    or when the jobs differ, the folder is cleared. ``brain`` (a new one by default) receives
    every outcome. The result's ``summaries`` are ordered by job, then ``set_id``, and written
    to ``folder/summaries.parquet``; the brain to ``folder/brain.parquet``.
    """
    if checkpoint_every < 1:
        raise ConfigError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    pairs = [(j.template_id, j.timeframe) for j in jobs]
    if len(set(pairs)) != len(pairs):
        raise ConfigError("each (template, timeframe) pair may appear in one job only")
    root = Path(folder)
    key = _jobs_key(jobs, extra_key)
    parts, frames = _load_checkpoint(root, key) if resume else ([], [])
    if not parts:
        shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    brain = brain if brain is not None else BayesianBrain()
    for frame in frames:
        update_brain(brain, frame)
    done = {(t, tf) for f in frames for t, tf in zip(f["template_id"], f["timeframe"],
                                                       strict=True)}
    resumed = len(done)
    pending = [j for j in jobs if (j.template_id, j.timeframe) not in done]
    buffer: list[pd.DataFrame] = []

    def flush() -> None:
        if not buffer:
            return
        frame = pd.concat(buffer, ignore_index=True)
        name = f"part-{len(parts):05d}.parquet"
        data = _encode(frame)
        atomic_write_bytes(root / name, data)
        parts.append({"file": name, "sha256": hashlib.sha256(data).hexdigest(),
                      "pairs": int(frame[["template_id", "timeframe"]].drop_duplicates().shape[0])})
        atomic_write_json(root / STATE_FILE, {"key": key, "parts": parts})
        frames.append(frame)
        buffer.clear()

    finished = resumed
    progress(phase, finished, len(jobs), f"{resumed} pairs from the checkpoint" if resumed
             else f"{len(jobs)} pairs")
    for _index, result in executor.imap_unordered(evaluate_pair, pending):
        buffer.append(result)
        update_brain(brain, result)
        finished += 1
        if len(buffer) >= checkpoint_every:
            flush()
        head = result.iloc[0] if len(result) else None
        progress(phase, finished, len(jobs),
                 f"{head['template_id']} {head['timeframe']}" if head is not None else "")
    flush()
    order = {pair: i for i, pair in enumerate(pairs)}
    summaries = _assemble(frames, order) if frames else pd.DataFrame(columns=list(KEY_COLUMNS))
    write_frame(root / SUMMARIES_FILE, summaries)
    brain.save(root / BRAIN_FILE)
    return SweepResult(summaries, brain, resumed, len(jobs), len(summaries),
                       [p["file"] for p in parts])


def summary_columns(frame: pd.DataFrame) -> list[str]:
    """The parameter columns of a summaries frame (between the keys and the statistics)."""
    return [c for c in frame.columns if c not in KEY_COLUMNS and c not in SUMMARY_COLUMNS
            and c not in ("round", "source")]
