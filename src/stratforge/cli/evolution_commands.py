"""``stratforge evolve`` and ``stratforge evolution list|show|lineage|promoted``.

``evolve`` queues a run through the REST API (``--api URL``, default the local server) and,
with ``--wait``, follows it to the end. ``evolve --local`` needs no server: it creates the
run in the configured database (STRATFORGE_DATABASE_URL, else the embedded one) and runs an
in-process worker with two slots (the run and its simulations) until no evolution job is
left in the queue, then prints the run. The ``evolution`` commands read through the API:
this home's server when one runs, else the same API in process (no server needed).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.table import Table

from stratforge.cli.api_client import ApiClient, items
from stratforge.cli.console import FriendlyErrors, console
from stratforge.cli.cost_options import (
    Commission,
    FeeBps,
    SlippageTicks,
    SpreadTicks,
    cost_overrides,
)
from stratforge.errors import ConfigError

evolution_app = typer.Typer(cls=FriendlyErrors, no_args_is_help=True, rich_markup_mode=None,
                            help="Evolution runs: list, show, lineage, promoted models.")
ApiOption = Annotated[str | None, typer.Option(
    "--api", help="Base URL of the stratforge API [STRATFORGE_API_URL, else this home's "
                  "server, else the API in process on the home's database].")]
EVOLUTION_TYPES = ("evolution_run", "evolution_simulation")


def _numbers(text: str | None, name: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--{name} must be comma-separated numbers, e.g. 0.5,1,2; got "
                          f"{text!r}") from None


def _texts(text: str | None) -> list[str] | None:
    """Regime rules separated by ';' (a rule may hold commas: vol=low,normal)."""
    if text is None:
        return None
    return [v.strip() for v in text.split(";") if v.strip()]


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def print_run(run: dict[str, Any]) -> None:
    """A run's headline and one row per generation."""
    console.print(f"[bold]{run['operation_id']}[/bold] {run['status']} {run['symbol']} "
                  f"{run['timeframe']} {run['algorithm']}; stop: {run.get('stop_reason') or '-'}"
                  f" {run.get('stop_detail') or ''}".rstrip())
    if run.get("error"):
        console.print(f"[red]error:[/red] {run['error']}")
    table = Table(title="generations (best = chosen on validation, metrics out-of-sample)")
    for column in ("gen", "model", "parent", "features", "jobs", "priority", "best SQN",
                   "best PF", "val SQN", "trades", "promoted"):
        table.add_column(column)
    for g in run.get("generations") or []:
        best = g.get("best_result") or {}
        table.add_row(str(g["generation"]), g["model_fingerprint"][:12],
                      (g.get("parent_fingerprint") or "")[:12], str(g["n_features"]),
                      f"{g['jobs_done']}/{g['jobs_total']}", str(g["priority"]),
                      _fmt(g.get("best_sqn")), _fmt(g.get("best_profit_factor")),
                      _fmt(g.get("best_validation_sqn")), _fmt(best.get("trades")),
                      "yes" if g.get("promoted") else "no")
    console.print(table)


def _settings(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def evolve_command(
    symbol: Annotated[str, typer.Option(help="Symbol to model.")] = "MNQ",
    timeframe: Annotated[str | None, typer.Option(
        help="Bar timeframe [the store's finest default: 1m for 1s or 1m bars, 1h for hourly "
             "bars].")] = None,
    algorithm: Annotated[str | None, typer.Option(
        help="elasticnet, random_forest, hist_gradient_boosting, lightgbm, xgboost.")] = None,
    max_generations: Annotated[int | None, typer.Option(help="Generations (default 4).")
                               ] = None,
    prune_fraction: Annotated[float | None, typer.Option(
        help="Share of features pruned per generation (default 0.25).")] = None,
    min_features: Annotated[int | None, typer.Option(help="Never fewer features (default 5).")
                            ] = None,
    thresholds: Annotated[str | None, typer.Option(
        help="Signal thresholds in prediction std, comma-separated.")] = None,
    z_cutoffs: Annotated[str | None, typer.Option(
        help="Outlier z-score cutoffs (0 = off), comma-separated.")] = None,
    regimes: Annotated[str | None, typer.Option(
        help="Regime filters separated by ';', e.g. 'all;vol=low,normal;gmm=calm'.")] = None,
    reference_symbols: Annotated[str | None, typer.Option(
        "--reference", help="Reference symbols joined as-of, comma-separated.")] = None,
    horizon: Annotated[int | None, typer.Option(help="Target bars ahead (default 1).")] = None,
    delay_bars: Annotated[int | None, typer.Option(help="Fill delay in bars (default 4).")
                          ] = None,
    commission: Commission = None,
    spread_ticks: SpreadTicks = None,
    slippage_ticks: SlippageTicks = None,
    fee_bps: FeeBps = None,
    seed: Annotated[int | None, typer.Option(help="Seed.")] = None,
    local: Annotated[bool, typer.Option(
        "--local", help="Run in this process against the configured database, no server.")
                     ] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the run to its end (API).")
                    ] = False,
    api: ApiOption = None,
) -> None:
    """Start an evolution run: train, simulate the rule grid, prune, retrain, promote.

    Every simulated trade pays SYMBOL's cost model; --commission, --spread-ticks,
    --slippage-ticks and --fee-bps override parts of it for the run."""
    settings = _settings(
        symbol=symbol, timeframe=timeframe, algorithm=algorithm,
        max_generations=max_generations, prune_fraction=prune_fraction,
        min_features=min_features, thresholds=_numbers(thresholds, "thresholds"),
        z_cutoffs=_numbers(z_cutoffs, "z-cutoffs"), regimes=_texts(regimes),
        reference_symbols=[s.strip() for s in reference_symbols.split(",") if s.strip()]
        if reference_symbols else None, horizon=horizon, delay_bars=delay_bars,
        seed=seed, **cost_overrides(commission, spread_ticks, slippage_ticks, fee_bps))
    if local:
        _evolve_local(settings)
        return
    client = ApiClient(api)
    client.needs_worker("evolve", " or run it here with `stratforge evolve --local`")
    started = client.request("POST", "/evolution/runs", json=settings)
    run_id = started["operation_id"]
    console.print(f"queued evolution run {run_id} ({started['grid_points']} grid points per "
                  "generation)")
    if wait:
        while True:
            run = client.get(f"/evolution/runs/{run_id}")
            if run["status"] in ("completed", "failed", "cancelled"):
                break
            console.print(f"{run['status']}: {len(run['generations'])} generation(s), "
                          f"{run['progress']:.0f}%")
            time.sleep(2.0)
        print_run(run)


