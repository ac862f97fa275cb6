"""What the optimisation of every template shares: patterns, markets, settings, the seeds.

:class:`OptimizeContext` holds the patterns, the instrument, the bars (loaded once per
timeframe, cut at the training end), the cost model and the settings; it turns member rows
into the simulator's inputs and scores exit vectors on them (:mod:`stratforge.discovery.worker`
does the array work). :func:`search_exits` is the template-level design of experiments that
both the optimiser (:mod:`stratforge.discovery.optimize`) and fission
(:mod:`stratforge.discovery.fission`) run. Rules: docs/discovery.md.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stratforge.data.bars import ts_ns
from stratforge.data.load import load_bars
from stratforge.data.resample import bar_end_times
from stratforge.discovery.doe import DesignSchedule, ParameterSpace, to_exit_params
from stratforge.discovery.library import Template, TemplateLibrary
from stratforge.discovery.patterns import ORACLE_LOOKAHEAD
from stratforge.discovery.worker import MarketArrays, kernel_matrix, member_points, score_points
from stratforge.errors import ConfigError
from stratforge.features.vectors import FEATURE_NAMES
from stratforge.instruments import Instrument
from stratforge.sim.fills import velocity_slip_ticks
from stratforge.sim.params import Costs
from stratforge.sim.session_flags import session_last_flags
from stratforge.timeframes import parse_timeframe

NEEDED_COLUMNS: tuple[str, ...] = ("pattern_id", "timeframe", "bar", "ts", "z", *FEATURE_NAMES)


def derived_seed(random_state: int, *keys: str) -> int:
    """A seed for one template or member, independent of processing order."""
    words = [int(random_state) & 0xFFFFFFFF, *(zlib.crc32(k.encode()) for k in keys)]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def even_positions(n: int, k: int) -> np.ndarray:
    """``min(n, k)`` positions spread evenly over ``0 .. n-1`` (both ends included)."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(np.int64))


