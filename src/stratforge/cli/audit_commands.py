"""``stratforge audit``: checks of the user's own data beside every result."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from stratforge.cli.console import FriendlyErrors, console, progress_bars

audit_app = typer.Typer(cls=FriendlyErrors, no_args_is_help=True, rich_markup_mode=None,
                        help="Audit results on your own data: null twins of a run, lookahead in "
                             "features.")

FOUND_EXIT_CODE = 3
"""Exit status of ``audit lookahead`` when it finds lookahead (errors exit 1)."""


def _short_time(iso: str) -> str:
    """'2024-01-02 14:35' from an ISO UTC time (seconds only when not zero)."""
    text = iso.removesuffix("+00:00").replace("T", " ")
    return text.removesuffix(":00") if text.count(":") == 2 else text


def _comma_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [part.strip() for part in value.split(",") if part.strip()]
    return names or None


@audit_app.command("lookahead")
def lookahead_command(
    symbol: Annotated[str | None, typer.Option(
        "--symbol", "-s", help="Symbol whose stored bars are audited (default: the run's).")
    ] = None,
    cuts: Annotated[int, typer.Option(help="Cut points, seeded and spread over the span.")] = 5,
    timeframes: Annotated[str | None, typer.Option(
        help="Comma-separated timeframes (default: the store's research timeframes, or the "
             "hierarchy of --run-id's template library).")] = None,
    run_id: Annotated[str | None, typer.Option(
        "--run-id", help="Also audit the template matches of this run's library.")] = None,
    feature: Annotated[list[str] | None, typer.Option(
        "--feature", help="Your own feature, 'module:function' or 'file.py:function' "
                          "(bars -> Series/DataFrame aligned with them); repeatable.")] = None,
    builder: Annotated[str | None, typer.Option(
        "--builder", help="Your own evolution feature builder, 'module:function' (bars, "
                          "states, tick_size= -> DataFrame aligned with the bars), audited "
                          "in place of the built-in one and used by --model.")] = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", help="A stored evolution model (fingerprint or a unique prefix of 8+ hex "
                        "digits) replayed on its timeframe, as the agent replays it; "
                        "repeatable.")] = None,
    all_models: Annotated[bool, typer.Option(
        "--models", help="Replay every stored evolution model of the symbol.")] = False,
    sources: Annotated[str | None, typer.Option(
        "--sources", help="Comma-separated sources to audit: states, vector, evolution, "
                          "match, user, model (default: all; e.g. --sources model to audit "
                          "only the models' signals).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the cut points and shuffled futures.")] = 0,
    history: Annotated[int, typer.Option(help="Bars before each cut.")] = 600,
    future: Annotated[int, typer.Option(help="Bars after each cut.")] = 120,
    tolerance: Annotated[float, typer.Option(
        help="Relative difference still counted as equal (0: identical values).")] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Recompute every feature on truncated and future-perturbed copies of the data.

    Any value at or before a cut that changes is lookahead: it is listed with its source,
    feature, timeframe and the first bar where it differs (exit status 3). Sources: states,
    vector (template dimensions with higher-timeframe context), evolution (the evolution
    factory's features, or --builder's), match (template matches, with --run-id), user
    (--feature) and model (the standardised prediction of each --model replayed on its
    timeframe). The result is kept as <home>/audits/lookahead/<SYMBOL>.json (and
    lookahead.json beside --run-id's run), where the dashboard's research page shows it.
    """
    from stratforge.audit import audit_lookahead
    from stratforge.audit.lookahead import write_lookahead_report
    from stratforge.audit.sources import SOURCES

    options = dict(timeframes=_comma_list(timeframes), run_id=run_id, features=feature or (),
                   builder=builder, models=model or (), all_models=all_models,
                   sources=_comma_list(sources) or SOURCES, cuts=cuts, seed=seed,
                   history=history, future=future, tolerance=tolerance)
    if as_json:
        report = audit_lookahead(symbol, **options)
        write_lookahead_report(report)
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        with progress_bars() as progress:
            report = audit_lookahead(symbol, progress=progress, **options)
        write_lookahead_report(report)
        if report.findings:
            table = Table(title=f"Lookahead in {report.symbol} (times UTC)")
            for column in ("source", "feature", "tf", "first differing bar", "row",
                           "cut", "seen by", "cuts"):
                table.add_column(column, no_wrap=column != "feature",
                                 min_width=12 if column == "feature" else None,
                                 justify="right" if column in ("row", "cuts") else "left")
            for item in report.findings:
                table.add_row(item.source, item.feature, item.timeframe,
                              _short_time(item.first_bar), f"{item.first_bar_index:,}",
                              _short_time(item.cut), ",".join(item.checks),
                              f"{item.cuts}/{len(report.cuts)}")
            console.print(table)
        for line in report.skipped:
            console.print(f"not replayed: {line}", soft_wrap=True)
        console.print(report.summary_line(), soft_wrap=True)
    if not report.clean:
        raise typer.Exit(code=FOUND_EXIT_CODE)