def _evolve_local(settings: dict[str, Any]) -> None:
    from stratforge.evolution.config import make_evolution_config, with_default_timeframe
    from stratforge.ops.db import open_database
    from stratforge.ops.evolution_store import RUN_TYPE, run_detail
    from stratforge.ops.operations import create_operation
    from stratforge.ops.worker import Worker

    settings = with_default_timeframe(settings)
    make_evolution_config(**settings)  # refuse bad settings before anything is written
    db = open_database()
    op = create_operation(db, RUN_TYPE, settings)
    console.print(f"evolution run {op.id}: running here ({db.dialect} database)")
    worker = Worker(db, types=list(EVOLUTION_TYPES), concurrency=2, exit_when_idle=True,
                    poll_interval=0.05)
    worker.run()
    print_run(run_detail(db, op.id))


@evolution_app.command("list")
def evolution_list(limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
                   api: ApiOption = None) -> None:
    """Evolution runs, newest first."""
    body = ApiClient(api).get("/evolution/runs", limit=limit)
    table = Table(title=f"{body['total']} evolution run(s)")
    runs = items(body, "items")
    table.add_column("run", no_wrap=True,
                     min_width=max((len(r["operation_id"]) for r in runs), default=3))
    for column in ("status", "symbol", "tf", "algorithm", "gens", "best SQN", "best PF",
                   "promoted", "stop", "created"):
        table.add_column(column)
    for run in runs:
        table.add_row(run["operation_id"], run["status"], run["symbol"], run["timeframe"],
                      run["algorithm"], str(run["generations"]), _fmt(run["best_sqn"]),
                      _fmt(run["best_profit_factor"]), str(run["promoted"]),
                      run.get("stop_reason") or "-", (run["created_at"] or "")[:19])
    console.print(table)


@evolution_app.command("show")
def evolution_show(run_id: str, api: ApiOption = None) -> None:
    """One run with its generations."""
    print_run(ApiClient(api).get(f"/evolution/runs/{run_id}"))


@evolution_app.command("lineage")
def evolution_lineage(fingerprint: str, api: ApiOption = None) -> None:
    """A model's ancestors, from the model back to the seed."""
    body = ApiClient(api).get(f"/evolution/models/{fingerprint}/lineage")
    table = Table(title=f"lineage of {fingerprint[:16]}")
    for column in ("model", "gen", "parent", "features", "best SQN", "best PF", "promoted"):
        table.add_column(column)
    for a in body["ancestors"]:
        table.add_row(a["fingerprint"][:16], str(a["generation"]),
                      (a.get("parent_fingerprint") or "")[:16], str(a["n_features"]),
                      _fmt(a.get("best_sqn")), _fmt(a.get("best_profit_factor")),
                      "yes" if a["promoted"] else "no")
    console.print(table)


@evolution_app.command("promoted")
def evolution_promoted(api: ApiOption = None) -> None:
    """Models that met the promotion criteria out-of-sample."""
    body = ApiClient(api).get("/evolution/promoted")
    table = Table(title=f"{len(body['items'])} promoted model(s)")
    for column in ("model", "run", "gen", "algorithm", "features", "rule", "SQN", "PF",
                   "trades", "weekly"):
        table.add_column(column)
    for p in body["items"]:
        m, pt = p["metrics"], p["point"]
        table.add_row(p["fingerprint"][:16], p["run_operation_id"], str(p["generation"]),
                      p["algorithm"], str(len(p["features"])),
                      f"t={pt['threshold']:g} z={pt['z_cutoff']:g} {pt['regime']}",
                      _fmt(m.get("sqn")), _fmt(m.get("profit_factor")), _fmt(m.get("trades")),
                      _fmt(m.get("weekly_consistency")))
    console.print(table)