class OptimizeContext:
    """Patterns, markets, the instrument and the settings shared by every template."""

    def __init__(self, library: TemplateLibrary, patterns: pd.DataFrame, symbol: str,
                 home: Path | str | None, instrument: Instrument,
                 bars: Mapping[str, pd.DataFrame] | None, settings: dict[str, Any]):
        missing = [c for c in NEEDED_COLUMNS if c not in patterns.columns]
        if missing:
            raise ConfigError(f"optimize_templates: the patterns frame lacks column(s) "
                              f"{', '.join(missing)} (docs/discovery.md, patterns frame)")
        ids = patterns["pattern_id"].astype(str)
        if ids.duplicated().any():
            raise ConfigError(f"optimize_templates: pattern_id must be unique; "
                              f"{ids[ids.duplicated()].iloc[0]!r} repeats")
        self.patterns = patterns.set_index(ids.to_numpy(), drop=False)
        self.library, self.symbol, self.home = library, symbol, home
        self.instrument, self.bars, self.settings = instrument, bars, settings
        end = settings["train_end"]
        self.end_ns = None if end is None else int(pd.Timestamp(end).value)
        self.tick = float(instrument.tick_size)
        self.costs: Costs = settings["costs_object"]
        self._markets: dict[str, MarketArrays] = {}

    def members(self, template: Template) -> pd.DataFrame:
        """The template's member rows, in time order (then pattern id)."""
        absent = [m for m in template.member_ids if m not in self.patterns.index]
        if absent:
            raise ConfigError(f"template {template.template_id}: {len(absent)} member(s) are "
                              f"not in the patterns frame (first {absent[0]!r}); pass the "
                              "patterns the library was built from")
        rows = self.patterns.loc[template.member_ids]
        return rows.sort_values(["ts", "pattern_id"], kind="stable")

    def market(self, timeframe: str) -> tuple[MarketArrays, np.ndarray]:
        """The timeframe's bar arrays and bar start times (loaded once); with a training end,
        only the bars that end by it (a trade still open on the last one exits there, as at
        the end of the data)."""
        if timeframe not in self._markets:
            frame = (self.bars[timeframe] if self.bars is not None and timeframe in self.bars
                     else load_bars(self.symbol, timeframe, home=self.home))
            stamps = ts_ns(frame)
            if self.end_ns is not None:
                ends = bar_end_times(stamps, parse_timeframe(timeframe),
                                     self.instrument.session)
                # bar ends rise with the starts: the training bars are a prefix
                keep = int(np.searchsorted(ends, self.end_ns, side="right"))
                frame, stamps = frame.iloc[:keep], stamps[:keep]
            prices = [np.ascontiguousarray(frame[c].to_numpy(dtype=np.float64))
                      for c in ("open", "high", "low", "close")]
            flags = session_last_flags(stamps, self.instrument.session)
            extra = velocity_slip_ticks(prices[3], self.tick, self.costs.velocity_slippage,
                                        self.costs.velocity_cap_ticks)
            self._markets[timeframe] = (MarketArrays(*prices, flags, self.tick,
                                                     float(self.instrument.point_value), extra),
                                        stamps)
        return self._markets[timeframe]

    def entries(self, rows: pd.DataFrame, timeframe: str) -> np.ndarray:
        """Signal bars of ``rows`` (one timeframe), checked against that timeframe's bars."""
        _market, stamps = self.market(timeframe)
        at = rows["bar"].to_numpy(dtype=np.int64)
        when = pd.to_datetime(rows["ts"], utc=True).dt.as_unit("ns").array.asi8
        if self.end_ns is not None and (at >= len(stamps)).any():
            late = rows["pattern_id"].astype(str).to_numpy()[at >= len(stamps)]
            raise ConfigError(f"{len(late)} member(s) of {timeframe} lie after the training end "
                              f"{self.settings['train_end']} (first {late[0]!r}); cluster "
                              "the training patterns only (span.training_patterns)")
        inside = (at >= 0) & (at < len(stamps))
        if not inside.all() or (stamps[at] != when).any():
            raise ConfigError(f"patterns of {timeframe} do not match the {timeframe} bars of "
                              f"{self.symbol} (bar positions or times differ); rerun "
                              "discovery on the current data")
        return at

    def space(self, members: pd.DataFrame) -> ParameterSpace:
        """The parameter space of a template (see ``ParameterSpace.from_scale``)."""
        def median_ticks(column: str) -> float:
            if column not in members.columns:
                return math.nan
            values = members[column].to_numpy(dtype=np.float64) / self.tick
            values = values[np.isfinite(values) & (values > 0)]
            return float(np.median(values)) if len(values) else math.nan
        sigma = median_ticks("sigma")
        mfe, mae = median_ticks("oracle_mfe"), median_ticks("oracle_mae")
        scale = next((v for v in (sigma, mfe) if math.isfinite(v)), 8.0)
        counts = members["timeframe"].astype(str).value_counts()
        main = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0] if len(counts) else "1m"
        return ParameterSpace.from_scale(scale, ORACLE_LOOKAHEAD.get(main, 60), mfe_ticks=mfe,
                                         mae_ticks=mae)

    def groups(self, rows: pd.DataFrame
               ) -> list[tuple[MarketArrays, np.ndarray, np.ndarray, np.ndarray]]:
        """(market, row positions, signal bars, fading sides) per timeframe of ``rows``,
        built once. A member is traded on the side that fades its own move, -sign(z), as
        matching trades a two-sided template."""
        tfs = rows["timeframe"].astype(str).to_numpy()
        fade = -np.sign(rows["z"].to_numpy(dtype=np.float64))
        out = []
        for tf in sorted(set(tfs.tolist())):
            cols = np.flatnonzero(tfs == tf)
            out.append((self.market(tf)[0], cols, self.entries(rows.iloc[cols], tf),
                        fade[cols]))
        return out

    def points(self, vectors: np.ndarray, groups: list, n_rows: int, direction: int,
               member_of_row: np.ndarray | None = None) -> np.ndarray:
        """Member PnL points: every vector on every row, or row r on ``member_of_row[r]``.
        A one-sided template (``direction`` +1 / -1) trades its side on every member; a
        two-sided one (0) each member's fading side."""
        matrix = kernel_matrix(to_exit_params(vectors, self.tick), self.costs)
        fill = self.settings["fill"]
        if member_of_row is None:
            out = np.full((len(matrix), n_rows), np.nan)
        else:
            out = np.full(len(matrix), np.nan)
        for market, cols, entries, fade in groups:
            sides = fade if direction == 0 else direction
            if member_of_row is None:
                out[:, cols] = member_points(market, entries, sides, matrix, fill=fill)
                continue
            local = np.full(n_rows, -1)
            local[cols] = np.arange(len(cols))
            sel = np.flatnonzero(local[member_of_row] >= 0)
            out[sel] = member_points(market, entries, sides, matrix[sel],
                                     member_of_row=local[member_of_row[sel]], fill=fill)
        return out

    def scaled(self, rows: pd.DataFrame) -> np.ndarray:
        """Scaled feature vectors of ``rows`` with the library's per-timeframe scalers."""
        out = np.empty((len(rows), len(FEATURE_NAMES)))
        tfs = rows["timeframe"].astype(str).to_numpy()
        for tf in sorted(set(tfs.tolist())):
            sel = tfs == tf
            out[sel] = self.library.scale(rows[sel], tf)
        return out


def search_exits(rows: pd.DataFrame, space: ParameterSpace, seed: int, direction: int,
                 ctx: OptimizeContext) -> tuple[np.ndarray, str]:
    """The best vector (and its phase) of a template-level design of experiments on ``rows``:
    ``iterations`` evaluations, the objective being the rows' pooled points per trade."""
    s = ctx.settings
    schedule = DesignSchedule(space, s["iterations"], seed)
    groups, n = ctx.groups(rows), len(rows)
    while not schedule.done:
        vectors = schedule.next_batch()
        schedule.tell(vectors, score_points(ctx.points(vectors, groups, n, direction),
                                            s["min_trades"]).score)
    best, _score, phase = schedule.best()
    return best, phase
