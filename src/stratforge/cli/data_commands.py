"""``stratforge data ...``: ingest, synthesize, build and inspect the ATLAS."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from stratforge.cli.console import console, progress_bars

if TYPE_CHECKING:
    from stratforge.data.atlas import BuildReport
    from stratforge.data.ingest import IngestReport


data_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                       help="Ingest, synthesize, build and inspect data.")

SymbolOption = Annotated[str, typer.Option("--symbol", "-s", help="Instrument symbol, e.g. MNQ.")]


def _print_ingest(report: IngestReport) -> None:
    for path, note in report.repairs.items():
        console.print(f"[yellow]repaired[/] {path}: {note}")
    if report.timeframe_source:
        console.print(report.describe_timeframe())
    if report.rebuilt_from:
        console.print(f"[yellow]rebuilt[/] {report.symbol}: its {report.rebuilt_from} bars and "
                      f"every timeframe built from them were replaced by "
                      f"{report.base_timeframe} bars")
    replaced = f", replaced {report.rows_replaced:,} stored bars" if report.rows_replaced else ""
    console.print(f"[green]stored[/] {report.rows_written:,} {report.base_timeframe} bars of "
                  f"{report.symbol} from {report.first} to {report.last} in "
                  f"{len(report.months_written)} month file(s){replaced}")


def _print_build(report: BuildReport) -> None:
    if report.skipped_timeframes:
        console.print(f"skipped {', '.join(report.skipped_timeframes)}: finer than the base "
                      f"timeframe {report.base_timeframe}")
    resumed = f", {report.months_resumed} resumed" if report.months_resumed else ""
    console.print(f"[green]atlas[/] {report.symbol}: {len(report.months_rebuilt)} of "
                  f"{report.months_total} month(s) rebuilt{resumed}; files written "
                  f"{report.files_written}, unchanged {report.files_unchanged}, deleted "
                  f"{report.files_deleted} ({report.seconds:.1f} s)")


def _duration(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _print_unbuilt(symbol: str) -> None:
    """Name the timeframes the atlas could build but has not (with the command that helps)."""
    from stratforge.data.load import store_base_timeframe, store_timeframes
    from stratforge.data.timeframe_choice import atlas_targets, missing_timeframes_message

    base = store_base_timeframe(symbol)
    if base is None:
        return
    held = store_timeframes(symbol)
    targets, _ = atlas_targets(base)
    unbuilt = [str(tf) for tf in targets if str(tf) not in held]
    if unbuilt:
        console.print(missing_timeframes_message(symbol, unbuilt, held, base))


def _print_info(symbol: str) -> None:
    from stratforge.data import atlas_info

    rows = atlas_info(symbol)
    table = Table(title=f"ATLAS {symbol.upper()}", caption="missing: trading weekdays without "
                  "bars; gap: longest pause within a trade date; stale: months to rebuild")
    for column in ("tf", "rows", "first (UTC)", "last (UTC)", "files", "missing", "gap",
                   "stale"):
        table.add_column(column, no_wrap=True,
                         justify="left" if "UTC" in column else "right")
    for row in rows:
        gap = "-" if row.max_gap_seconds is None else _duration(row.max_gap_seconds)
        table.add_row(row.timeframe, f"{row.rows:,}", row.first[:16].replace("T", " "),
                      row.last[:16].replace("T", " "), str(row.files),
                      "-" if row.missing_days is None else str(row.missing_days), gap,
                      str(row.stale_files) if row.stale_files else "")
    console.print(table)
    _print_unbuilt(symbol)
    if any(r.stale_files for r in rows):
        console.print(f"stale files: base bars changed since they were built; run "
                      f"`stratforge data atlas --symbol {symbol.upper()}`")


@data_app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="CSV, Parquet or DBN files of bars.")],
    symbol: SymbolOption,
    format: Annotated[str, typer.Option(help="auto, csv, parquet or dbn.")] = "auto",
    tz: Annotated[str | None, typer.Option(help="Zone of naive timestamps (default UTC).")] = None,
    timeframe: Annotated[str | None, typer.Option(
        help="Bar size of the files, 1s to 1D (default: detected from the bars' spacing)."
    )] = None,
    repair: Annotated[bool, typer.Option(
        help="Sort, drop repeated timestamps (keep last) and clip high/low.")] = False,
    replace: Annotated[bool, typer.Option(
        help="Replace stored bars the files overlap; for bars of another size than the "
             "store's base, rebuild the whole store from these files.")] = False,
    instrument_id: Annotated[int | None, typer.Option(
        help="DBN files: keep only this instrument id.")] = None,
) -> None:
    """Validate bar files (1s to daily bars) and add them to SYMBOL's store."""
    from stratforge.data import ingest_files
    from stratforge.data.timeframe_choice import atlas_targets

    with progress_bars() as progress:
        report = ingest_files(paths, symbol, fmt=format, tz=tz, repair=repair, replace=replace,
                              timeframe=timeframe, instrument_id=instrument_id,
                              progress=progress)
    _print_ingest(report)
    targets, _ = atlas_targets(report.base_timeframe)
    console.print(f"next: `stratforge data atlas --symbol {report.symbol}` to build "
                  f"{', '.join(map(str, targets))} from the {report.base_timeframe} bars")


@data_app.command()
def atlas(
    symbol: SymbolOption,
    timeframes: Annotated[str | None, typer.Option(
        help="Comma-separated timeframes to build (default: every one of 1s,5s,15s,1m,5m,"
             "15m,1h,4h,1D,1W at or above the base).")] = None,
) -> None:
    """Resample SYMBOL's base bars into every coarser timeframe (incremental, resumable)."""
    from stratforge.data import build_atlas
    from stratforge.timeframes import parse_timeframes

    with progress_bars() as progress:
        report = build_atlas(symbol, parse_timeframes(timeframes) if timeframes else None,
                             progress=progress)
    _print_build(report)


@data_app.command()
def info(symbol: Annotated[str | None, typer.Option(
        "--symbol", "-s", help="One symbol (default: all).")] = None) -> None:
    """Rows, span, missing trading days, largest gap and stale files per timeframe."""
    from stratforge.data import list_symbols

    symbols = [symbol] if symbol else list_symbols()
    if not symbols:
        console.print("no data yet: `stratforge data synth --symbol MNQ` makes a demo market")
    for name in symbols:
        _print_info(name)


@data_app.command()
def synth(
    symbol: SymbolOption = "MNQ",
    days: Annotated[int | None, typer.Option(
        help="Trading days to generate (default: the instrument's span, e.g. MNQ 60).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same bytes.")] = 7,
    kind: Annotated[str, typer.Option(
        help="realistic, null (no edge at all) or planted (a documented edge).")] = "realistic",
    resolution: Annotated[str | None, typer.Option(
        help="Bar size of the base bars (default: the instrument's, e.g. MNQ 1s, EURUSD 1h, "
             "AAPL 1D, BTCUSD 1m).")] = None,
    start: Annotated[datetime | None, typer.Option(
        formats=["%Y-%m-%d"], help="First trade date.")] = None,
    replace: Annotated[bool, typer.Option(help="Overwrite SYMBOL's existing data.")] = False,
) -> None:
    """Generate a synthetic market on SYMBOL's session calendar as its base bars."""
    from stratforge.data.demo import synthesize_into_store

    with progress_bars() as progress:
        report = synthesize_into_store(symbol, days=days, seed=seed, kind=kind,
                                       resolution=resolution,
                                       start=start.date() if start else None, replace=replace,
                                       progress=progress)
    _print_ingest(report)
