"""Entry signals read straight off field-engine states, and regime filters over states.

These are simple, documented signal sources for the explained simulation and for quick
experiments; the research pipeline's signals come from templates (discovery layer).

- ``roche``: fade a bar that enters a Roche zone: entering L2_ROCHE (z >= 2) goes short,
  entering L3_ROCHE (z <= -2) goes long.
- ``structure``: fade a confirmed structure (volume surge with |z| > 2.1): side -sign(z).
- ``cascade``: fade a cascade bar: side -sign(z).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stratforge.errors import ConfigError

SIGNAL_KINDS: tuple[str, ...] = ("roche", "structure", "cascade")


def state_signals(states: pd.DataFrame, kind: str = "roche") -> tuple[np.ndarray, np.ndarray]:
    """Signal bar positions (int64, increasing) and sides (+1/-1) of a signal ``kind``."""
    z = states["z"].to_numpy(dtype=np.float64)
    if kind == "roche":
        zone = states["zone"].astype(str).to_numpy()
        previous = np.concatenate(([""], zone[:-1]))
        entering = zone != previous
        short = entering & (zone == "L2_ROCHE")
        long = entering & (zone == "L3_ROCHE")
        mask = short | long
        sides = np.where(long, 1, -1)
    elif kind in ("structure", "cascade"):
        column = "structure_confirmed" if kind == "structure" else "cascade_detected"
        mask = states[column].fillna(False).to_numpy(dtype=bool) & np.isfinite(z) & (z != 0)
        sides = -np.sign(z)
    else:
        raise ConfigError(f"signal {kind!r} is not known; use one of {', '.join(SIGNAL_KINDS)}")
    entries = np.flatnonzero(mask).astype(np.int64)
    return entries, sides[entries].astype(np.int64)


@dataclass(frozen=True)
class RegimeFilter:
    """Keep signals whose state ``column`` takes one of ``values`` (e.g. trend in RANGE)."""

    column: str
    values: tuple[str, ...]

    def describe(self) -> str:
        """'trend in {RANGE, UP}'."""
        return f"{self.column} in {{{', '.join(self.values)}}}"


def parse_regime_filter(text: str, columns: list[str] | None = None) -> RegimeFilter:
    """Parse 'COL=V1,V2' (e.g. 'trend=RANGE' or 'zone=L2_ROCHE,L3_ROCHE')."""
    column, sep, values = text.partition("=")
    parts = tuple(v.strip() for v in values.split(",") if v.strip())
    if not sep or not column.strip() or not parts:
        raise ConfigError(f"regime filter {text!r} must look like COL=V1,V2 (e.g. trend=RANGE)")
    if columns is not None and column.strip() not in columns:
        raise ConfigError(f"regime filter {text!r}: no state column {column.strip()!r}; "
                          f"use one of {', '.join(columns)}")
    return RegimeFilter(column.strip(), parts)


def apply_regime_filters(states: pd.DataFrame, entries: np.ndarray, sides: np.ndarray,
                         filters: list[RegimeFilter]) -> tuple[np.ndarray, np.ndarray, int]:
    """Signals that pass every filter, and how many were blocked."""
    keep = np.ones(len(entries), dtype=bool)
    for rule in filters:
        values = states[rule.column].to_numpy()[entries]
        keep &= pd.Series(values).astype(str).isin(rule.values).to_numpy()
    return entries[keep], sides[keep], int((~keep).sum())
