"""Selection-bias statistics: probabilistic and deflated Sharpe ratios, and PBO by CSCV.

Pure numpy/scipy functions over per-period returns; every Sharpe ratio here is the
*per-observation* (not annualised) ratio ``mean / std(ddof=1)`` of the returns it came from.
Definitions and worked examples are in docs/metrics.md.

References
----------
- Bailey, D. H. and López de Prado, M. (2012). The Sharpe ratio efficient frontier.
  Journal of Risk 15(2), 3-44. (probabilistic Sharpe ratio)
- Bailey, D. H. and López de Prado, M. (2014). The deflated Sharpe ratio: correcting for
  selection bias, backtest overfitting and non-normality. Journal of Portfolio Management
  40(5), 94-107. (expected maximum Sharpe, deflated Sharpe ratio)
- Bailey, D. H., Borwein, J., López de Prado, M. and Zhu, Q. J. (2017). The probability of
  backtest overfitting. Journal of Computational Finance 20(4), 39-69. (CSCV, PBO)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from typing import NamedTuple

import numpy as np
from scipy import stats

from stratforge.errors import ConfigError

EULER_GAMMA = 0.5772156649015329
"""The Euler-Mascheroni constant used by the expected-maximum approximation."""

PerformanceMetric = Callable[[np.ndarray], np.ndarray]
"""Maps a (rows x configs) block of returns to one performance number per config."""


class ReturnMoments(NamedTuple):
    """The sample statistics the PSR and DSR need, measured on one return series."""

    sharpe: float      # mean / std(ddof=1), per observation
    n_obs: int
    skew: float        # biased (population) sample skewness
    kurtosis: float    # biased sample kurtosis, raw (normal = 3), not excess


def return_moments(returns: np.ndarray) -> ReturnMoments:
    """Sharpe ratio, length, skewness and raw kurtosis of one series of per-period returns.

    ``sharpe = mean / std(ddof=1)``; skewness and kurtosis are the plain moment ratios
    ``m3 / m2**1.5`` and ``m4 / m2**2`` (scipy's ``bias=True``; a normal sample gives 0 and 3).
    Raises ValueError for fewer than 2 finite values or a constant series.
    """
    values = np.asarray(returns, dtype=np.float64).ravel()
    if values.size < 2 or not np.isfinite(values).all():
        raise ValueError(f"need at least 2 finite returns, got {values.size} values "
                         f"({int((~np.isfinite(values)).sum())} not finite)")
    std = float(values.std(ddof=1))
    if std <= 1e-12 * float(np.abs(values).max()):
        raise ValueError("returns are constant: the Sharpe ratio, skewness and kurtosis are "
                         "undefined")
    return ReturnMoments(float(values.mean()) / std, int(values.size),
                         float(stats.skew(values, bias=True)),
                         float(stats.kurtosis(values, fisher=False, bias=True)))


def probabilistic_sharpe_ratio(sharpe: float, n_obs: int, skew: float = 0.0,
                               kurtosis: float = 3.0, benchmark_sharpe: float = 0.0) -> float:
    """Probability that the true Sharpe ratio exceeds ``benchmark_sharpe`` (Bailey & LdP 2012).

    ``PSR = Phi((SR - SR*) * sqrt(n - 1) / sqrt(1 - skew * SR + (kurtosis - 1) / 4 * SR**2))``
    with ``SR`` and ``SR*`` per-observation (not annualised) Sharpe ratios measured on
    ``n_obs`` returns, ``skew`` their skewness and ``kurtosis`` their *raw* kurtosis (3 for
    normal returns, not the excess kurtosis 0). Raises ValueError for ``n_obs < 2``, non-finite
    inputs, or ``kurtosis < 1 + skew**2`` (no distribution has such moments).
    """
    values = (sharpe, skew, kurtosis, benchmark_sharpe)
    if not all(math.isfinite(float(v)) for v in values):
        raise ValueError(f"PSR inputs must be finite, got sharpe={sharpe}, skew={skew}, "
                         f"kurtosis={kurtosis}, benchmark_sharpe={benchmark_sharpe}")
    if int(n_obs) != n_obs or n_obs < 2:
        raise ValueError(f"n_obs must be an integer >= 2, got {n_obs}")
    if kurtosis < 1.0 + skew * skew - 1e-9:
        raise ValueError(f"kurtosis {kurtosis} < 1 + skew^2 = {1 + skew * skew}: impossible "
                         "moments (pass the raw kurtosis, 3 for normal returns, not the excess)")
    variance = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe
    numerator = (sharpe - benchmark_sharpe) * math.sqrt(n_obs - 1)
    if variance <= 0.0:  # only on the boundary kurtosis == 1 + skew^2: a degenerate limit
        z = math.copysign(math.inf, numerator) if numerator else 0.0
    else:
        z = numerator / math.sqrt(variance)
    return float(stats.norm.cdf(z))


def expected_max_sharpe(n_trials: float, sharpe_variance: float) -> float:
    """Expected maximum Sharpe ratio of ``n_trials`` skill-less trials (Bailey & LdP 2014).

    ``E[max SR] = sqrt(V) * ((1 - g) * Phi^-1(1 - 1/N) + g * Phi^-1(1 - 1/(N e)))`` with ``V``
    the variance of the Sharpe ratios across the trials and ``g`` the Euler-Mascheroni constant.
    ``N`` may be fractional (an *effective* number of independent trials). Exactly 0 for one
    trial (nothing was selected), and never below 0 (the approximation dips below it for
    ``N`` just above 1). Raises ConfigError for ``n_trials < 1`` or a negative or
    non-finite variance.
    """
    if not (math.isfinite(float(n_trials)) and n_trials >= 1):
        raise ConfigError(f"n_trials must be a number >= 1, got {n_trials}")
    if not (math.isfinite(sharpe_variance) and sharpe_variance >= 0.0):
        raise ConfigError(f"sharpe_variance must be finite and >= 0, got {sharpe_variance}")
    if n_trials == 1:
        return 0.0
    n = float(n_trials)
    spread = ((1.0 - EULER_GAMMA) * stats.norm.ppf(1.0 - 1.0 / n)
              + EULER_GAMMA * stats.norm.ppf(1.0 - 1.0 / (n * math.e)))
    # the approximation dips below zero just above one trial; the maximum of one is its mean
    return float(math.sqrt(sharpe_variance) * max(0.0, spread))


def deflated_sharpe_ratio(returns: np.ndarray | ReturnMoments | None = None, *, n_trials: float,
                          sharpe_variance: float, sharpe: float | None = None,
                          n_obs: int | None = None, skew: float = 0.0,
                          kurtosis: float = 3.0) -> float:
    """PSR of the selected strategy against the Sharpe ratio luck alone would have produced.

    ``DSR = PSR(SR, n, skew, kurtosis, benchmark = expected_max_sharpe(n_trials, V))``.
    Give either ``returns`` (the selected strategy's per-period returns, or their
    ``ReturnMoments``) or ``sharpe`` and ``n_obs`` (with ``skew`` and raw ``kurtosis``, default
    normal). ``sharpe_variance`` is the variance across all ``n_trials`` trials of their
    per-observation Sharpe ratios, on the same frequency as ``returns``: an annualised Sharpe
    must be divided by sqrt(periods per year), its variance by periods per year. With one
    trial the DSR equals the PSR against zero.
    """
    if returns is not None and sharpe is not None:
        raise ValueError("give either returns or sharpe/n_obs, not both")
    if returns is None:
        if sharpe is None or n_obs is None:
            raise ValueError("give returns, or sharpe and n_obs (with skew and kurtosis)")
        moments = ReturnMoments(float(sharpe), int(n_obs), float(skew), float(kurtosis))
    elif isinstance(returns, ReturnMoments):
        moments = returns
    else:
        moments = return_moments(returns)
    threshold = expected_max_sharpe(n_trials, sharpe_variance)
    return probabilistic_sharpe_ratio(moments.sharpe, moments.n_obs, moments.skew,
                                      moments.kurtosis, benchmark_sharpe=threshold)


def sharpe_metric(block: np.ndarray) -> np.ndarray:
    """Per-column ``mean / std(ddof=1)``: the default PBO performance metric.

    A column with zero spread scores ``+inf``, ``-inf`` or 0 by the sign of its mean; a column
    with fewer than two rows scores NaN (ranked as the worst).
    """
    if block.shape[0] < 2:
        return np.full(block.shape[1], np.nan)
    mean = block.mean(axis=0)
    std = block.std(axis=0, ddof=1)
    flat = std <= 1e-12 * np.abs(block).max(axis=0)
    ratio = mean / np.where(flat, 1.0, std)
    flat_score = np.where(mean > 0.0, np.inf, np.where(mean < 0.0, -np.inf, 0.0))
    return np.where(flat, flat_score, ratio)


def mean_metric(block: np.ndarray) -> np.ndarray:
    """Per-column mean return (PBO with it is unchanged by adding a constant to all returns)."""
    return block.mean(axis=0)


METRICS: dict[str, PerformanceMetric] = {"sharpe": sharpe_metric, "mean": mean_metric}


@dataclass(frozen=True)
class PBOResult:
    """Outcome of combinatorially symmetric cross-validation, one entry per combination.

    ``is_performance[k]`` is the in-sample metric of the configuration chosen in combination
    ``k`` and ``oos_performance[k]`` its out-of-sample metric: the performance-degradation
    pairs. ``best_config`` is the chosen column (the lowest index when several tie).
    """

    pbo: float                      # share of combinations with logit <= 0
    logits: np.ndarray              # lambda = ln(w / (1 - w)) per combination
    oos_relative_rank: np.ndarray   # w = OOS rank / (N + 1) per combination, in (0, 1)
    is_performance: np.ndarray
    oos_performance: np.ndarray
    best_config: np.ndarray
    n_splits: int
    n_configs: int
    degradation_slope: float        # least-squares OOS = a + b * IS; NaN if IS never varies
    degradation_intercept: float
    prob_oos_loss: float            # share of combinations whose chosen config loses OOS

    @property
    def n_combinations(self) -> int:
        """Number of in-sample/out-of-sample splits evaluated, C(S, S/2)."""
        return int(self.logits.size)

    @property
    def degradation_pairs(self) -> np.ndarray:
        """(IS, OOS) performance of the chosen configuration, one row per combination."""
        return np.column_stack([self.is_performance, self.oos_performance])


def _resolve_metric(metric: str | PerformanceMetric) -> PerformanceMetric:
    if callable(metric):
        return metric
    if metric not in METRICS:
        raise ConfigError(f"unknown PBO metric {metric!r}; use one of {', '.join(METRICS)} "
                          "or a function mapping a (rows x configs) array to one value per config")
    return METRICS[metric]


def _score(metric: PerformanceMetric, block: np.ndarray, n_configs: int) -> np.ndarray:
    score = np.asarray(metric(block), dtype=np.float64).ravel()
    if score.size != n_configs:
        raise ValueError(f"the PBO metric returned {score.size} values for {n_configs} configs")
    return score


def probability_of_backtest_overfitting(returns_matrix: np.ndarray, n_splits: int = 16,
                                        metric: str | PerformanceMetric = "sharpe") -> PBOResult:
    """Probability of backtest overfitting by CSCV (Bailey, Borwein, López de Prado, Zhu).

    ``returns_matrix`` holds T per-period returns (rows, in time order) of N parameter sets
    (columns). Rows are cut into ``n_splits`` = S contiguous blocks (``np.array_split``: when S
    does not divide T the first T mod S blocks get one extra row). For each of the C(S, S/2)
    ways to choose half the blocks as in-sample (the rest, in time order, out-of-sample):
    the configuration with the best in-sample ``metric`` is picked; its out-of-sample rank
    among all N (1 = worst, average ranks for ties) gives ``w = rank / (N + 1)`` and the logit
    ``lambda = ln(w / (1 - w))``. PBO is the share of combinations with ``lambda <= 0``: the
    in-sample winner did no better than the out-of-sample median. When several configurations
    tie for the best in-sample score their ``w`` is averaged (order-independent). NaN scores
    rank as the worst. ``metric`` is ``"sharpe"`` (per-column mean / std, default), ``"mean"``
    or a callable. Raises ConfigError for an odd or too small S, ValueError for a matrix that
    is not 2-D and finite, has fewer than 2 columns or fewer rows than S.
    """
    matrix = np.asarray(returns_matrix, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"returns_matrix must be 2-D (periods x configs), got {matrix.ndim}-D")
    n_rows, n_configs = matrix.shape
    if int(n_splits) != n_splits or n_splits < 2 or n_splits % 2:
        raise ConfigError(f"n_splits must be an even integer >= 2, got {n_splits}")
    if n_configs < 2:
        raise ValueError(f"PBO needs at least 2 configs (columns), got {n_configs}")
    if n_rows < n_splits:
        raise ValueError(f"returns_matrix has {n_rows} rows, fewer than n_splits={n_splits}: "
                         "use fewer splits or more periods")
    if not np.isfinite(matrix).all():
        raise ValueError("returns_matrix holds NaN or infinite returns: fill or drop them first")
    blocks = np.array_split(np.arange(n_rows), n_splits)
    membership = np.array([[b in chosen for b in range(n_splits)]
                           for chosen in combinations(range(n_splits), n_splits // 2)])
    n_comb = membership.shape[0]
    scorer = _block_scorer(matrix, blocks, metric)
    w, is_perf, oos_perf = np.empty(n_comb), np.empty(n_comb), np.empty(n_comb)
    best_config = np.empty(n_comb, dtype=np.int64)
    step = max(1, _CHUNK_ELEMENTS // (n_splits * n_configs))
    for lo in range(0, n_comb, step):
        part = slice(lo, lo + step)
        is_score, oos_score = scorer(membership[part]), scorer(~membership[part])
        is_rankable = np.where(np.isnan(is_score), -np.inf, is_score)
        best = is_rankable == is_rankable.max(axis=1, keepdims=True)
        ties = best.sum(axis=1)
        ranks = stats.rankdata(np.where(np.isnan(oos_score), -np.inf, oos_score),
                               method="average", axis=1)
        w[part] = (ranks * best).sum(axis=1) / ties / (n_configs + 1)
        best_config[part] = best.argmax(axis=1)
        is_perf[part] = np.take_along_axis(is_score, best_config[part, None], axis=1)[:, 0]
        oos_perf[part] = np.where(best, oos_score, 0.0).sum(axis=1) / ties
    logits = np.log(w / (1.0 - w))
    slope, intercept = _degradation_fit(is_perf, oos_perf)
    return PBOResult(pbo=float(np.mean(logits <= 0.0)), logits=logits, oos_relative_rank=w,
                     is_performance=is_perf, oos_performance=oos_perf, best_config=best_config,
                     n_splits=int(n_splits), n_configs=int(n_configs),
                     degradation_slope=slope, degradation_intercept=intercept,
                     prob_oos_loss=float(np.mean(oos_perf < 0.0)))


_CHUNK_ELEMENTS = 4_000_000  # bound on combinations x blocks x configs held at once


def _block_scorer(matrix: np.ndarray, blocks: list[np.ndarray],
                  metric: str | PerformanceMetric) -> Callable[[np.ndarray], np.ndarray]:
    """A function from a (combinations x S) block-membership mask to (combinations x N) scores.

    The built-in metrics combine per-block count, sum and centred sum of squares (Chan's
    parallel variance formula, as stable as a two-pass std) without copying rows; a callable
    metric is applied to the rows of each combination in turn.
    """
    n_configs = matrix.shape[1]
    if callable(metric) or metric not in METRICS:
        score = _resolve_metric(metric)

        def looped(members: np.ndarray) -> np.ndarray:
            return np.array([_score(score, matrix[np.concatenate(
                [blocks[b] for b in np.flatnonzero(row)])], n_configs) for row in members])
        return looped

    count = np.array([b.size for b in blocks], dtype=np.float64)
    total = np.stack([matrix[b].sum(axis=0) for b in blocks])            # S x N
    block_mean = total / count[:, None]
    squares = np.stack([((matrix[b] - matrix[b].mean(axis=0)) ** 2).sum(axis=0) for b in blocks])
    peak = np.stack([np.abs(matrix[b]).max(axis=0) for b in blocks])

    def combined(members: np.ndarray) -> np.ndarray:
        mask = members[:, :, None]                                      # C x S x 1
        n = (members * count).sum(axis=1)[:, None]                      # C x 1
        mean = np.where(mask, total, 0.0).sum(axis=1) / n                # C x N
        if metric == "mean":
            return mean
        spread = np.where(mask, squares + count[:, None] * (block_mean - mean[:, None, :]) ** 2,
                          0.0).sum(axis=1)
        std = np.sqrt(spread / np.maximum(n - 1.0, 1.0))
        flat = std <= 1e-12 * np.where(mask, peak, 0.0).max(axis=1)
        flat_score = np.where(mean > 0.0, np.inf, np.where(mean < 0.0, -np.inf, 0.0))
        score = np.where(flat, flat_score, mean / np.where(flat, 1.0, std))
        return np.where(n < 2.0, np.nan, score)  # one row: no spread to measure
    return combined


def _degradation_fit(is_perf: np.ndarray, oos_perf: np.ndarray) -> tuple[float, float]:
    """Least-squares line OOS = intercept + slope * IS over the finite pairs."""
    ok = np.isfinite(is_perf) & np.isfinite(oos_perf)
    x, y = is_perf[ok], oos_perf[ok]
    if x.size < 2:
        return math.nan, math.nan
    dx = x - x.mean()
    sxx = float(dx @ dx)
    if not sxx > 0.0:
        return math.nan, math.nan
    slope = float(dx @ (y - y.mean())) / sxx
    return slope, float(y.mean() - slope * x.mean())
