"""Samplers of parameter sets over a :class:`~stratforge.search.space.ParameterSpace`.

Every sampler is seeded (``random_state``: an int, a ``numpy.random.Generator`` or None) and
returns a DataFrame with one column per parameter (in the space's order, int64 for int
parameters, float64 otherwise), one row per parameter set, every row repaired by
:meth:`ParameterSpace.repair`. The same int seed gives the identical frame.

* :func:`sample_uniform`: independent uniform draws;
* :func:`sample_latin_hypercube`: Latin hypercube (``scipy.stats.qmc.LatinHypercube``);
* :func:`sample_sobol`: scrambled Sobol (``scipy.stats.qmc.Sobol``);
* :func:`mutate`: Gaussian steps around a base set, sd = ``scale`` x each range;
* :func:`tpe_proposer`: Optuna's TPE given scored history (needs ``pip install optuna``).

The unit-cube samplers map to the space with :meth:`ParameterSpace.from_unit`. See
docs/search.md ("Parameter space and sampling").
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import qmc

from stratforge.errors import ConfigError
from stratforge.search.space import ParameterSpace

RandomState = int | np.random.Generator | None


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ConfigError(f"n (the number of parameter sets) must be a whole number >= 0, "
                          f"got {n!r}")
    return int(n)


def _rng(random_state: RandomState) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is not None and (isinstance(random_state, bool)
                                     or not isinstance(random_state, (int, np.integer))):
        raise ConfigError(f"random_state must be an int, a numpy Generator or None, got "
                          f"{random_state!r}")
    return np.random.default_rng(random_state)


def _finish(space: ParameterSpace, unit: np.ndarray) -> pd.DataFrame:
    return space.repair(space.from_unit(unit))


def unit_latin_hypercube(dimensions: int, n: int, random_state: RandomState = None) -> np.ndarray:
    """``n`` points of a Latin hypercube in [0, 1)^dimensions: in every dimension each of the
    ``n`` equal bins holds exactly one point. What :func:`sample_latin_hypercube` maps."""
    n = _check_n(n)
    if n == 0:
        return np.empty((0, dimensions))
    return qmc.LatinHypercube(d=dimensions, rng=_rng(random_state)).random(n)


def unit_sobol(dimensions: int, n: int, random_state: RandomState = None) -> np.ndarray:
    """The first ``n`` points of a scrambled Sobol sequence in [0, 1)^dimensions.

    Draws ``2**m`` points with ``m = ceil(log2(n))`` (``random_base2``, so scipy never warns
    about balance) and keeps the first ``n``. When ``n`` is a power of two the points are
    balanced: every dimension has exactly one point in each of the ``n`` equal bins; otherwise
    the first ``n`` of a balanced set (still low-discrepancy). What :func:`sample_sobol` maps.
    """
    n = _check_n(n)
    if n == 0:
        return np.empty((0, dimensions))
    m = max(0, math.ceil(math.log2(n)))
    engine = qmc.Sobol(d=dimensions, scramble=True, rng=_rng(random_state))
    return engine.random_base2(m)[:n]


def sample_uniform(space: ParameterSpace, n: int,
                   random_state: RandomState = None) -> pd.DataFrame:
    """``n`` parameter sets drawn independently and uniformly (ints: every value equally
    likely), then repaired."""
    n = _check_n(n)
    return _finish(space, _rng(random_state).random((n, space.dimensions)))


def sample_latin_hypercube(space: ParameterSpace, n: int,
                           random_state: RandomState = None) -> pd.DataFrame:
    """``n`` parameter sets from a Latin hypercube (:func:`unit_latin_hypercube`), repaired."""
    return _finish(space, unit_latin_hypercube(space.dimensions, n, random_state))


def sample_sobol(space: ParameterSpace, n: int,
                 random_state: RandomState = None) -> pd.DataFrame:
    """``n`` parameter sets from a scrambled Sobol sequence (:func:`unit_sobol`), repaired.
    Any ``n`` works; powers of two give balanced designs."""
    return _finish(space, unit_sobol(space.dimensions, n, random_state))


def mutation_steps(space: ParameterSpace, n: int, scale: float = 0.1,
                   random_state: RandomState = None) -> np.ndarray:
    """The raw Gaussian steps :func:`mutate` adds, shape (n, dimensions): column j has sd
    ``scale * (high_j - low_j)``. Drawn before any clipping, rounding or repair."""
    n = _check_n(n)
    s = float(scale)
    if not math.isfinite(s) or s < 0:
        raise ConfigError(f"scale must be a finite fraction >= 0 of each range, got {scale!r}")
    sd = s * (space.highs - space.lows)
    return _rng(random_state).standard_normal((n, space.dimensions)) * sd


def mutate(space: ParameterSpace, base: Mapping[str, float], n: int, scale: float = 0.1,
           random_state: RandomState = None) -> pd.DataFrame:
    """``n`` parameter sets around ``base``: each parameter moves by a Gaussian step with sd
    ``scale * (high - low)`` (:func:`mutation_steps`), then the set is clipped into bounds,
    ints rounded and repaired. ``base`` must give every parameter of the space (extra keys
    are an error, so a misspelt name is caught); it may lie outside the bounds."""
    if not isinstance(base, Mapping):
        raise ConfigError(f"base must be a mapping of parameter name to value, got "
                          f"{type(base).__name__}")
    missing = [name for name in space.names if name not in base]
    extra = [str(k) for k in base if k not in space.names]
    if missing or extra:
        raise ConfigError(f"base must give exactly the space's parameters "
                          f"({', '.join(space.names)}); missing: "
                          f"{', '.join(missing) or 'none'}; unknown: {', '.join(extra) or 'none'}")
    centre = []
    for name in space.names:
        try:
            value = float(base[name])
        except (TypeError, ValueError):
            raise ConfigError(f"base: {name} must be a number, got {base[name]!r}") from None
        if not math.isfinite(value):
            raise ConfigError(f"base: {name} must be finite, got {value}")
        centre.append(value)
    steps = mutation_steps(space, n, scale, random_state)
    values = np.asarray(centre) + steps
    return space.repair(pd.DataFrame(values, columns=list(space.names)))


def around(space: ParameterSpace, centre: Mapping[str, float], n: int, scale: float,
           random_state: RandomState = None) -> pd.DataFrame:
    """``n`` parameter sets around ``centre``: the centre itself (clipped into bounds,
    repaired) first, then ``n - 1`` Gaussian mutations of it (:func:`mutate`, sd ``scale``
    of each range). How a sweep seeds part of its sets at a template's optimum."""
    n = _check_n(n)
    first = mutate(space, centre, 1, 0.0, random_state=0)
    if n <= 1:
        return first.iloc[:n].reset_index(drop=True)
    rest = mutate(space, centre, n - 1, scale, random_state=random_state)
    return pd.concat([first, rest], ignore_index=True)


