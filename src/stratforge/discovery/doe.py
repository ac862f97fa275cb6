"""A design-of-experiments schedule for exit parameters: baselines, Latin hypercube, mutation
around the best, crossover of the two best.

A parameter vector has five dimensions, in :data:`VECTOR_NAMES` order: ``stop_ticks``,
``target_ticks``, ``trail_tight_ticks``, ``trail_wide_ticks`` and ``max_hold_bars``. A
:class:`ParameterSpace` holds their bounds (scaled to a template's timeframe, see
:meth:`ParameterSpace.from_scale`), a few hand-set baselines and the repair rule every
generated vector goes through. :class:`DesignSchedule` hands out vectors in phases with an
ask/tell interface::

    schedule = DesignSchedule(space, iterations=60, random_state=0)
    while not schedule.done:
        vectors = schedule.next_batch()
        schedule.tell(vectors, score(vectors))
    vector, score, phase = schedule.best()

Everything is a pure function of the space, the iteration count, the seed and the scores told,
so a schedule replays identically. The rules are written down in docs/discovery.md
("Optimisation and fission").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import qmc

from stratforge.errors import ConfigError
from stratforge.sim.params import EXIT_PARAM_NAMES

VECTOR_NAMES: tuple[str, ...] = (
    "stop_ticks", "target_ticks", "trail_tight_ticks", "trail_wide_ticks", "max_hold_bars",
)
STOP, TARGET, TIGHT, WIDE, HOLD = range(5)
PHASES: tuple[str, ...] = ("baseline", "lhs", "mutation", "crossover")
MIN_ITERATIONS = 6
# Gaussian mutation scale, as a fraction of each dimension's range, one entry per round.
MUTATION_SCALES: tuple[float, ...] = (0.2, 0.1, 0.05)
# Blend crossover (BLX-alpha): each dimension drawn from [a - alpha*d, b + alpha*d].
BLEND_ALPHA = 0.25
# Scores within this relative distance of the best count as ties (see DesignSchedule.best).
TIE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class ParameterSpace:
    """Bounds, baselines and the repair rule for exit parameter vectors.

    Attributes:
        lower, upper: bounds per dimension (``VECTOR_NAMES`` order), whole numbers,
            ``lower >= 1`` and ``upper[target] > upper[stop]``.
        baselines: hand-set vectors (rows), repaired into the bounds on construction.
    """

    lower: np.ndarray
    upper: np.ndarray
    baselines: np.ndarray = field(default_factory=lambda: np.empty((0, len(VECTOR_NAMES))))

    def __post_init__(self) -> None:
        lower = np.asarray(self.lower, dtype=np.float64)
        upper = np.asarray(self.upper, dtype=np.float64)
        d = len(VECTOR_NAMES)
        if lower.shape != (d,) or upper.shape != (d,):
            raise ConfigError(f"ParameterSpace bounds need {d} values ({', '.join(VECTOR_NAMES)})")
        if not (np.isfinite(lower).all() and np.isfinite(upper).all()):
            raise ConfigError("ParameterSpace bounds must be finite")
        if (lower < 1).any() or (upper < lower).any():
            raise ConfigError(f"ParameterSpace bounds must satisfy 1 <= lower <= upper, got "
                              f"lower={lower.tolist()} upper={upper.tolist()}")
        if upper[TARGET] < upper[STOP] + 1 or upper[WIDE] < lower[TIGHT]:
            raise ConfigError("ParameterSpace: the target's upper bound must exceed the stop's "
                              "by at least one tick, and the wide trail must reach the tight "
                              "trail's lower bound")
        object.__setattr__(self, "lower", np.round(lower))
        object.__setattr__(self, "upper", np.round(upper))
        base = np.asarray(self.baselines, dtype=np.float64).reshape(-1, d)
        object.__setattr__(self, "baselines", self.repair(base))

    @classmethod
    def from_scale(cls, sigma_ticks: float, hold_bars: int, *, mfe_ticks: float | None = None,
                   mae_ticks: float | None = None) -> ParameterSpace:
        """The default space for a template, scaled to its timeframe.

        ``sigma_ticks`` (S) is the members' median ``sigma`` in ticks and ``hold_bars`` (L)
        the timeframe's oracle lookahead in bars. Bounds: stop [max(2, S/4), 4S], target
        [max(3, S/2), 8S], tight trail [max(2, S/4), 4S], wide trail [max(2, S/2), 8S],
        max hold [max(1, L/4), 2L]. Baselines (see docs/discovery.md): 1:2 (stop S, target
        2S), scalp (S/2, S), runner (1.5S, 6S, trailing), oracle (stop at the members'
        median MAE, target at their median MFE, when given) and wide (3S, 4S, no real trail).
        """
        s = float(sigma_ticks)
        if not np.isfinite(s) or s <= 0:
            raise ConfigError(f"sigma_ticks must be a positive number, got {sigma_ticks!r}")
        length = max(1, int(hold_bars))
        lower = [max(2.0, s / 4), max(3.0, s / 2), max(2.0, s / 4), max(2.0, s / 2),
                 max(1.0, length / 4)]
        upper = [max(4 * s, 4.0), max(8 * s, 8.0), max(4 * s, 4.0), max(8 * s, 8.0),
                 max(2.0 * length, 2.0)]
        upper = [max(hi, lo) for lo, hi in zip(lower, upper, strict=True)]
        baselines = [
            [s, 2 * s, s, 2 * s, length],                  # 1:2
            [s / 2, s, s / 2, s, length / 2],              # scalp
            [1.5 * s, 6 * s, s, 3 * s, 2 * length],        # runner
            [3 * s, 4 * s, 8 * s, 8 * s, length],          # wide, trail as loose as allowed
        ]
        if mfe_ticks and mae_ticks and np.isfinite(mfe_ticks) and np.isfinite(mae_ticks):
            baselines.insert(1, [mae_ticks, mfe_ticks, s, 2 * s, length])  # oracle
        return cls(np.asarray(lower), np.asarray(upper), np.asarray(baselines))

    @property
    def dimensions(self) -> int:
        """Number of dimensions of a vector."""
        return len(VECTOR_NAMES)

    def repair(self, vectors: np.ndarray) -> np.ndarray:
        """Round to whole ticks / bars, clip into the bounds, then keep the target above the
        stop (``target = max(target, stop + 1)``) and the wide trail at least the tight one
        (``wide = max(wide, tight)``). Returns a new array."""
        out = np.round(np.asarray(vectors, dtype=np.float64).reshape(-1, self.dimensions))
        out = np.clip(out, self.lower, self.upper)
        out[:, TARGET] = np.maximum(out[:, TARGET], out[:, STOP] + 1.0)
        out[:, WIDE] = np.maximum(out[:, WIDE], out[:, TIGHT])
        return out

    def normalize(self, vectors: np.ndarray) -> np.ndarray:
        """Vectors mapped to [0, 1] per dimension (a zero-width dimension maps to 0.5)."""
        span = self.upper - self.lower
        unit = (np.asarray(vectors, dtype=np.float64) - self.lower) / np.where(span > 0, span, 1)
        return np.where(span > 0, unit, 0.5)

    def from_unit(self, unit: np.ndarray) -> np.ndarray:
        """Points of the unit cube mapped onto the bounds (no repair)."""
        return self.lower + np.asarray(unit, dtype=np.float64) * (self.upper - self.lower)


def phase_sizes(iterations: int, n_baselines: int = 5) -> dict[str, int]:
    """Vectors per phase for ``iterations`` evaluations: baselines 10% (at least 3, at most
    5 and at most the ``n_baselines`` available), mutation 30% and crossover 10% (at least 1
    each), Latin hypercube the rest."""
    if iterations < MIN_ITERATIONS:
        raise ConfigError(f"iterations must be at least {MIN_ITERATIONS}, got {iterations}")
    base = min(max(3, round(0.1 * iterations)), 5, max(0, n_baselines))
    mutation = max(1, round(0.3 * iterations))
    crossover = max(1, round(0.1 * iterations))
    return {"baseline": base, "lhs": iterations - base - mutation - crossover,
            "mutation": mutation, "crossover": crossover}


def _steps(sizes: dict[str, int]) -> list[tuple[str, int, int]]:
    """(phase, size, round) of every batch; mutation runs in up to three rounds."""
    steps = [("baseline", sizes["baseline"], 0)] if sizes["baseline"] else []
    steps.append(("lhs", sizes["lhs"], 0))
    rounds = min(len(MUTATION_SCALES), sizes["mutation"])
    for r, part in enumerate(np.array_split(np.arange(sizes["mutation"]), rounds)):
        steps.append(("mutation", len(part), r))
    steps.append(("crossover", sizes["crossover"], 0))
    return steps


class DesignSchedule:
    """Ask/tell schedule of parameter vectors: baselines, Latin hypercube, mutation, crossover.

    ``next_batch()`` returns the next batch (rows = vectors, repaired into the space);
    ``tell(vectors, scores)`` records their scores (higher is better, NaN = worst) and must
    follow every batch before the next is asked for. Mutation batches centre on the best
    vector told so far, crossover on the two best, so the schedule adapts to the scores.
    """

    def __init__(self, space: ParameterSpace, iterations: int, random_state: int = 0, *,
                 tie_tolerance: float = 0.0):
        self.space = space
        self.tie_tolerance = float(tie_tolerance)
        self.iterations = int(iterations)
        self.sizes = phase_sizes(self.iterations, len(space.baselines))
        self._steps = _steps(self.sizes)
        self._rng = np.random.default_rng(random_state)
        self._step = 0
        self._pending: np.ndarray | None = None
        self._vectors: list[np.ndarray] = []
        self._scores: list[float] = []
        self._phases: list[str] = []

    @property
    def done(self) -> bool:
        """True once every batch has been asked for and told."""
        return self._step >= len(self._steps) and self._pending is None

    @property
    def phase(self) -> str | None:
        """The phase of the next batch (None when done)."""
        return self._steps[self._step][0] if self._step < len(self._steps) else None

    def next_batch(self) -> np.ndarray:
        """The vectors of the next batch (an array of shape (n, 5))."""
        if self._pending is not None:
            raise ConfigError("DesignSchedule: tell() the scores of the last batch first")
        if self._step >= len(self._steps):
            raise ConfigError("DesignSchedule: the schedule is finished")
        phase, size, round_ = self._steps[self._step]
        if phase == "baseline":
            batch = self.space.baselines[:size]
        elif phase == "lhs":
            batch = self.space.repair(self.space.from_unit(self._lhs(size)))
        elif phase == "mutation":
            batch = self._mutate(size, MUTATION_SCALES[round_])
        else:
            batch = self._crossover(size)
        self._pending = np.array(batch, dtype=np.float64)
        return self._pending.copy()

    def tell(self, vectors: np.ndarray, scores: np.ndarray) -> None:
        """Record the scores of the batch just asked for (same vectors, same order)."""
        if self._pending is None:
            raise ConfigError("DesignSchedule: no batch is waiting for scores")
        vectors = np.asarray(vectors, dtype=np.float64)
        values = np.asarray(scores, dtype=np.float64).reshape(-1)
        if vectors.shape != self._pending.shape or not np.array_equal(vectors, self._pending):
            raise ConfigError("DesignSchedule: tell() needs the vectors of the last batch")
        if len(values) != len(vectors):
            raise ConfigError(f"DesignSchedule: {len(values)} scores for {len(vectors)} vectors")
        phase = self._steps[self._step][0]
        for vector, value in zip(vectors, values, strict=True):
            self._vectors.append(vector)
            self._scores.append(float(value) if np.isfinite(value) else -np.inf)
            self._phases.append(phase)
        self._pending = None
        self._step += 1

    def history(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(vectors, scores, phases) of everything told so far, in order."""
        d = self.space.dimensions
        vectors = np.asarray(self._vectors, dtype=np.float64).reshape(-1, d)
        return vectors, np.asarray(self._scores, dtype=np.float64), list(self._phases)

    def ranking(self) -> np.ndarray:
        """Indices into ``history()`` from best to worst.

        Higher score first, except that every score within the tie tolerance of the best
        (``tie_tolerance``, at least ``TIE_TOLERANCE`` relative) counts as the best; tied
        vectors are ordered by their distance to the centre of the space in normalised units
        (the least extreme parameters the scores cannot tell apart), then by order told.
        """
        vectors, scores, _ = self.history()
        if len(scores) == 0:
            return np.empty(0, dtype=np.int64)
        top = float(scores.max())
        key = scores.copy()
        if np.isfinite(top):
            tolerance = max(self.tie_tolerance, TIE_TOLERANCE * max(1.0, abs(top)))
            key[scores >= top - tolerance] = top
        centre = np.linalg.norm(self.space.normalize(vectors) - 0.5, axis=1)
        return np.lexsort((np.arange(len(scores)), centre, -key))

    def best(self) -> tuple[np.ndarray, float, str]:
        """(vector, score, phase) of the best vector told so far (see ``ranking``)."""
        order = self.ranking()
        if len(order) == 0:
            raise ConfigError("DesignSchedule: no scores told yet")
        i = int(order[0])
        return self._vectors[i].copy(), self._scores[i], self._phases[i]

    def _lhs(self, size: int) -> np.ndarray:
        d = self.space.dimensions
        try:
            sampler = qmc.LatinHypercube(d, rng=self._rng)
        except TypeError:  # scipy < 1.15 names the argument seed
            sampler = qmc.LatinHypercube(d, seed=self._rng)
        return sampler.random(size)

    def _mutate(self, size: int, scale: float) -> np.ndarray:
        if not self._vectors:
            return self.space.repair(self.space.from_unit(
                self._rng.random((size, self.space.dimensions))))
        centre, _, _ = self.best()
        sd = scale * (self.space.upper - self.space.lower)
        return self.space.repair(centre + self._rng.normal(0.0, 1.0, (size, len(centre))) * sd)

    def _crossover(self, size: int) -> np.ndarray:
        vectors, _, _ = self.history()
        order = self.ranking()
        first = vectors[order[0]]
        others = [vectors[i] for i in order[1:] if not np.array_equal(vectors[i], first)]
        if not others:
            return self._mutate(size, MUTATION_SCALES[-1])
        second = others[0]
        low, high = np.minimum(first, second), np.maximum(first, second)
        spread = BLEND_ALPHA * (high - low)
        draws = self._rng.random((size, len(first)))
        return self.space.repair(low - spread + draws * (high - low + 2 * spread))


EXIT_COLUMNS: tuple[str, ...] = EXIT_PARAM_NAMES
"""The simulator's exit parameter names (``stratforge.sim.ExitParams`` field order)."""


def to_exit_params(vectors: np.ndarray, tick: float) -> np.ndarray:
    """Exit parameter rows (``EXIT_COLUMNS`` order) for design vectors.

    The two simulator parameters outside the vector are derived: the trail widens once the
    MFE reaches half the target distance (``trail_widen_points = target_ticks * tick / 2``)
    and trailing starts once the MFE covers the tight trail (``trail_activation_ticks =
    trail_tight_ticks``, so the first trailing level is at least break-even).
    """
    v = np.asarray(vectors, dtype=np.float64).reshape(-1, len(VECTOR_NAMES))
    out = np.empty((len(v), len(EXIT_COLUMNS)), dtype=np.float64)
    out[:, 0] = v[:, STOP]
    out[:, 1] = v[:, TARGET]
    out[:, 2] = v[:, TIGHT]
    out[:, 3] = v[:, WIDE]
    out[:, 4] = v[:, TARGET] * float(tick) / 2.0
    out[:, 5] = v[:, TIGHT]
    out[:, 6] = v[:, HOLD]
    return out
