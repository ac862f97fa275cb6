"""``stratforge run``: the research pipeline with Rich progress and a closing summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from stratforge.cli.audit_commands import print_null_block
from stratforge.cli.console import console, progress_bars
from stratforge.cli.cost_options import (
    Commission,
    FeeBps,
    SlippageTicks,
    SpreadTicks,
    cost_overrides,
)
from stratforge.cli.dashboard_open import open_dashboard
from stratforge.cli.recorded import given, recorded, tee
from stratforge.config import get_settings
from stratforge.errors import ConfigError

if TYPE_CHECKING:
    from stratforge.research.pipeline import RunResult


def _fmt(value: Any, spec: str = ",.2f") -> str:
    if value is None:
        return "-"
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _print_phases(result: RunResult) -> None:
    from stratforge.research.runs import PHASES

    summary = result.summary
    table = Table(title=f"Run {summary['run_id']} ({summary['symbol']})")
    for column in ("phase", "seconds", "figures"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for phase in PHASES:
        info = summary.get("phases", {}).get(phase)
        if info is None:
            continue
        figures = ", ".join(f"{k} {_short(v)}" for k, v in info.items()
                            if k not in ("seconds", "train_end_ns") and not isinstance(v, dict))
        nested = [f"{k}: " + ", ".join(f"{a} {_short(b)}" for a, b in v.items())
                  for k, v in info.items() if isinstance(v, dict)]
        table.add_row(phase, _fmt(info.get("seconds"), ".1f"), "; ".join([figures, *nested]
                                                                          if figures else nested))
    console.print(table)


def _print_levels(result: RunResult) -> None:
    """The patterns per discovery level (``summary.json``'s ``discovery_levels``)."""
    levels = result.summary.get("discovery_levels") or []
    if not levels:
        return
    scan = (result.summary.get("config") or {}).get("scan", "full")
    table = Table(title=f"Discovery levels (scan {scan})")
    for column in ("level", "tf", "bars scanned", "windows", "patterns", "in sample"):
        table.add_column(column, justify="left" if column == "tf" else "right")
    for r in levels:
        table.add_row(str(r["level"]), r["timeframe"], f"{r['bars_scanned']:,}",
                      f"{r['windows']:,}", f"{r['patterns']:,}", f"{r['in_sample_patterns']:,}")
    console.print(table)


def _print_market(result: RunResult) -> None:
    market = result.summary.get("market") or {}
    if not market:
        return
    cost = market["cost_model"]
    decimals = int(market.get("price_decimals", 2))
    currency = market.get("currency", "")
    console.print(
        f"market {market['symbol']}: base {market.get('base_timeframe')}, timeframes "
        f"{', '.join(market['timeframes'])}; session {market.get('session', '')}")
    console.print(
        f"costs: {cost['description']}; one round trip "
        f"{cost['round_trip_price']:,.{decimals}f} price units = "
        f"{cost['round_trip_currency']:,.2f} {currency} "
        f"(at {cost['reference_price']:,.{decimals}f})")
    for tf, block in market.get("per_timeframe", {}).items():
        stop = block["resolved_space"].get("stop_ticks")
        stops = (f"; stop {stop['low_price']:,.{decimals}f}-{stop['high_price']:,.{decimals}f}"
                 if stop else "")
        console.print(f"  {tf}: yardstick (in-sample median true range) "
                      f"{block['yardstick_price']:,.{decimals}f}{stops}")


TOP_FACTORS = 5
"""How many ANOVA factors ``run`` prints."""


def print_anova(folder: Path, top: int = TOP_FACTORS) -> None:
    """The ``top`` tested factors of the run's ``anova.json`` by effect size (eta squared):
    which choices move PnL per trade. Nothing when the run has no ANOVA."""
    try:
        payload = json.loads((folder / "anova.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    rows = [r for r in payload.get("one_way") or [] if isinstance(r, dict)
            and r.get("status") == "tested" and r.get("eta_squared") is not None]
    if not rows:
        console.print("ANOVA: no factor could be tested (see anova_report.txt)")
        return
    rows.sort(key=lambda r: (-float(r["eta_squared"]), str(r.get("factor"))))
    table = Table(title=f"Top ANOVA factors of PnL per trade ({payload.get('n_rows', 0):,} "
                        "parameter sets; eta^2 = share of the variance a factor explains)")
    for column in ("factor", "groups", "F", "p", "eta^2", ""):
        table.add_column(column, justify="left" if column in ("factor", "") else "right")
    for r in rows[:top]:
        table.add_row(str(r["factor"]), str(r.get("n_groups", "")), _fmt(r.get("F"), ".2f"),
                      _fmt(r.get("p_value"), ".3g"), _fmt(r.get("eta_squared"), ".3f"),
                      str(r.get("stars") or ""))
    console.print(table)


def _print_best(result: RunResult) -> None:
    from stratforge.discovery.library import side_label

    summary = result.summary
    best = summary.get("best") or []
    if not best:
        return
    currency = (summary.get("market") or {}).get("currency", "")
    tiers = summary.get("tiers", {})
    table = Table(title="Best strategies: by tier, then in-sample Sharpe per trade (out of "
                        "sample only accepts or rejects) - " +
                        ", ".join(f"{k} {v}" for k, v in tiers.items()))
    for column in ("strategy", "side", "tier", "IS trades", "IS SR/trade", "OOS trades",
                   f"OOS PnL {currency}", "OOS p", "DSR", "PBO", "WF up", "WF eff"):
        table.add_column(column, justify="left" if column in ("strategy", "side", "tier")
                         else "right")
    for s in best:
        ins, oos, wf = s["in_sample"], s["out_of_sample"], s["walk_forward"]
        table.add_row(s["strategy_id"], side_label(s["direction"]),
                      s["tier_name"], _fmt(ins["trades"], ","),
                      _fmt(ins["sharpe_per_trade"], ".2f"), _fmt(oos["trades"], ","),
                      _fmt(oos["pnl"], ",.0f"), _fmt(s["oos_test"]["p_value"], ".3f"),
                      _fmt(s["dsr"], ".2f"), _fmt(s["pbo"], ".2f"),
                      f"{wf['positive_folds']}/{wf['folds']}", _fmt(wf["efficiency"], ".2f"))
    console.print(table)
    _print_overfitting(summary.get("overfitting"))


def _print_overfitting(block: dict | None) -> None:
    if not block:
        return
    trials, dsr, test, pbo = block["trials"], block["dsr"], block["oos_test"], block["run_pbo"]
    pbo_text = (f"{pbo['value']:.2f} over {pbo['configs']:,} sets" if pbo["value"] is not None
                else f"not computed ({pbo['note']})")
    console.print(
        f"overfitting: {trials['raw']:,} trials, {trials['eligible']:,} with at least "
        f"{trials['min_is_trades']} in-sample trades, {trials['effective']:,.1f} effective; "
        f"DSR benchmark t = SR x sqrt(trades) of {dsr['threshold_t']:.2f}; "
        f"{test['accepted']} of {test['candidates_tested']} candidates significant out of "
        f"sample (Benjamini-Hochberg, FDR {test['fdr']}); run PBO {pbo_text}")


def run_command(
    symbol: Annotated[str, typer.Option("--symbol", "-s", help="Instrument to research "
                                        "(MNQ, EURUSD, AAPL and BTCUSD use their built-in "
                                        "synthetic market when they have no data).")
                      ] = "MNQ",
    fresh: Annotated[bool, typer.Option(help="Recompute discovery from scratch.")] = False,
    resume: Annotated[bool, typer.Option(help="Continue the newest (or --run-id) run from "
                                              "its checkpoints.")] = False,
    run_id: Annotated[str | None, typer.Option(help="Run to resume or rerun a phase of.")
                      ] = None,
    mc_iters: Annotated[int | None, typer.Option(help="Parameter sets per (template, "
                                                      "timeframe) pair [2000].")] = None,
    mc_only: Annotated[bool, typer.Option(help="New run reusing the newest templates; stop "
                                               "after the sweep.")] = False,
    optimize_only: Annotated[bool, typer.Option(help="Rerun the optimize phase (template "
                                                     "optimisation, fission) of a run.")
                             ] = False,
    optimize: Annotated[bool, typer.Option(help="Optimise and split the templates before "
                                                "matching; their optima seed the sweep.")
                        ] = True,
    anova_only: Annotated[bool, typer.Option(help="Rerun the ANOVA of a run.")] = False,
    refine_only: Annotated[bool, typer.Option(help="Rerun the refinement of a run.")] = False,
    validate_only: Annotated[bool, typer.Option(help="Rerun validation, playbook and report "
                                                     "of a run.")] = False,
    timeframes: Annotated[str | None, typer.Option(
        help="Comma-separated [from the store: the base and coarser timeframes with enough "
             "bars, e.g. 1m,5m,15m,1h,4h for 1s bars, 1h,4h,1D for hourly bars].")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of every random choice [7].")] = None,
    executor: Annotated[str | None, typer.Option(help="local (processes), ray or serial.")
                        ] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes [all cores].")] = None,
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster address (default: a "
                                                         "local Ray instance).")] = None,
    checkpoint_every: Annotated[int | None, typer.Option(
        min=1, help="Templates (optimize) or pairs (sweep) finished between two checkpoints "
                    "[8]; an execution setting, never changes a result.")] = None,
    folds: Annotated[int | None, typer.Option(help="Walk-forward folds [4].")] = None,
    top: Annotated[int | None, typer.Option(help="Combos to refine [20].")] = None,
    budget: Annotated[int | None, typer.Option(help="Refinement budget [20000].")] = None,
    rounds: Annotated[int | None, typer.Option(help="Refinement rounds [50].")] = None,
    proposer: Annotated[str | None, typer.Option(help="mutation or tpe.")] = None,
    space: Annotated[str | None, typer.Option(help="Parameter-space YAML file.")] = None,
    scan: Annotated[str | None, typer.Option(
        help="Discovery scan: full (every bar of every timeframe) or drill (the fractal "
             "drill-down: the top timeframe in full, each lower one inside the windows its "
             "parents' patterns open) [full].")] = None,
    match_all_bars: Annotated[bool, typer.Option(
        help="Match templates on every bar, not only on pattern bars.")] = False,
    quick: Annotated[bool, typer.Option(help="Small sizes: at most 3 timeframes, 200 sets, "
                                             "2000 refinement trials.")] = False,
    commission: Commission = None,
    spread_ticks: SpreadTicks = None,
    slippage_ticks: SlippageTicks = None,
    fee_bps: FeeBps = None,
    null_twins: Annotated[int | None, typer.Option(
        "--null-twins", min=1, help="After the run, run the same configuration on N null "
                                    "twins of its data (resumable; see `stratforge audit "
                                    "null`).")] = None,
    dashboard: Annotated[bool, typer.Option(
        "--dashboard", help="Open the run's live page in the browser (starts `stratforge "
                            "serve` for this home when none runs).")] = False,
) -> None:
    """Research SYMBOL: discovery, sweep, ANOVA, refinement, walk-forward validation,
    playbook and report, into <home>/runs/<run_id>/."""
    # the first line comes before the research modules (numba, pandas, sklearn) are loaded
    console.print(f"stratforge run: researching {symbol.upper()}"
                  f"{' (quick sizes)' if quick else ''}; loading the research modules ...",
                  highlight=False)
    from stratforge.research.config import make_config
    from stratforge.research.null_audit import audit_null, null_result
    from stratforge.research.pipeline import run_research

    only = [name for name, flag in (("mc", mc_only), ("optimize", optimize_only),
                                    ("anova", anova_only),
                                    ("refine", refine_only), ("validate", validate_only))
            if flag]
    if len(only) > 1:
        raise ConfigError("choose at most one of --mc-only, --optimize-only, --anova-only, "
                          "--refine-only, --validate-only")
    if null_twins and only and only[0] != "validate":
        raise ConfigError(f"--null-twins needs a validated run; drop it or --{only[0]}-only")
    if executor == "local" and ray_address:
        raise ConfigError("--ray-address needs --executor ray")
    settings = get_settings()
    config = make_config(quick=quick, symbol=symbol, mc_iters=mc_iters, timeframes=timeframes,
                         seed=seed, executor=executor or settings.executor,
                         workers=workers or settings.workers or None,
                         ray_address=ray_address or settings.ray_address,
                         checkpoint_every=checkpoint_every, folds=folds,
                         top_combos=top,
                         refine_budget=budget, refine_rounds=rounds, proposer=proposer,
                         space_path=space, match_bars="all" if match_all_bars else None,
                         optimize=None if optimize else False, scan=scan,
                         **cost_overrides(commission, spread_ticks, slippage_ticks, fee_bps))
    from stratforge.names import check_run_id, check_symbol
    from stratforge.research.runs import PHASES, new_run_id

    # names that are not names stop here, before an operation is recorded for them
    check_symbol(symbol)
    if run_id is not None:
        check_run_id(run_id)
    parameters = given(symbol=symbol, quick=quick, mc_iters=mc_iters, timeframes=timeframes,
                       seed=seed, executor=executor, workers=workers, ray_address=ray_address,
                       checkpoint_every=checkpoint_every, folds=folds, top_combos=top,
                       refine_budget=budget,
                       refine_rounds=rounds, proposer=proposer, space_path=space,
                       match_bars="all" if match_all_bars else None,
                       optimize=None if optimize else False, scan=scan,
                       **cost_overrides(commission, spread_ticks, slippage_ticks, fee_bps))
    if run_id is None and not resume and not only:
        run_id = new_run_id()  # known up front: the operation names its run from the start
    metadata = given(source="cli", run_id=run_id, only=only[0] if only else None,
                     resume=resume, fresh=fresh)
    hint = (f"resume with `stratforge run --resume --run-id {run_id}`" if run_id else
            "resume with `stratforge run --resume`")
    with recorded("research_run", parameters, metadata=metadata, phases=PHASES,
                  resume_hint=hint) as job:
        if dashboard:
            open_dashboard(f"runs/{job.job.operation_id}")
        with progress_bars() as progress:
            result = run_research(config, resume=resume, fresh=fresh,
                                  only=only[0] if only else None, run_id=run_id,
                                  progress=tee(progress, job.progress))
            if null_twins:
                block = audit_null(result.summary["run_id"], twins=null_twins,
                                   progress=tee(progress, job.progress))
        job.result = {"run_id": result.summary["run_id"], "path": str(result.path),
                      "tiers": result.summary.get("tiers"),
                      "best": (result.summary.get("best") or [])[:3],
                      "complete": result.summary.get("complete")}
        if null_twins:
            job.result["null_twins"] = null_result(block)
    synthetic = result.summary.get("data", {}).get("synthetic")
    if synthetic:
        console.print(f"The data of {result.summary['symbol']} is a synthetic market "
                      f"({synthetic}), not real bars; ingest your own with `stratforge data "
                      "ingest`.")
    _print_phases(result)
    _print_levels(result)
    _print_market(result)
    print_anova(result.path)
    _print_best(result)
    if null_twins:
        print_null_block(block)
    console.print(f"run folder: {result.path}")
    if (result.path / "report.html").exists():
        console.print(f"report: {result.path / 'report.html'}")
