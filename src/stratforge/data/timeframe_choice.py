"""Which timeframes a store can give: the ATLAS targets of a base, default research timeframes
and one clear message for timeframes that are missing.

Everything here is pure (names and row counts in, names or text out), so commands can call it
with what they already know about a store; ``stratforge.data.load`` has the wrappers that read
a symbol's store.

A timeframe can be *built* from a base when every base bar lies inside exactly one bar of it:
the base itself, an intraday multiple of an intraday base (1m -> 5m, 1h -> 4h), 1D from any
intraday base, 1W from 1D or finer. Nothing finer than the base can ever be built.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from stratforge.data.resample import nests_into
from stratforge.timeframes import ATLAS_TIMEFRAMES, Timeframe, parse_timeframe, parse_timeframes

TIMEFRAME_LADDER: tuple[Timeframe, ...] = tuple(parse_timeframes("1m,5m,15m,1h,4h,1D,1W"))
"""The research timeframes, finest first, that default choices walk."""
DEFAULT_MIN_BARS = 300
"""Fewest bars a timeframe needs to be a default research timeframe. 300 keeps 4h on 60 trade
dates of CME futures (6 four-hour bars a day: 360) and 1W on ten years of daily bars (~520)."""
DEFAULT_LIMIT = 5
QUICK_LIMIT = 3

TimeframeLike = str | Timeframe


def _tf(value: TimeframeLike) -> Timeframe:
    return value if isinstance(value, Timeframe) else parse_timeframe(str(value))


def _names(timeframes: Iterable[TimeframeLike]) -> list[str]:
    return [str(tf) for tf in sorted({_tf(t) for t in timeframes})]


def can_build(base: TimeframeLike, target: TimeframeLike) -> bool:
    """True when the ATLAS can make ``target`` bars from ``base`` bars (see module docstring)."""
    base_tf, target_tf = _tf(base), _tf(target)
    return target_tf == base_tf or nests_into(base_tf, target_tf)


def atlas_targets(base: TimeframeLike,
                  requested: Sequence[TimeframeLike] | None = None) -> tuple[list[Timeframe],
                                                                            list[Timeframe]]:
    """The timeframes an ATLAS build makes from ``base``, and those it leaves out.

    ``requested`` None means every ATLAS timeframe the base can build (1s ... 1W); the ones it
    cannot build (finer than the base) are returned as left out. A requested timeframe that
    cannot be built is a ValueError naming it and the base. The base itself is never a target.
    """
    base_tf = _tf(base)
    if requested is None:
        targets = [tf for tf in ATLAS_TIMEFRAMES if tf != base_tf and can_build(base_tf, tf)]
        return targets, [tf for tf in ATLAS_TIMEFRAMES if not can_build(base_tf, tf)]
    wanted = sorted({_tf(t) for t in requested})
    refused = [tf for tf in wanted if not can_build(base_tf, tf)]
    if refused:
        raise ValueError(", ".join(map(str, refused)))
    return [tf for tf in wanted if tf != base_tf], []


def estimated_rows(base: TimeframeLike, base_rows: int, target: TimeframeLike) -> int:
    """A rough count of ``target`` bars built from ``base_rows`` bars of ``base``: the base
    rows times the ratio of the bar durations (1D counts as 24 hours, 1W as 7 days)."""
    base_tf, target_tf = _tf(base), _tf(target)
    return int(base_rows * base_tf.seconds // target_tf.seconds)


def choose_timeframes(rows: Mapping[str, int], base: TimeframeLike, *,
                      min_bars: int = DEFAULT_MIN_BARS,
                      limit: int = DEFAULT_LIMIT) -> tuple[str, ...]:
    """Default research timeframes from the row count of each timeframe.

    Walks ``TIMEFRAME_LADDER`` (1m 5m 15m 1h 4h 1D 1W) from the finest timeframe at or above
    ``base`` that the base can build, keeps those with at least ``min_bars`` rows in ``rows``
    (name -> rows; a missing name counts 0) and stops after ``limit`` of them. A 1s or 1m
    futures store of 60 trade dates gives ('1m', '5m', '15m', '1h', '4h'); two years of
    hourly FX ('1h', '4h', '1D'); ten years of daily bars ('1D', '1W').
    """
    counts = {str(_tf(name)): count for name, count in rows.items()}
    chosen = [str(tf) for tf in TIMEFRAME_LADDER
              if can_build(base, tf) and counts.get(str(tf), 0) >= min_bars]
    return tuple(chosen[:max(limit, 0)])


def quick_timeframes(timeframes: Sequence[TimeframeLike],
                     limit: int = QUICK_LIMIT) -> tuple[str, ...]:
    """The ``--quick`` subset of default timeframes: the ``limit`` finest (1m..4h -> 1m, 5m,
    15m; 1h, 4h, 1D unchanged). The finest timeframes hold the most bars, so the most trades:
    a short run needs them to have any statistical power (an edge that lives at one minute is
    invisible at one hour)."""
    return tuple(_names(timeframes)[:limit])


def missing_timeframes_message(symbol: str, wanted: Iterable[TimeframeLike],
                               present: Iterable[TimeframeLike] | Mapping[str, int],
                               base: TimeframeLike | None) -> str:
    """One message for ``wanted`` timeframes that ``symbol``'s store lacks.

    It names what is missing, what is stored (the base and every timeframe present) and what
    helps: ``stratforge data atlas --symbol X`` for timeframes the atlas can build from the
    base; for the others (finer than the base, or not a whole multiple of it) the timeframes
    that do exist, or ingesting finer bars. An empty store gets the ingest/synth commands.
    """
    sym = symbol.upper()
    held = _names(present)
    missing = [name for name in _names(wanted) if name not in held]
    if base is None or not held:
        return (f"{sym} has no bars yet; ingest a file with `stratforge data ingest FILE "
                f"--symbol {sym}` or make a synthetic market with `stratforge data synth "
                f"--symbol {sym}`")
    base_name = str(_tf(base))
    text = (f"{sym} has no {', '.join(missing) or 'missing'} bars (stored: base {base_name}; "
            f"timeframes {', '.join(held)})")
    buildable = [m for m in missing if can_build(base_name, m)]
    impossible = [m for m in missing if m not in buildable]
    hints = []
    if buildable:
        hints.append(f"run `stratforge data atlas --symbol {sym}` to build "
                     f"{', '.join(buildable)} from the {base_name} bars")
    if impossible:
        finer = [m for m in impossible if _tf(m) < _tf(base_name)]
        why = (f"finer than the base {base_name}" if finer == impossible else
               f"not built from {base_name} bars (finer than the base, or not a whole "
               "multiple of it)")
        hints.append(f"{', '.join(impossible)} cannot be made: the ATLAS builds only "
                     f"timeframes at or above the base, and {', '.join(impossible)} "
                     f"{'is' if len(impossible) == 1 else 'are'} {why}. Choose from the "
                     f"timeframes stored (e.g. --timeframes {','.join(held)}), or ingest "
                     f"{min(impossible, key=_tf)} or finer bars under another symbol")
    return text + "; " + "; ".join(hints)
