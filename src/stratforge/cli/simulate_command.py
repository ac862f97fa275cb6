"""``stratforge simulate``: one set of exit rules on one timeframe, optionally explained."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from stratforge.cli.console import console
from stratforge.cli.cost_options import (
    Commission,
    FeeBps,
    SlippageTicks,
    SpreadTicks,
    cost_overrides,
)
from stratforge.errors import ConfigError, DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from stratforge.sim.params import ExitParams


SIGNAL_KIND_HELP = "roche, structure, cascade"
"""features.signals.SIGNAL_KINDS, written out so that help needs no numpy or pandas (a test
keeps the two equal)."""


def _parse_params(pairs: list[str]) -> ExitParams:
    from stratforge.sim.params import ExitParams

    fields = set(ExitParams.__dataclass_fields__)
    values: dict[str, float] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or key not in fields:
            raise ConfigError(f"--param {pair!r}: write NAME=VALUE with NAME one of "
                              f"{', '.join(sorted(fields))}")
        try:
            values[key] = float(raw)
        except ValueError as exc:
            raise ConfigError(f"--param {pair!r}: {raw!r} is not a number") from exc
    return ExitParams(**values)


def _entries_from_file(path: Path, bars: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Entries file: CSV or Parquet with a 'ts' (bar start, UTC) or 'bar' column and 'side'."""
    import numpy as np
    import pandas as pd

    if not path.exists():
        raise DataError(f"{path}: entries file not found")
    frame = pd.read_parquet(path) if path.suffix in (".parquet", ".pq") else pd.read_csv(path)
    if "side" not in frame.columns or not ({"ts", "bar"} & set(frame.columns)):
        raise DataError(f"{path}: an entries file needs a 'side' column (+1/-1) and a 'ts' "
                        "(bar start time) or 'bar' (bar position) column")
    if "bar" in frame.columns:
        positions = frame["bar"].to_numpy(dtype=np.int64)
    else:
        stamps = pd.to_datetime(frame["ts"], utc=True)
        positions = pd.Index(bars["ts"]).get_indexer(stamps)
        if (positions < 0).any():
            row = int(np.argmax(positions < 0))
            raise DataError(f"{path} row {row + 1}: no bar starts at {stamps.iloc[row]}; "
                            "entry times must be bar start times of the chosen timeframe")
    order = np.argsort(positions, kind="stable")
    return positions[order], frame["side"].to_numpy(dtype=np.int64)[order]