def tpe_proposer(space: ParameterSpace, history: pd.DataFrame | None = None,
                 scores: Sequence[float] | None = None, n: int = 1,
                 random_state: int | None = None, *,
                 direction: str = "maximize") -> pd.DataFrame:
    """``n`` parameter sets proposed by Optuna's TPE sampler, given scored history.

    ``history`` holds evaluated sets (the space's columns) and ``scores`` their scores,
    one per row (``direction`` "maximize" or "minimize"). Rows with a non-finite score or a
    value outside the space are left out (TPE cannot take them; their scores must not be
    credited to other values). Each proposal is asked with TPE's constant liar on, so a
    batch spreads out. Proposals are repaired. Optuna is optional: without it this raises a
    ConfigError saying ``pip install optuna``.
    """
    try:
        import optuna  # optional dependency
    except ImportError:
        raise ConfigError("tpe_proposer needs Optuna: pip install optuna") from None
    n = _check_n(n)
    if direction not in ("maximize", "minimize"):
        raise ConfigError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    distributions = {
        p.name: (optuna.distributions.IntDistribution(int(p.low), int(p.high))
                 if p.kind == "int" else
                 optuna.distributions.FloatDistribution(float(p.low), float(p.high)))
        for p in space.parameters
    }
    trials = []
    if history is not None and len(history):
        values = space.to_array(history, "tpe_proposer history")
        if scores is None or len(scores) != len(history):
            raise ConfigError("tpe_proposer: give one score per history row")
        score_arr = np.asarray(scores, dtype=np.float64)
        inside = ((values >= space.lows) & (values <= space.highs)).all(axis=1)
        whole = (values[:, space.is_int] == np.round(values[:, space.is_int])).all(axis=1)
        for row in np.flatnonzero(inside & whole & np.isfinite(score_arr)):
            params = {p.name: (int(values[row, j]) if p.kind == "int" else float(values[row, j]))
                      for j, p in enumerate(space.parameters)}
            trials.append(optuna.trial.create_trial(params=params, distributions=distributions,
                                                    value=float(score_arr[row])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant_liar is flagged experimental
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(seed=random_state, constant_liar=True)
        study = optuna.create_study(direction=direction, sampler=sampler)
        if trials:
            study.add_trials(trials)
        rows = [study.ask(distributions).params for _ in range(n)]
    frame = pd.DataFrame(rows, columns=list(space.names))
    return space.repair(frame.astype(np.float64))


SAMPLERS: dict[str, Callable[..., pd.DataFrame]] = {
    "uniform": sample_uniform,
    "lhs": sample_latin_hypercube,
    "sobol": sample_sobol,
}


def sample(space: ParameterSpace, n: int, method: str = "sobol",
           random_state: RandomState = None) -> pd.DataFrame:
    """Dispatch to a named sampler: ``"uniform"``, ``"lhs"`` or ``"sobol"``."""
    if method not in SAMPLERS:
        raise ConfigError(f"unknown sampler {method!r}; choose one of {', '.join(SAMPLERS)}")
    return SAMPLERS[method](space, n, random_state)
