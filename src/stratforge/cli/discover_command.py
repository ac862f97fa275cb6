"""``stratforge discover``: patterns top-down, templates, and optionally exit optimisation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from stratforge.cli.console import console, progress_bars
from stratforge.cli.recorded import given, recorded, tee
from stratforge.errors import DataError

if TYPE_CHECKING:
    from stratforge.discovery.fractal import DiscoveryResult
    from stratforge.discovery.library import TemplateLibrary


def _print_levels(result: DiscoveryResult) -> None:
    table = Table(title=f"Discovery {result.symbol}: {' > '.join(result.hierarchy)}")
    for column in ("level", "tf", "bars scanned", "windows", "patterns", "states", "seconds",
                   "note"):
        table.add_column(column, justify="left" if column in ("tf", "note") else "right",
                         no_wrap=True)
    for report in result.levels:
        note = "full scan" if report.full_scan else ("skipped: no patterns" if report.skipped
                                                     else "")
        if report.resumed:
            note = (note + ", " if note else "") + "from checkpoint"
        table.add_row(str(report.depth), report.timeframe, f"{report.bars_scanned:,}",
                      f"{report.windows:,}", f"{report.patterns:,}", report.states_cache,
                      f"{report.seconds:.1f}", note)
    console.print(table)


def _short_params(params: dict) -> str:
    """'stop 39 / target 92 / trail 123-258 / hold 8' (ticks and bars)."""
    if not params:
        return ""
    parts = [f"stop {params.get('stop_ticks', 0):g}", f"target {params.get('target_ticks', 0):g}"]
    if params.get("trail_tight_ticks"):
        parts.append(f"trail {params['trail_tight_ticks']:g}-"
                     f"{params.get('trail_wide_ticks') or params['trail_tight_ticks']:g}")
    if params.get("max_hold_bars"):
        parts.append(f"hold {params['max_hold_bars']:g}")
    return " / ".join(parts)


def _print_templates(library: TemplateLibrary, limit: int) -> None:
    from stratforge.discovery.library import side_label

    frame = library.to_frame()
    table = Table(title=f"Templates by size ({len(frame)} in all, top {min(limit, len(frame))})")
    for column in ("id", "timeframes", "members", "side", "oracle win", "MFE p50", "MAE p50",
                   "exit params (ticks, bars)"):
        table.add_column(column, justify="right" if column in ("members", "oracle win", "MFE p50",
                                                               "MAE p50") else "left")
    for row in frame.sort_values("members", ascending=False, kind="stable").head(limit) \
            .itertuples():
        params = _short_params(row.params)
        table.add_row(row.template_id, row.timeframes, f"{row.members:,}",
                      side_label(row.direction), f"{row.oracle_win_rate:.1%}",
                      f"{row.mfe_p50:.2f}", f"{row.mae_p50:.2f}", params)
    console.print(table)


def discover_command(
    symbol: Annotated[str, typer.Option("--symbol", "-s", help="Instrument symbol.")] = "MNQ",
    timeframes: Annotated[str | None, typer.Option(
        help="Hierarchy top-down, comma-separated (default: 1W..1s present in the ATLAS).")
    ] = None,
    fresh: Annotated[bool, typer.Option(help="Ignore checkpoints and start over.")] = False,
    train_end: Annotated[str | None, typer.Option(
        help="Train on the patterns that end before this time (UTC): scalers, clustering, "
             "optimisation and fission see no bar at or after it.")] = None,
    seed: Annotated[int, typer.Option(help="random_state of clustering and optimisation.")
                    ] = 0,
    optimize: Annotated[bool, typer.Option(
        help="Also optimise exit parameters per template (design of experiments + fission).")
    ] = False,
    iterations: Annotated[int, typer.Option(help="Evaluations per template.")] = 60,
    members: Annotated[int, typer.Option(help="Members per template to optimise on.")] = 20,
    fission: Annotated[bool, typer.Option(help="Split templates whose members want "
                                               "different exits.")] = True,
    show: Annotated[int, typer.Option(help="Templates to list.")] = 20,
) -> None:
    """Discover patterns from the top timeframe down and cluster them into templates.

    With ``--train-end T`` only the patterns whose every bar (their own, the oracle's
    lookahead, drill-down parents) ends by T are clustered, optimised and split, and the
    optimiser simulates on the bars before T only (docs/discovery.md, "Training span").
    """
    from stratforge.discovery.fractal import discover_patterns
    from stratforge.discovery.library import library_folder
    from stratforge.discovery.optimize import optimize_templates
    from stratforge.discovery.span import training_patterns, utc_time
    from stratforge.discovery.templates import cluster_patterns

    end = utc_time(train_end, "--train-end") if train_end else None
    parameters = given(symbol=symbol.upper(), timeframes=timeframes, fresh=fresh,
                       train_end=train_end, seed=seed, optimize=optimize,
                       iterations=iterations if optimize else None,
                       members=members if optimize else None,
                       fission=fission if optimize else None)
    with recorded("discovery_run", parameters, metadata={"source": "cli"},
                  resume_hint="run the same command again: it continues from the "
                              "discovery checkpoints") as job:
        with progress_bars() as progress:
            result = discover_patterns(symbol, timeframes=timeframes, fresh=fresh,
                                       progress=tee(progress, job.progress))
        _print_levels(result)
        if len(result.patterns) == 0:
            console.print("no patterns found: nothing to cluster")
            job.result = {"patterns": 0, "templates": 0}
            return
        patterns, span = result.patterns, None
        if end is not None:
            span = training_patterns(result.patterns, end, symbol=result.symbol)
            console.print(span.describe())
            patterns = span.patterns
            if len(patterns) == 0:
                raise DataError(f"no pattern of {result.symbol} ends before --train-end "
                                f"{end.isoformat()}; choose a later --train-end or add data")
        with progress_bars() as bars:
            progress = tee(bars, job.progress)
            library = cluster_patterns(patterns, random_state=seed, progress=progress,
                                       train_end=end)
            if optimize:
                optimized = optimize_templates(library, patterns, symbol=symbol,
                                               iterations=iterations,
                                               members_per_template=members, fission=fission,
                                               random_state=seed, resume=not fresh,
                                               train_end=end, progress=progress)
                library = optimized.library
                if optimized.splits:
                    console.print(f"fission split {len(optimized.splits)} template(s): " +
                                  ", ".join(f"{p} -> {len(c)}" for p, c in
                                            list(optimized.splits.items())[:10]))
        extra = {"hierarchy": result.hierarchy, "symbol": result.symbol}
        if span is not None:
            extra["training_span"] = span.metadata()
        library = library.with_templates([], metadata=extra)
        folder = library.save(library_folder(symbol))
        _print_templates(library, show)
        job.result = {"patterns": len(result.patterns), "templates": len(library),
                      "folder": str(folder)}
        console.print(f"{len(result.patterns):,} patterns, {len(library)} templates; library "
                      f"saved to {folder}")
