"""The effective number of independent trials behind a search.

A sweep of thousands of parameter sets is not thousands of independent tests: neighbouring
sets trade the same bars and their returns move together. The deflated Sharpe ratio needs
the number of *effectively independent* trials. :func:`effective_trials` estimates it from
the trials' return series (one column per trial, aligned in time, for example daily PnL) as
the participation ratio of their correlation matrix's eigenvalues::

    N_eff = (sum of eigenvalues)^2 / (sum of squared eigenvalues) = N^2 / trace(C @ C)

so ``N`` identical trials count as 1, ``k`` independent groups of identical trials as ``k``,
and ``N`` independent trials as ``N`` (less a small sampling bias for short series: sample
correlations of independent series are not exactly zero, which lowers the estimate). Trials
without enough observations or with no variation cannot be correlated with anything and are
left out (counted in ``dropped``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stratforge.errors import ConfigError

METHOD = "participation ratio of the trials' correlation eigenvalues"


@dataclass(frozen=True)
class EffectiveTrials:
    """Raw and effective trial counts.

    Attributes:
        raw: trials given (columns).
        used: trials with enough varying observations to enter the estimate.
        effective: the participation ratio over the used trials (1 <= effective <= used;
            0 when none is used).
        dropped: ``raw - used``.
        method: how ``effective`` was estimated.
    """

    raw: int
    used: int
    effective: float
    dropped: int
    method: str = METHOD

    def to_json(self) -> dict[str, object]:
        """A JSON-ready mapping."""
        return {"raw": self.raw, "used": self.used, "effective": self.effective,
                "dropped": self.dropped, "method": self.method}


def effective_trials(returns: np.ndarray, min_observations: int = 3) -> EffectiveTrials:
    """The effective number of independent trials of ``returns`` (rows = periods, columns =
    trials; NaN = no return that period, treated as 0 where the trial has enough data).

    A trial is used when it has at least ``min_observations`` finite values and a non-zero
    variance. See the module docstring for the estimate.
    """
    matrix = np.asarray(returns, dtype=np.float64)
    if matrix.ndim != 2:
        raise ConfigError(f"effective_trials needs a 2-D array (periods x trials), got shape "
                          f"{matrix.shape}")
    raw = int(matrix.shape[1])
    finite = np.isfinite(matrix)
    filled = np.where(finite, matrix, 0.0)
    enough = finite.sum(axis=0) >= max(2, int(min_observations))
    varies = filled.std(axis=0) > 1e-12 * np.maximum(np.abs(filled).max(axis=0), 1e-300)
    keep = enough & varies
    used = int(keep.sum())
    if used == 0:
        return EffectiveTrials(raw, 0, 0.0, raw)
    if used == 1:
        return EffectiveTrials(raw, 1, 1.0, raw - 1)
    corr = np.corrcoef(filled[:, keep], rowvar=False)
    effective = float(used * used / np.sum(corr * corr))  # trace(C @ C) = sum of C_ij^2
    return EffectiveTrials(raw, used, float(np.clip(effective, 1.0, used)), raw - used)


SAMPLED_METHOD = ("participation ratio N^2 / sum of squared correlations over all trials, the "
                  "sum estimated from a stratified sample of trials (each sampled pair stands "
                  "for the pairs of its strata), less the squared correlation independent "
                  "series show by chance (1 / (T - 1))")


def sampled_effective_trials(returns: np.ndarray, strata: np.ndarray,
                             population: dict[int, int], *, min_observations: int = 3,
                             noise_correction: bool = True) -> EffectiveTrials:
    """The effective number of independent trials of a population of trials, estimated from
    a stratified sample of their return series.

    ``returns`` holds T periods (rows) of m sampled trials (columns, NaN = 0 that period);
    ``strata[i]`` names the stratum of column i (for example its template and timeframe
    combo) and ``population[s]`` how many trials stratum s holds in all (at least as many as
    were sampled). The participation ratio of the whole population's correlation matrix,
    ``N^2 / sum_ab rho_ab^2``, needs the sum over every pair of trials; each sampled pair
    (i, j) stands for ``(N_s / m_s) (N_t / m_t)`` pairs across two strata and
    ``N_s (N_s - 1) / (m_s (m_s - 1))`` pairs inside one stratum (unbiased for the sum when
    each stratum is sampled without replacement). With ``noise_correction`` each sampled
    squared correlation first loses the ``1 / (T - 1)`` that independent series of T periods
    show by chance (its expectation under exchangeable returns), so N independent trials
    count about N rather than about T. A stratum with one usable sampled trial but more in
    its population takes the mean within-stratum squared correlation of the other strata (1
    when none has two). Sampling every trial (``population[s]`` = sampled count) gives the
    plain participation ratio. Unusable columns (fewer than ``min_observations`` finite
    values, or constant) are dropped; a stratum that keeps none counts in ``dropped``.
    """
    matrix = np.asarray(returns, dtype=np.float64)
    labels = np.asarray(strata)
    if matrix.ndim != 2 or labels.shape != (matrix.shape[1],):
        raise ConfigError(f"sampled_effective_trials needs a (periods x trials) array and one "
                          f"stratum per column, got shapes {matrix.shape} and {labels.shape}")
    raw = int(sum(population.get(s, 0) for s in set(labels.tolist())))
    if raw < matrix.shape[1] or any(population.get(s, 0) < int((labels == s).sum())
                                    for s in set(labels.tolist())):
        raise ConfigError("a stratum's population is smaller than its sample")
    finite = np.isfinite(matrix)
    filled = np.where(finite, matrix, 0.0)
    enough = finite.sum(axis=0) >= max(2, int(min_observations))
    varies = filled.std(axis=0) > 1e-12 * np.maximum(np.abs(filled).max(axis=0), 1e-300)
    keep = enough & varies
    kept_labels = labels[keep]
    groups = sorted(set(kept_labels.tolist()))
    used = int(sum(population[s] for s in groups))
    if used == 0:
        return EffectiveTrials(raw, 0, 0.0, raw, SAMPLED_METHOD)
    r2 = np.ones((1, 1)) if keep.sum() == 1 else np.corrcoef(filled[:, keep], rowvar=False) ** 2
    if noise_correction and matrix.shape[0] > 2:
        chance = 1.0 / (matrix.shape[0] - 1)
        r2 = (r2 - chance) / (1.0 - chance)
    np.fill_diagonal(r2, 0.0)
    # block sums of the squared correlations between (and within) strata in one product
    member = (kept_labels[:, None] == np.asarray(groups)[None, :]).astype(np.float64)
    blocks = member.T @ r2 @ member
    sizes = member.sum(axis=0)
    pop = np.asarray([population[s] for s in groups], dtype=np.float64)
    weight = pop / sizes
    multi = sizes > 1
    within = np.full(len(groups), np.nan)
    within[multi] = np.diag(blocks)[multi] / (sizes[multi] * (sizes[multi] - 1))
    fallback = float(within[multi].mean()) if multi.any() else 1.0
    within = np.where(multi, within, np.where(pop > 1, fallback, 0.0))
    total = float(used) + float((pop * (pop - 1) * within).sum())
    cross = np.outer(weight, weight) * blocks
    total += float(cross.sum() - np.trace(cross))
    total = float(np.clip(total, used, float(used) * used))
    return EffectiveTrials(raw, used, float(used * used / total), raw - used, SAMPLED_METHOD)
