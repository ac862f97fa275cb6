"""The Bayesian brain: a table of Beta posteriors over win rates, keyed by state.

Every simulated outcome (a win or a loss) updates the posterior of its state; the state key
of a template on a timeframe is ``brain_key(template_id, timeframe)``, and every caller (the
sweep, the refiner, ...) must build keys with that one function so they never drift.

With the prior ``Beta(a, b)`` (default ``Beta(1, 1)``) and ``w`` wins, ``l`` losses, the
posterior is ``Beta(a + w, b + l)``. Definitions used by :meth:`BayesianBrain.should_fire`:

- *confidence* of a state is ``1 - (hi - lo)``, one minus the width of its equal-tailed
  credible interval at ``level`` (default 0.9): 0.1 for the flat prior, close to 1 after many
  observations;
- a state is *rarely seen* when it has fewer than ``min_samples`` (default 10) observations.

Rarely seen or not yet confident states are explored by a Thompson draw, never locked out.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import stats

from stratforge.data.atomic import atomic_write_bytes
from stratforge.errors import ConfigError, DataError
from stratforge.timeframes import parse_timeframe

__all__ = ["FRAME_COLUMNS", "BayesianBrain", "brain_key"]

FRAME_COLUMNS = ["key", "wins", "losses", "alpha", "beta", "mean", "lo", "hi"]
_METADATA_KEY = b"stratforge.brain"
_FORMAT_VERSION = 1


def brain_key(template_id: str, timeframe: str) -> str:
    """The brain key of a template on a timeframe: ``f"{template_id}_{timeframe}"``.

    The timeframe is normalised with :func:`stratforge.timeframes.parse_timeframe`, so
    ``"1d"`` and ``"1D"`` give the same key. The sweep and the refiner must both use this
    function. Raises ``ConfigError`` for an empty template id, one with whitespace, or an
    invalid timeframe.
    """
    if not isinstance(template_id, str) or not template_id:
        raise ConfigError(f"brain key: template id must be a non-empty string, got "
                          f"{template_id!r}")
    if any(ch.isspace() for ch in template_id):
        raise ConfigError(f"brain key: template id {template_id!r} contains whitespace; "
                          "use an id such as 'T0001'")
    if not isinstance(timeframe, str) or not timeframe or timeframe != timeframe.strip():
        raise ConfigError(f"brain key: timeframe must be a non-empty string without "
                          f"whitespace, got {timeframe!r}")
    return f"{template_id}_{parse_timeframe(timeframe).name}"


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise ConfigError(f"brain: a state key must be a non-empty string, got {key!r}")
    return key


def _check_level(level: float) -> float:
    if not (isinstance(level, int | float) and 0.0 < float(level) < 1.0):
        raise ConfigError(f"brain: credible level must lie strictly between 0 and 1, "
                          f"got {level!r}")
    return float(level)


def _as_rng(rng: np.random.Generator | int | None, what: str) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, int | np.integer) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise ConfigError(f"brain.{what}: pass rng=np.random.default_rng(seed) (or an int seed) "
                      f"so the draws are reproducible; got {rng!r}")


def _as_key_index(keys: Iterable[str], what: str) -> pd.Index:
    if isinstance(keys, str):
        raise ConfigError(f"brain.{what}: pass a sequence of keys, not the single string "
                          f"{keys!r}")
    index = pd.Index(list(keys), dtype=object)
    for key in index:
        _check_key(key)
    return index


class BayesianBrain:
    """A table of Beta posteriors of win probability, keyed by state (see module docstring).

    ``prior_alpha`` and ``prior_beta`` are the prior ``Beta(a, b)`` shared by every state;
    unseen states have exactly the prior as posterior.
    """

    def __init__(self, prior_alpha: float = 1.0, prior_beta: float = 1.0) -> None:
        for name, value in (("prior_alpha", prior_alpha), ("prior_beta", prior_beta)):
            if (not isinstance(value, int | float) or isinstance(value, bool)
                    or not math.isfinite(value) or value <= 0):
                raise ConfigError(f"brain: {name} must be a finite number > 0, got {value!r}")
        self.prior_alpha = float(prior_alpha)
        self.prior_beta = float(prior_beta)
        self._counts: dict[str, list[int]] = {}

    # ----- updates -------------------------------------------------------------------------

    def update(self, key: str, win: bool) -> None:
        """Record one outcome of ``key``: a win if ``win`` is true, else a loss."""
        if not isinstance(win, bool | np.bool_):
            raise ConfigError(f"brain.update: win must be a bool, got {win!r}")
        counts = self._counts.setdefault(_check_key(key), [0, 0])
        counts[0 if win else 1] += 1

    def batch_update(self, keys: Sequence[str], wins: Sequence[bool] | np.ndarray) -> None:
        """Record many outcomes at once; equal to calling :meth:`update` for each pair.

        ``wins`` holds booleans (or 0/1), one per key; the counts are aggregated per key.
        """
        index = _as_key_index(keys, "batch_update")
        outcome = np.asarray(wins)
        if outcome.ndim != 1 or len(outcome) != len(index):
            raise ConfigError(f"brain.batch_update: {len(index)} keys but wins has shape "
                              f"{outcome.shape}; pass one outcome per key")
        if outcome.dtype != bool:
            if outcome.size and not np.isin(outcome, (0, 1)).all():
                raise ConfigError("brain.batch_update: wins must be booleans (or 0/1)")
            outcome = outcome.astype(bool)
        won = outcome.astype(np.int64)
        self.batch_update_counts(index, won, 1 - won)

    def batch_update_counts(self, keys: Sequence[str], wins: Sequence[int] | np.ndarray,
                            losses: Sequence[int] | np.ndarray) -> None:
        """Add ``wins[i]`` wins and ``losses[i]`` losses to ``keys[i]`` (keys may repeat).

        Counts must be non-negative integers; rows with zero wins and zero losses are ignored.
        """
        index = _as_key_index(keys, "batch_update_counts")
        columns = {}
        for name, values in (("wins", wins), ("losses", losses)):
            array = np.asarray(values)
            if array.ndim != 1 or len(array) != len(index):
                raise ConfigError(f"brain.batch_update_counts: {len(index)} keys but {name} "
                                  f"has shape {array.shape}")
            if array.size and (array.dtype.kind not in "iub"
                               and not np.array_equal(array, np.floor(array))):
                raise ConfigError(f"brain.batch_update_counts: {name} must be integers")
            array = array.astype(np.int64)
            if (array < 0).any():
                raise ConfigError(f"brain.batch_update_counts: {name} must be >= 0")
            columns[name] = array
        if not len(index):
            return
        frame = pd.DataFrame(columns, index=index)
        totals = frame.groupby(level=0, sort=False).sum()
        totals = totals[(totals["wins"] + totals["losses"]) > 0]
        for key, w, n_l in zip(totals.index, totals["wins"].to_numpy(),
                               totals["losses"].to_numpy(), strict=True):
            counts = self._counts.setdefault(key, [0, 0])
            counts[0] += int(w)
            counts[1] += int(n_l)

    # ----- queries -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._counts)

    def __contains__(self, key: object) -> bool:
        return key in self._counts

    def keys(self) -> list[str]:
        """The states seen so far, in first-seen order."""
        return list(self._counts)

    def wins(self, key: str) -> int:
        """Number of wins recorded for ``key`` (0 when unseen)."""
        return self._counts.get(_check_key(key), [0, 0])[0]

    def losses(self, key: str) -> int:
        """Number of losses recorded for ``key`` (0 when unseen)."""
        return self._counts.get(_check_key(key), [0, 0])[1]

    def n(self, key: str) -> int:
        """Number of outcomes recorded for ``key`` (wins + losses)."""
        return self.wins(key) + self.losses(key)

    def posterior(self, key: str) -> tuple[float, float]:
        """``(alpha, beta)`` of the posterior ``Beta(prior_alpha + wins, prior_beta + losses)``."""
        w, n_l = self._counts.get(_check_key(key), [0, 0])
        return self.prior_alpha + w, self.prior_beta + n_l

    def _posteriors(self, keys: pd.Index) -> tuple[np.ndarray, np.ndarray]:
        counts = np.array([self._counts.get(k, (0, 0)) for k in keys],
                          dtype=np.float64).reshape(len(keys), 2)
        return self.prior_alpha + counts[:, 0], self.prior_beta + counts[:, 1]

    def mean(self, key: str) -> float:
        """Posterior mean win probability ``alpha / (alpha + beta)``."""
        a, b = self.posterior(key)
        return a / (a + b)

    def credible_interval(self, key: str, level: float = 0.9) -> tuple[float, float]:
        """Equal-tailed credible interval ``(lo, hi)`` of the win probability at ``level``."""
        tail = (1.0 - _check_level(level)) / 2.0
        a, b = self.posterior(key)
        lo, hi = stats.beta.ppf([tail, 1.0 - tail], a, b)
        return float(lo), float(hi)

    def confidence(self, key: str, level: float = 0.9) -> float:
        """``1 - (hi - lo)``: one minus the width of the credible interval at ``level``."""
        lo, hi = self.credible_interval(key, level)
        return 1.0 - (hi - lo)

    # ----- decisions -----------------------------------------------------------------------

    def sample(self, keys: Sequence[str], rng: np.random.Generator | int,
               size: int | None = None) -> np.ndarray:
        """Thompson draws: one posterior draw per key (shape ``(len(keys),)``), or ``size``
        independent rounds of draws (shape ``(size, len(keys))``). Unseen keys draw from the
        prior. Same keys, brain and seed give the same draws."""
        generator = _as_rng(rng, "sample")
        index = _as_key_index(keys, "sample")
        a, b = self._posteriors(index)
        if size is None:
            return generator.beta(a, b)
        if not isinstance(size, int) or size < 1:
            raise ConfigError(f"brain.sample: size must be a positive int, got {size!r}")
        return generator.beta(a, b, size=(size, len(index)))

    def should_fire(self, key: str, *, min_probability: float = 0.5,
                    min_confidence: float = 0.6, min_samples: int = 10, level: float = 0.9,
                    explore: bool = True,
                    rng: np.random.Generator | int | None = None) -> bool:
        """Whether to act on state ``key``.

        A state with at least ``min_samples`` outcomes and confidence (at ``level``) of at
        least ``min_confidence`` fires when its posterior mean is >= ``min_probability``.
        Any other state (unseen, rarely seen, or not yet confident) is explored: it fires
        when one Thompson draw from its posterior is >= ``min_probability`` (so an empty
        brain fires with probability ``P(Beta(a, b) >= min_probability)``). With
        ``explore=False`` such states never fire. Exploring needs ``rng`` (a Generator or an
        int seed).
        """
        if not 0.0 <= min_probability <= 1.0:
            raise ConfigError(f"brain.should_fire: min_probability must be in [0, 1], got "
                              f"{min_probability!r}")
        if not isinstance(min_samples, int) or min_samples < 0:
            raise ConfigError(f"brain.should_fire: min_samples must be an int >= 0, got "
                              f"{min_samples!r}")
        generator = _as_rng(rng, "should_fire") if explore else None
        if self.n(key) >= min_samples and self.confidence(key, level) >= min_confidence:
            return self.mean(key) >= min_probability
        if generator is None:
            return False
        a, b = self.posterior(key)
        return bool(generator.beta(a, b) >= min_probability)

    # ----- tables and files ----------------------------------------------------------------

    def to_frame(self, level: float = 0.9) -> pd.DataFrame:
        """One row per seen state, sorted by key: ``key, wins, losses, alpha, beta, mean,
        lo, hi`` (``lo``/``hi`` the equal-tailed credible interval at ``level``)."""
        tail = (1.0 - _check_level(level)) / 2.0
        keys = sorted(self._counts)
        wins = np.array([self._counts[k][0] for k in keys], dtype=np.int64)
        losses = np.array([self._counts[k][1] for k in keys], dtype=np.int64)
        alpha = self.prior_alpha + wins
        beta = self.prior_beta + losses
        return pd.DataFrame({
            "key": pd.Series(keys, dtype=object),
            "wins": wins,
            "losses": losses,
            "alpha": alpha.astype(np.float64),
            "beta": beta.astype(np.float64),
            "mean": alpha / (alpha + beta),
            "lo": stats.beta.ppf(tail, alpha, beta) if keys else np.empty(0),
            "hi": stats.beta.ppf(1.0 - tail, alpha, beta) if keys else np.empty(0),
        }, columns=FRAME_COLUMNS)

    def save(self, path: str | Path) -> None:
        """Write the brain to a Parquet file atomically; the prior lives in the file's
        key-value metadata under ``stratforge.brain``. No pickle."""
        frame = self.to_frame()
        table = pa.Table.from_pandas(frame, preserve_index=False)
        meta = json.dumps({"prior_alpha": self.prior_alpha, "prior_beta": self.prior_beta,
                           "format_version": _FORMAT_VERSION}).encode()
        table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                               _METADATA_KEY: meta})
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        atomic_write_bytes(Path(path), buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> BayesianBrain:
        """Read a brain written by :meth:`save`; a ``DataError`` names what is wrong."""
        source = str(path)
        try:
            table = pq.read_table(path, columns=["key", "wins", "losses"])
        except FileNotFoundError:
            raise DataError(f"brain file {source} does not exist", source=source) from None
        except (pa.ArrowException, KeyError, ValueError) as exc:
            raise DataError(f"brain file {source} is not a brain Parquet file: {exc}",
                            source=source, rule="format") from None
        raw = (table.schema.metadata or {}).get(_METADATA_KEY)
        if raw is None:
            raise DataError(f"brain file {source} has no 'stratforge.brain' metadata (the "
                            "prior); write it with BayesianBrain.save", source=source,
                            rule="metadata")
        try:
            meta = json.loads(raw)
            brain = cls(meta["prior_alpha"], meta["prior_beta"])
        except (ValueError, KeyError, TypeError, ConfigError) as exc:
            raise DataError(f"brain file {source}: bad prior metadata: {exc}", source=source,
                            rule="metadata") from None
        frame = table.to_pandas()
        if frame["key"].duplicated().any():
            row = int(np.flatnonzero(frame["key"].duplicated().to_numpy())[0])
            raise DataError(f"brain file {source}: row {row}: duplicate key "
                            f"{frame['key'].iloc[row]!r}", source=source, row=row,
                            rule="unique key")
        for row, (key, w, n_l) in enumerate(zip(frame["key"], frame["wins"], frame["losses"],
                                                strict=True)):
            if not isinstance(key, str) or not key or pd.isna(w) or pd.isna(n_l) or w < 0 \
                    or n_l < 0:
                raise DataError(f"brain file {source}: row {row}: need a non-empty key and "
                                f"counts >= 0, got {key!r}, {w!r}, {n_l!r}", source=source,
                                row=row, rule="counts")
            if w + n_l > 0:
                brain._counts[key] = [int(w), int(n_l)]
        return brain

    # ----- comparison ----------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BayesianBrain):
            return NotImplemented
        return (self.prior_alpha == other.prior_alpha and self.prior_beta == other.prior_beta
                and self._counts == other._counts)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"BayesianBrain(prior=Beta({self.prior_alpha:g}, {self.prior_beta:g}), "
                f"states={len(self)})")
