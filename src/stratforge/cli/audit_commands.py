"""``stratforge audit``: checks of a run's honesty on the user's own data."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from stratforge.cli.console import console, progress_bars

audit_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                        help="Audit a research run on the user's own data (null twins).")


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
    from stratforge.research.null_audit import audit_null

    with progress_bars() as progress:
        block = audit_null(run, twins=twins, method=method, executor=executor,
                           progress=progress)
    table = Table(title=f"{block['run_id']}: on {block['twins']} null twins of your data")
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
