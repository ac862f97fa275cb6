"""``audit_null``: the run's configuration on null twins of its own data (``null_twins.json``).

For a finished research run, ``n`` null twins of the run's base bars
(:mod:`stratforge.data.twins`: same timestamps, volume, sizes of moves, volatility clustering
and intraday profile; no predictable direction) are each written into a temporary home (same
instrument: the home's ``instruments.yaml`` is copied) and run with the run's configuration
(timeframes, seed, search sizes, cost overrides). What each twin run found is kept in
``<run>/null_twins/twin_<k>.json``; a twin whose file exists is not run again (resume). The
block written to ``<run>/null_twins.json`` (and into ``summary.json``) gives per tier how many
twins produced at least one strategy and how many strategies in all, the best twin's DSR and
out-of-sample Sharpe beside the real run's, and marks each real strategy that "beats the
twins": a PRODUCTION or CANDIDATE strategy (one that passed the run's own deflated test)
whose DSR exceeds the 95th percentile of the twins' best DSRs (a twin with no validated
strategy counts as best DSR 0). Twins run through the run's executor, one twin per job (with
a pool, each twin run is serial inside its worker; with the serial executor each twin run uses
the run's own executor); a twin's record is written as soon as it finishes, and what a twin
finds does not depend on the executor. ``report.html`` is written again with the block.
Reading: docs/research.md, "Audit your results".
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stratforge.config import resolve_home
from stratforge.data.atomic import atomic_write_json, json_ready, read_json
from stratforge.data.ingest import write_base_bars
from stratforge.data.load import load_bars
from stratforge.data.market import resolve_market
from stratforge.data.resample import BarArrays
from stratforge.data.store import AtlasStore
from stratforge.data.twins import METHODS, TwinMaker
from stratforge.errors import ConfigError
from stratforge.instruments import USER_FILE_NAME
from stratforge.parallel import make_executor
from stratforge.progress import ProgressCallback, no_progress
from stratforge.research.outputs import (
    NULL_TWINS_FILE,
    TIER_ORDER,
    load_validation,
    null_headline,
    write_summary,
)
from stratforge.research.pipeline import run_research
from stratforge.research.report import write_report
from stratforge.research.runs import RunFolder
from stratforge.timeframes import parse_timeframe

TWINS_DIR = "null_twins"
BEATS_PERCENTILE = 95.0
BEATS_TIERS: tuple[str, ...] = ("PRODUCTION", "CANDIDATE")
"""Tiers whose strategies may beat the twins: those that passed the run's own deflated
out-of-sample test. With no edge, the real run's best DSR exceeds the twins' 95th percentile
in about one run in eleven (10 twins) by chance, so an UNPROVEN strategy is never marked."""


def null_result(block: dict[str, Any]) -> dict[str, Any]:
    """What an operation records of a ``null_twins`` block (its ``result_summary``)."""
    return {"run_id": block["run_id"], "twins": block["twins"], "headline": null_headline(block),
            "twins_with_any": {name: tier["twins_with_any"]
                               for name, tier in block["tiers"].items()},
            "beats_the_twins": block["beats_the_twins"]}


def audit_null(run_id: str | None, *, twins: int, home: Path | str | None = None,
               method: str = "sign", executor: str | None = None,
               progress: ProgressCallback = no_progress) -> dict[str, Any]:
    """Run the configuration of run ``run_id`` (the newest run when None) on ``twins`` null
    twins of its base bars, write ``null_twins.json`` beside the run and its block into
    ``summary.json``; returns the block. ``executor`` replaces the run's executor for the
    twin runs (None: the run's own). ConfigError for fewer than 1 twin, an unknown method or
    a run whose validation has not finished."""
    if twins < 1:
        raise ConfigError(f"--twins must be at least 1, got {twins}")
    if method not in METHODS:
        raise ConfigError(f"unknown twin method {method!r}; choose one of {', '.join(METHODS)}")
    with RunFolder.open(run_id, home) as run:
        if not run.done("validation"):
            raise ConfigError(f"run {run.run_id} has not finished validation; resume it with "
                              f"`stratforge run --resume --run-id {run.run_id}` first")
        config = run.config
        if executor is not None:
            config = config.model_copy(update={"executor": executor})
        bars, base = _run_base_bars(run, home)
        market = resolve_market(config.symbol, home)
        maker = TwinMaker(bars, config.seed, method=method, tick_size=market.tick_size,
                          session=market.session)
        folder = run.path / TWINS_DIR
        folder.mkdir(exist_ok=True)
        paths = [folder / f"twin_{k:03d}_{method}.json" for k in range(twins)]
        todo = [k for k in range(twins) if not paths[k].exists()]
        done = twins - len(todo)
        progress("null twins", done, twins,
                 f"{done} twin{'s' if done != 1 else ''} done before, kept" if done else
                 f"{twins} twins to run")
        if todo:
            _run_twins(maker, todo, paths, config, base, home, done, twins, progress)
        results = [read_json(path) for path in paths]
        progress("null twins", twins, twins, "done")
        block = null_block(run, results, method=method, seed=config.seed, base=base,
                           bars=len(bars))
        atomic_write_json(run.path / NULL_TWINS_FILE, block)
        write_summary(run)
        write_report(run.path)
        return block


@dataclass(frozen=True)
class TwinJob:
    """One twin run, self-contained for a worker process or a Ray node: the twin's bars, the
    configuration to run on it and the home's ``instruments.yaml`` text (None: none)."""

    k: int
    twin: pd.DataFrame
    base: str
    config: Any
    instruments: str | None


def _run_twins(maker: TwinMaker, todo: list[int], paths: list[Path], config: Any, base: str,
               home: Path | str | None, done: int, total: int,
               progress: ProgressCallback) -> None:
    """Run the twins ``todo`` through the configuration's executor, one twin per job; write
    each twin's record as soon as it finishes (so an interrupted audit resumes)."""
    user_file = resolve_home(home) / USER_FILE_NAME
    instruments = user_file.read_text(encoding="utf-8") if user_file.exists() else None
    with make_executor(config.executor, _twin_workers(config, len(todo)),
                       config.ray_address) as executor:
        # a pool runs twins side by side, each serial inside; one at a time, each twin run
        # keeps the run's own executor (results do not depend on it)
        inner = config if executor.kind == "serial" else \
            config.model_copy(update={"executor": "serial", "workers": None,
                                      "ray_address": None})
        jobs = (TwinJob(k, maker.twin(k), base, inner, instruments) for k in todo)
        for index, record in executor.imap_unordered(run_twin_job, jobs):
            atomic_write_json(paths[todo[index]], record)
            done += 1
            progress("null twins", done, total, f"twin {todo[index] + 1} of {total} done")


def _twin_workers(config: Any, jobs: int) -> int:
    """Twin runs at once: the configuration's workers (all cores when unset), at most one per
    twin still to run."""
    return max(1, min(config.workers or os.cpu_count() or 1, jobs))


def run_twin_job(job: TwinJob) -> dict[str, Any]:
    """Run one :class:`TwinJob` in a temporary home; what it found, as a JSON record."""
    return _run_twin(job.twin, job.k, job.base, job.config, job.instruments)


def _run_base_bars(run: RunFolder, home: Path | str | None) -> tuple[pd.DataFrame, str]:
    """The base bars the run used (its span: from its first bar to the end of its last bar
    of the finest timeframe) and the base timeframe."""
    info = run.info("data")
    market = resolve_market(run.config.symbol, home)
    finest = min(run.config.run_timeframes, key=lambda tf: parse_timeframe(tf).seconds)
    end = pd.Timestamp(info["last"]) + pd.Timedelta(seconds=parse_timeframe(finest).seconds)
    bars = load_bars(run.config.symbol, market.base_timeframe, start=info["first"], end=end,
                     home=home)
    return bars, market.base_timeframe


def _run_twin(twin: pd.DataFrame, k: int, base: str, config: Any,
              instruments: str | None) -> dict[str, Any]:
    """Run ``config`` on one twin in a temporary home; what it found, as a JSON record."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"stratforge_twin_{k}_") as tmp:
        twin_home = Path(tmp)
        if instruments is not None:
            (twin_home / USER_FILE_NAME).write_text(instruments, encoding="utf-8")
        write_base_bars(AtlasStore.open(config.symbol, twin_home), BarArrays.from_frame(twin),
                        parse_timeframe(base), replace_all=True, source=f"null twin {k}")
        result = run_research(config, home=twin_home)
        frame = load_validation(result.run)
    return json_ready({"twin": k,
                       "tiers": result.summary.get("tiers", dict.fromkeys(TIER_ORDER, 0)),
                       **_best(frame),
                       "seconds": round(time.perf_counter() - started, 3)})


def _best(frame: pd.DataFrame | None) -> dict[str, Any]:
    """The best DSR and the best out-of-sample Sharpe among a run's validated strategies
    (0.0 and None when it validated none)."""
    if frame is None or len(frame) == 0:
        return {"best_dsr": 0.0, "best_oos_sharpe": None}
    dsr = pd.to_numeric(frame["dsr"], errors="coerce")
    sharpe = pd.to_numeric(frame["oos_sharpe"], errors="coerce")
    return {"best_dsr": float(dsr.max()) if dsr.notna().any() else 0.0,
            "best_oos_sharpe": float(sharpe.max()) if sharpe.notna().any() else None}


def null_block(run: RunFolder, results: list[dict[str, Any]], *, method: str, seed: int,
               base: str, bars: int) -> dict[str, Any]:
    """The ``null_twins`` block of a run from its twins' records (see the module doc)."""
    frame = load_validation(run)
    real_counts = (frame["tier_name"].value_counts().to_dict() if frame is not None else {})
    tiers = {}
    for name in TIER_ORDER:
        counts = [int(r["tiers"].get(name, 0)) for r in results]
        tiers[name] = {"twins_with_any": sum(c > 0 for c in counts),
                       "strategies": sum(counts), "per_twin": counts,
                       "real": int(real_counts.get(name, 0))}
    best_dsr = [float(r["best_dsr"]) for r in results]
    sharpes = [r["best_oos_sharpe"] for r in results if r["best_oos_sharpe"] is not None]
    threshold = float(np.percentile(best_dsr, BEATS_PERCENTILE))
    strategies = []
    if frame is not None:
        for _, row in frame.iterrows():
            dsr = pd.to_numeric(row["dsr"], errors="coerce")
            strategies.append({"strategy_id": row["strategy_id"],
                               "timeframe": row["timeframe"], "tier_name": row["tier_name"],
                               "dsr": None if pd.isna(dsr) else float(dsr),
                               "beats_the_twins": bool(row["tier_name"] in BEATS_TIERS
                                                       and not pd.isna(dsr)
                                                       and dsr > threshold)})
    return json_ready({
        "run_id": run.run_id, "twins": len(results), "method": method, "seed": seed,
        "base_timeframe": base, "bars": bars, "tiers": tiers,
        "real": _best(frame),
        "best_twin": {"dsr": max(best_dsr), "oos_sharpe": max(sharpes) if sharpes else None},
        "twins_best_dsr": best_dsr, "dsr_threshold": threshold,
        "dsr_threshold_rule": f"a real PRODUCTION or CANDIDATE strategy beats the twins when "
                              f"its DSR exceeds the {BEATS_PERCENTILE:g}th percentile of the "
                              f"twins' best DSR",
        "beats_the_twins": sum(s["beats_the_twins"] for s in strategies),
        "strategies": strategies,
        "per_twin": [{k: r[k] for k in ("twin", "tiers", "best_dsr",
                                        "best_oos_sharpe", "seconds")} for r in results],
    })
