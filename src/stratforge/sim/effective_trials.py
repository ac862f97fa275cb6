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
