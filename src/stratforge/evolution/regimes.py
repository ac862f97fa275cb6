"""Regimes fitted on the training span only and applied forward.

- ``vol``: realised volatility (60 bars) against the terciles of the training span:
  ``low`` / ``normal`` / ``high``;
- ``gmm``: a 2-component Gaussian mixture on (one-bar log return, realised volatility),
  standardised with training-span statistics; components are named by their mean
  volatility, ``calm`` (lower) and ``turbulent``.

Nothing outside the training rows enters a fit, so the regimes never see the test span.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stratforge.errors import ConfigError

REGIME_LABELS: dict[str, tuple[str, ...]] = {"vol": ("low", "normal", "high"),
                                              "gmm": ("calm", "turbulent")}
REGIME_FEATURES: tuple[str, ...] = ("regime_vol", "regime_gmm", "regime_gmm_p")
VOL_FEATURE = "realised_vol_60"
RETURN_FEATURE = "logret_1"
GMM_MAX_ROWS = 20_000


@dataclass(frozen=True)
class Regimes:
    """Per-bar regime codes (-1 where the inputs are missing) and the turbulent probability."""

    vol: np.ndarray
    gmm: np.ndarray
    gmm_p: np.ndarray

    def codes(self, name: str) -> np.ndarray:
        """The code array of regime ``name`` (``vol`` or ``gmm``)."""
        if name not in REGIME_LABELS:
            raise ConfigError(f"unknown regime {name!r}; use one of "
                              f"{', '.join(REGIME_LABELS)}")
        return self.vol if name == "vol" else self.gmm


def fit_regimes(returns: np.ndarray, volatility: np.ndarray, train_rows: np.ndarray, *,
                seed: int) -> Regimes:
    """Fit both regimes on ``train_rows`` and label every bar (see the module docstring)."""
    from sklearn.mixture import GaussianMixture

    finite = np.isfinite(returns) & np.isfinite(volatility)
    train = train_rows[finite[train_rows]]
    if len(train) < 10:
        raise ConfigError(f"only {len(train)} training rows have a return and a volatility; "
                          "use a longer span to fit the regimes")
    low, high = np.quantile(volatility[train], [1 / 3, 2 / 3])
    vol = np.where(volatility <= low, 0, np.where(volatility <= high, 1, 2)).astype(np.int8)
    vol[~finite] = -1
    rng = np.random.default_rng(seed)
    sample = train if len(train) <= GMM_MAX_ROWS else np.sort(
        rng.choice(train, GMM_MAX_ROWS, replace=False))
    points = np.column_stack([returns, volatility])
    mean = points[sample].mean(axis=0)
    std = points[sample].std(axis=0)
    std[std == 0] = 1.0
    scaled = (points - mean) / std
    mixture = GaussianMixture(2, covariance_type="full", random_state=seed, n_init=1,
                              max_iter=200).fit(scaled[sample])
    turbulent = int(np.argmax(mixture.means_[:, 1]))
    proba = np.full(len(returns), np.nan)
    proba[finite] = mixture.predict_proba(scaled[finite])[:, turbulent]
    gmm = np.where(proba >= 0.5, 1, 0).astype(np.int8)
    gmm[~finite] = -1
    return Regimes(vol=vol, gmm=gmm, gmm_p=proba)


def parse_regime_rule(rule: str) -> tuple[str, list[str]] | None:
    """(regime, labels) of a rule such as ``vol=low,normal``; None for ``all``. ConfigError
    for an unknown regime or label."""
    if rule == "all":
        return None
    name, sep, values = rule.partition("=")
    name = name.strip()
    labels = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or name not in REGIME_LABELS or not labels:
        raise ConfigError(f"regime filter {rule!r} must be 'all' or REGIME=LABEL[,LABEL] with "
                          f"REGIME one of {', '.join(REGIME_LABELS)} (e.g. vol=low,normal or "
                          "gmm=calm)")
    known = REGIME_LABELS[name]
    unknown = [v for v in labels if v not in known]
    if unknown:
        raise ConfigError(f"regime filter {rule!r}: {', '.join(unknown)} not a {name} regime; "
                          f"use {', '.join(known)}")
    return name, labels


def regime_mask(regimes: Regimes, rule: str) -> np.ndarray | None:
    """Bars a regime rule keeps: ``all`` keeps every bar (None), ``vol=low,normal`` the bars
    in those regimes (see ``parse_regime_rule``)."""
    parsed = parse_regime_rule(rule)
    if parsed is None:
        return None
    name, labels = parsed
    known = REGIME_LABELS[name]
    codes = regimes.codes(name)
    return np.isin(codes, [known.index(v) for v in labels])