def _template_signals(symbol: str, timeframe: str, template: str, bars: pd.DataFrame,
                      threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Bars of the span matching ``template`` (vectors over the whole series, then sliced)."""
    import numpy as np

    from stratforge.discovery.library import TemplateLibrary, library_folder
    from stratforge.discovery.matching import library_hierarchy, match_template, timeframe_vectors

    folder = library_folder(symbol)
    if not (folder / "library.json").exists():
        raise DataError(f"--template {template}: no template library for {symbol.upper()} in "
                        f"{folder}; run `stratforge discover --symbol {symbol.upper()}` first")
    library = TemplateLibrary.load(folder)
    try:
        library.get(template)
    except KeyError as exc:
        raise ConfigError(f"--template: {exc.args[0]}") from exc
    vectors = timeframe_vectors(symbol, timeframe, library_hierarchy(library))
    first = int(np.searchsorted(vectors["ts"].to_numpy(), bars["ts"].to_numpy()[0]))
    window = vectors.iloc[first:first + len(bars)].reset_index(drop=True)
    return match_template(library, template, window, timeframe, threshold=threshold)


def simulate_command(
    symbol: Annotated[str, typer.Option("--symbol", "-s", help="Instrument symbol.")] = "MNQ",
    timeframe: Annotated[str, typer.Option(help="Bar timeframe, e.g. 1m, 5m, 1h.")] = "5m",
    start: Annotated[str | None, typer.Option(help="First bar time (UTC).")] = None,
    end: Annotated[str | None, typer.Option(help="End of the span (UTC, exclusive).")] = None,
    entries: Annotated[Path | None, typer.Option(
        help="CSV/Parquet of signals: ts or bar, and side (+1/-1).")] = None,
    template: Annotated[str | None, typer.Option(
        help="Signals from a template of the template library.")] = None,
    signal: Annotated[str, typer.Option(
        help=f"Signals from field states when no file or template: {SIGNAL_KIND_HELP}.")
    ] = "roche",
    param: Annotated[list[str] | None, typer.Option(
        help="Exit rule NAME=VALUE, repeatable (stop_ticks, target_ticks, ...).")] = None,
    fill: Annotated[str, typer.Option(help="close, next_open or delayed_mid.")] = "close",
    delay_bars: Annotated[int, typer.Option(help="Bars to the fill for delayed_mid.")] = 1,
    price_path: Annotated[str, typer.Option(help="ohlc or close.")] = "ohlc",
    regime_filter: Annotated[list[str] | None, typer.Option(
        help="Keep signals whose state COL is one of V,V (e.g. trend=RANGE); repeatable.")
    ] = None,
    commission: Commission = None,
    spread_ticks: SpreadTicks = None,
    slippage_ticks: SlippageTicks = None,
    fee_bps: FeeBps = None,
    quantity: Annotated[float, typer.Option(help="Contracts per trade.")] = 1.0,
    capital: Annotated[float, typer.Option(help="Capital for returns and drawdown %.")
                       ] = 100_000.0,
    threshold: Annotated[float, typer.Option(
        help="Template match: largest distance to the centroid (scaled units).")] = 3.0,
    explain: Annotated[bool, typer.Option(help="Print every step in words.")] = False,
    trades: Annotated[Path | None, typer.Option(help="Write the trades to CSV/Parquet.")
                      ] = None,
) -> None:
    """Simulate one set of exit rules on SYMBOL's TIMEFRAME bars; --explain says every step.

    Every trade pays the instrument's cost model; --commission, --spread-ticks,
    --slippage-ticks and --fee-bps override parts of it for this run."""
    from stratforge.data import load_bars
    from stratforge.features import compute_states
    from stratforge.features.signals import apply_regime_filters, parse_regime_filter, state_signals
    from stratforge.instruments import get_instrument
    from stratforge.sim.explain import SignalSource, explain_simulation

    instrument = get_instrument(symbol)
    costs = instrument.costs.with_overrides(
        **cost_overrides(commission, spread_ticks, slippage_ticks, fee_bps), quantity=quantity)
    bars = load_bars(symbol, timeframe, start, end)
    if len(bars) < 2:
        raise DataError(f"{symbol.upper()} {timeframe}: fewer than 2 bars in the chosen span")
    # states feed the field-state signals and the regime filters; templates use the cache
    needs_states = (entries is None and template is None) or bool(regime_filter)
    states = (compute_states(bars, tick_size=instrument.tick_size)
              if needs_states else None)
    if template is not None:
        positions, sides = _template_signals(symbol, timeframe, template, bars, threshold)
        description = f"template {template} matches (distance < {threshold:g})"
    elif entries is not None:
        positions, sides = _entries_from_file(entries, bars)
        description = str(entries)
    else:
        positions, sides = state_signals(states, signal)
        description = f"field-state signal '{signal}'"
    filters = [parse_regime_filter(text, list(states.columns)) for text in regime_filter or []]
    total = len(positions)
    positions, sides, blocked = apply_regime_filters(states, positions, sides, filters) \
        if filters else (positions, sides, 0)
    source = SignalSource(description, total,
                          " and ".join(f.describe() for f in filters) or None, blocked)
    run = explain_simulation(bars, positions, sides, _parse_params(param or []),
                             instrument=instrument,
                             costs=costs,
                             source=source, fill=fill, delay_bars=delay_bars,
                             price_path=price_path, capital=capital, timeframe=timeframe)
    if explain:
        for number, (heading, lines) in enumerate(run.steps, start=1):
            console.print(f"[bold]{number}. {heading}[/]")
            for line in lines:
                console.print(f"   {line}", highlight=False)
    else:
        table = Table(title=f"{symbol.upper()} {timeframe}: {source.description}")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for label, value in run.metrics.as_rows():
            table.add_row(label, value)
        console.print(table)
    if trades is not None:
        _write_trades(run.trades, trades)
        console.print(f"wrote {len(run.trades):,} trades to {trades}")


def _write_trades(frame: pd.DataFrame, path: Path) -> None:
    from stratforge.data.atomic import atomic_write_bytes

    if path.suffix in (".parquet", ".pq"):
        import io

        sink = io.BytesIO()
        frame.to_parquet(sink, index=False)
        atomic_write_bytes(path, sink.getvalue())
    else:
        atomic_write_bytes(path, frame.to_csv(index=False).encode())