@audit_app.command("null")
def null_command(
    run: Annotated[str, typer.Argument(help="The run id (a folder under <home>/runs).")],
    twins: Annotated[int, typer.Option("--twins", min=1,
                                       help="How many null twins of the run's data.")] = 10,
    method: Annotated[str, typer.Option(help="Twin method: sign (default) or blocks.")] = "sign",
    executor: Annotated[str | None, typer.Option(
        help="Executor for the twin runs (default: the run's own).")] = None,
) -> None:
    """Run the run's configuration on null twins of its data (same timestamps, sizes of moves
    and volume; no predictable direction) and write null_twins.json beside the run: what
    the pipeline finds where there is no edge. Twins already done are kept (resume)."""
    from stratforge.cli.recorded import given, recorded, tee
    from stratforge.names import check_run_id
    from stratforge.research.null_audit import audit_null, null_result

    check_run_id(run)  # a name that is not a run id stops here, before an operation exists
    parameters = given(run_id=run, twins=twins, method=method, executor=executor)
    with recorded(NULL_AUDIT_TYPE, parameters, metadata={"source": "cli", "run_id": run},
                  resume_hint=f"run `stratforge audit null {run} --twins {twins}` again "
                              "(done twins are kept)") as job:
        with progress_bars() as progress:
            block = audit_null(run, twins=twins, method=method, executor=executor,
                               progress=tee(progress, job.progress))
        job.result = null_result(block)
    print_null_block(block)


NULL_AUDIT_TYPE = "null_audit"
"""The operation type of ``stratforge audit null`` (``ops list --type null_audit``)."""


def print_null_block(block: dict) -> None:
    """The ``null_twins`` block as a table and three lines."""
    from stratforge.research.outputs import null_headline

    table = Table(title=f"{block['run_id']}: {null_headline(block)}")
    for column in ("tier", "real run", "twins with any", "strategies on twins"):
        table.add_column(column, justify="left" if column == "tier" else "right")
    for name, tier in block["tiers"].items():
        table.add_row(name, str(tier["real"]), f"{tier['twins_with_any']} of {block['twins']}",
                      str(tier["strategies"]))
    console.print(table)
    real, best = block["real"], block["best_twin"]
    console.print(f"best DSR: real {_num(real['best_dsr'])}, best twin {_num(best['dsr'])}; "
                  f"best out-of-sample Sharpe: real {_num(real['best_oos_sharpe'])}, best twin "
                  f"{_num(best['oos_sharpe'])}")
    console.print(f"{block['beats_the_twins']} real strateg"
                  f"{'y beats' if block['beats_the_twins'] == 1 else 'ies beat'} the twins "
                  f"(DSR above {_num(block['dsr_threshold'])}, the twins' 95th percentile)")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
