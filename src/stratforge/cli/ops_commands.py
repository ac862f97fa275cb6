"""``stratforge ops ...`` and ``stratforge agent ...``: operations and the agent, through the
REST API (``--api URL``; else this home's server, else the API in process on the home's
database: see :mod:`stratforge.cli.api_client`; STRATFORGE_API_TOKEN for auth)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from stratforge.cli.api_client import ApiClient, items
from stratforge.cli.console import FriendlyErrors, console

ops_app = typer.Typer(cls=FriendlyErrors, no_args_is_help=True, rich_markup_mode=None,
                      help="Operations: list, show, cancel, retry.")
agent_app = typer.Typer(cls=FriendlyErrors, no_args_is_help=True, rich_markup_mode=None,
                        help="The agent research loop: trigger, status, cancel.")
ApiOption = Annotated[str | None, typer.Option(
    "--api", help="Base URL of the stratforge API [STRATFORGE_API_URL, else this home's "
                  "server, else the API in process on the home's database].")]
CYCLE_PHASES = ("designing", "training", "backtesting", "assessing", "completed")


def _progress_text(op: dict[str, Any]) -> str:
    progress = op.get("progress") or {}
    percent = progress.get("percent", 0.0) or 0.0
    step = progress.get("step") or ""
    return f"{percent:5.1f}% {step}".rstrip()


def _operations_table(operations: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    table.add_column("id", no_wrap=True)  # an id is copied from here: never broken
    for column in ("type", "status", "progress", "created", "parent"):
        table.add_column(column)
    for op in operations:
        table.add_row(op["id"], op["type"], op["status"], _progress_text(op),
                      (op.get("created_at") or "")[:19], op.get("parent_id") or "")
    return table


@ops_app.command("list")
def ops_list(
    op_type: Annotated[str | None, typer.Option("--type", help="Only this type.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    active: Annotated[bool, typer.Option("--active", help="Pending or running only.")
                      ] = False,
    limit: Annotated[int, typer.Option(help="At most this many (<= 1000).")] = 50,
    api: ApiOption = None,
) -> None:
    """Operations, newest first."""
    body = ApiClient(api).get("/operations", type=op_type, status=status,
                              active_only=active or None, limit=limit)
    operations = items(body, "operations")
    console.print(_operations_table(operations, f"{len(operations)} operation(s)"))


@ops_app.command("show")
def ops_show(operation_id: str, api: ApiOption = None) -> None:
    """One operation: status, progress, parameters, result, error and children."""
    client = ApiClient(api)
    op = client.get(f"/operations/{operation_id}")
    table = Table(title=f"{op['id']}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key in ("type", "status", "parent_id", "worker_id", "created_at", "started_at",
                "completed_at", "error"):
        if op.get(key) is not None:
            table.add_row(key, str(op[key]))
    message = (op.get("progress") or {}).get("message", "")
    table.add_row("progress", f"{_progress_text(op)} {message}".strip())
    table.add_row("parameters", str((op.get("metadata") or {}).get("parameters", {})))
    if op.get("result_summary") is not None:
        table.add_row("result", str(op["result_summary"]))
    console.print(table)
    kids = items(client.get(f"/operations/{operation_id}/children"), "operations")
    if kids:
        console.print(_operations_table(kids, "children"))


@ops_app.command("cancel")
def ops_cancel(operation_id: str, reason: Annotated[str, typer.Option(
        help="Why (kept in the operation's error field).")] = "cancelled from the CLI",
        api: ApiOption = None) -> None:
    """Cancel an operation and its active children."""
    op = ApiClient(api).request("DELETE", f"/operations/{operation_id}",
                                params={"reason": reason})
    console.print(f"{op['id']}: {op['status']}")


@ops_app.command("retry")
def ops_retry(operation_id: str, api: ApiOption = None) -> None:
    """Run a finished operation again, under a new id."""
    client = ApiClient(api)
    client.needs_worker("ops retry")
    op = client.request("POST", f"/operations/{operation_id}/retry")
    console.print(f"{op['id']}: {op['status']} (retry of {operation_id})")


def _overrides(pairs: list[str] | None) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--set {pair!r}: write FIELD=VALUE")
        out[key.strip()] = yaml.safe_load(raw)
    return out


def follow_cycle(client: ApiClient, operation_id: str, interval: float = 0.5) -> dict[str, Any]:
    """Nested progress of a cycle (its phase) and its current child, until it ends."""
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                  TextColumn("{task.percentage:>5.1f}%"), TextColumn("{task.fields[note]}"),
                  TimeElapsedColumn(), console=console) as progress:
        cycle = progress.add_task(f"cycle {operation_id}", total=100, note="")
        child_task = None
        child_id = None
        while True:
            op = client.get(f"/operations/{operation_id}")
            meta = op.get("metadata") or {}
            phase = meta.get("phase") or op["status"]
            index = CYCLE_PHASES.index(phase) if phase in CYCLE_PHASES else 0
            progress.update(cycle, completed=100.0 * index / (len(CYCLE_PHASES) - 1),
                            note=f"{phase}")
            current = meta.get("backtesting_op_id") if phase in ("backtesting", "assessing") \
                else meta.get("training_op_id")
            if current and current != child_id:
                child_id = current
                child_task = progress.add_task(f"  {phase} {current}", total=100, note="")
            if child_task is not None and child_id:
                child = client.get(f"/operations/{child_id}")
                progress.update(child_task, completed=(child.get("progress") or {}).get(
                    "percent", 0.0) if child["status"] != "completed" else 100,
                    note=f"{child['status']} {(child.get('progress') or {}).get('step', '')}")
            if op["status"] in ("completed", "failed", "cancelled"):
                if op["status"] == "completed":
                    progress.update(cycle, completed=100)
                return op
            time.sleep(interval)


@agent_app.command("trigger")
def agent_trigger(
    follow: Annotated[bool, typer.Option("--follow", help="Show progress until it ends.")
                      ] = False,
    bypass_gates: Annotated[bool, typer.Option("--bypass-gates", help="Skip both gates.")
                            ] = False,
    designer: Annotated[str | None, typer.Option(help="Designer name [thompson].")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Fix a spec field: FIELD=VALUE (YAML value), repeatable.")] = None,
    api: ApiOption = None,
) -> None:
    """Start a research cycle: design, train, gate, backtest, gate, assess."""
    client = ApiClient(api)
    client.needs_worker("agent trigger")
    body: dict[str, Any] = {"bypass_gates": bypass_gates, "overrides": _overrides(set_)}
    if designer:
        body["designer"] = designer
    started = client.request("POST", "/agent/trigger", json=body)
    operation_id = started.get("operation_id") or started.get("id")
    console.print(f"cycle {operation_id} queued")
    if follow:
        op = follow_cycle(client, operation_id)
        _print_status(client.get("/agent/status"))
        if op["status"] != "completed":
            raise typer.Exit(code=1)


def _print_status(status: dict[str, Any]) -> None:
    op = status.get("operation") or {}
    state = "active" if status.get("active") else "idle (last cycle)" if op else "idle"
    console.print(f"agent: {state}; phase {status.get('phase', 'idle')}")
    if op:
        console.print(f"cycle {op.get('id')}: {op.get('status')} {_progress_text(op)}")
    child = status.get("child")
    if child:
        console.print(f"child {child.get('id')} ({child.get('type')}): {child.get('status')} "
                      f"{_progress_text(child)}")
    strategy = status.get("strategy")
    if strategy:
        console.print(f"strategy: {strategy}")
    result = op.get("result_summary") if op else None
    if result:
        console.print(f"result: {result}")


@agent_app.command("status")
def agent_status(api: ApiOption = None) -> None:
    """The active cycle (phase, child, progress, strategy), or the last one."""
    _print_status(ApiClient(api).get("/agent/status"))


@agent_app.command("cancel")
def agent_cancel(api: ApiOption = None) -> None:
    """Cancel the active cycle and its running child."""
    body = ApiClient(api).request("DELETE", "/agent/cancel")
    op = (body or {}).get("operation") or body or {}
    console.print(f"cancelled {op.get('id', 'nothing')}" if op else "no active cycle")
