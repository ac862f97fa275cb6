"""ANOVA factor analysis over sweep summaries: which factors move PnL per trade.

Input is a DataFrame of sweep summaries (one row per template x timeframe x parameter set,
the columns of :data:`stratforge.sim.backtest.SUMMARY_COLUMNS` plus the parameter columns and
``template`` / ``timeframe``). :func:`analyze` returns an :class:`AnovaResult` with

- ``one_way``: one row per factor, a one-way ANOVA of ``pnl_per_trade`` (``scipy.stats.f_oneway``)
  over the factor's groups with at least ``min_group_size`` rows, with eta squared
  ``SS_between / SS_total`` computed by hand over those rows;
- ``multi``: a multi-factor model (statsmodels OLS ``pnl_per_trade ~ C(f1) + C(f2) + ...``),
  its type II ANOVA table, classical eta squared ``sum_sq / SS_total`` and partial eta squared
  ``sum_sq / (sum_sq + SS_residual)``;
- ``top_combos``: (template, timeframe) combos ranked by mean ``sharpe_per_trade``.

:func:`write_anova` writes ``anova.json`` and ``anova_report.txt`` atomically. The rules are
written down in docs/search.md ("ANOVA factor analysis").
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from stratforge.data.atomic import atomic_write_bytes, atomic_write_json
from stratforge.errors import ConfigError

#: Factor name -> (source column, bucketed?). Categorical factors are used as they are;
#: numeric parameters are cut into quantile buckets. ``trail_regime`` is the MFE at which the
#: tight trail widens, in yardsticks (the caller derives ``trail_widen_yardsticks``; see
#: ``research.search_phases.anova_phase``): early, middle or late widening. Costs are never
#: factors: they are fixed for a run.
FACTORS: dict[str, tuple[str, bool]] = {
    "timeframe": ("timeframe", False),
    "template": ("template", False),
    "stop_bucket": ("stop_ticks", True),
    "target_bucket": ("target_ticks", True),
    "hold_bucket": ("max_hold_bars", True),
    "trail_regime": ("trail_widen_yardsticks", True),
}
MAX_MODEL_ROWS = 100_000
"""Rows the multi-factor model is fitted on at most (a seeded random sample beyond)."""
#: Parameter columns reported with the top combos (those present in the input).
PARAM_COLUMNS: tuple[str, ...] = ("stop_ticks", "target_ticks", "max_hold_bars",
                                  "trail_widen_points")
ONE_WAY_COLUMNS: tuple[str, ...] = (
    "factor", "column", "status", "n_rows", "n_groups", "F", "p_value", "eta_squared", "stars",
    "groups", "dropped_groups",
)
MULTI_COLUMNS: tuple[str, ...] = (
    "factor", "df", "sum_sq", "F", "p_value", "eta_squared", "partial_eta_squared", "stars",
)
TOP_COLUMNS: tuple[str, ...] = (
    "rank", "template", "timeframe", "n_param_sets", "mean_trades", "mean_sharpe_per_trade",
    "mean_pnl_per_trade", "param_sets",
)
JSON_NAME = "anova.json"
REPORT_NAME = "anova_report.txt"
FORMAT_VERSION = 1


def stars(p: float | None) -> str:
    """Significance stars: ``***`` p<0.001, ``**`` p<0.01, ``*`` p<0.05, ``.`` p<0.1, else ``""``.

    NaN or None gives ``""``.
    """
    if p is None or not math.isfinite(p):
        return ""
    if p < 0.001:
        return "***"
    if p < 0.01:
        return "**"
    if p < 0.05:
        return "*"
    if p < 0.1:
        return "."
    return ""


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def quantile_buckets(values: pd.Series, q: int = 4) -> pd.Series:
    """Quantile buckets of ``values`` as an ordered categorical labelled by their ranges.

    ``pd.qcut(values, q, duplicates="drop")``; the first bucket is closed ``[lo, hi]``, the
    others ``(lo, hi]``, with the real minimum as the lower edge. A constant column gives one
    bucket ``[v, v]``, and so does every value of a column with at most ``q`` distinct values
    (where ``qcut`` would merge values through tied edges); NaN stays NaN.
    """
    x = pd.to_numeric(values, errors="coerce").astype("float64")
    finite = x.dropna()
    if finite.empty:
        return pd.Series(pd.Categorical([None] * len(x)), index=values.index)
    distinct = np.sort(finite.unique())
    if len(distinct) <= q:
        # few distinct values: one bucket each (qcut would merge them through tied edges)
        labels = [f"[{_fmt(v)}, {_fmt(v)}]" for v in distinct]
        codes = np.where(x.notna(), np.searchsorted(distinct, x.fillna(distinct[0])), -1)
    else:
        codes_s, edges = pd.qcut(x, q, labels=False, retbins=True, duplicates="drop")
        labels = [f"[{_fmt(edges[0])}, {_fmt(edges[1])}]"]
        labels += [f"({_fmt(edges[i])}, {_fmt(edges[i + 1])}]" for i in range(1, len(edges) - 1)]
        codes = np.where(codes_s.notna(), codes_s.fillna(-1), -1).astype(int)
    cat = pd.Categorical.from_codes(codes, categories=labels, ordered=True)
    return pd.Series(cat, index=values.index)


def _prepare(summaries: pd.DataFrame, n_buckets: int) -> tuple[pd.DataFrame, int, list[str]]:
    """Rows kept (trades > 0, finite pnl_per_trade), the factor columns, excluded count, skipped."""
    for col in ("trades", "pnl_per_trade"):
        if col not in summaries.columns:
            raise ConfigError(f"sweep summaries need a {col!r} column; got "
                              f"{list(summaries.columns)}")
    trades = pd.to_numeric(summaries["trades"], errors="coerce")
    pnl = pd.to_numeric(summaries["pnl_per_trade"], errors="coerce").astype("float64")
    keep = (trades > 0) & np.isfinite(pnl)
    data = summaries.loc[keep].copy()
    data["pnl_per_trade"] = pnl[keep]
    data["trades"] = trades[keep]
    skipped = []
    for factor, (col, bucketed) in FACTORS.items():
        if col not in data.columns:
            skipped.append(factor)
            continue
        if bucketed:
            data[f"_f_{factor}"] = quantile_buckets(data[col], n_buckets)
        else:
            data[f"_f_{factor}"] = data[col].astype("string").astype("category")
    return data, int((~keep).sum()), skipped


def _eta_squared(groups: Sequence[np.ndarray]) -> float:
    """SS_between / SS_total over the pooled groups (NaN when SS_total is 0)."""
    pooled = np.concatenate(groups)
    grand = pooled.mean()
    ss_total = float(((pooled - grand) ** 2).sum())
    ss_between = float(sum(len(g) * (g.mean() - grand) ** 2 for g in groups))
    return ss_between / ss_total if ss_total > 0 else float("nan")


def _one_way(data: pd.DataFrame, skipped: list[str], min_group_size: int) -> pd.DataFrame:
    rows = []
    for factor, (col, _) in FACTORS.items():
        row: dict[str, Any] = {"factor": factor, "column": col, "n_rows": 0, "n_groups": 0,
                               "F": np.nan, "p_value": np.nan, "eta_squared": np.nan,
                               "stars": "", "groups": [], "dropped_groups": []}
        if factor in skipped:
            rows.append({**row, "status": "skipped: column absent"})
            continue
        y = data["pnl_per_trade"]
        grouped = y.groupby(data[f"_f_{factor}"], observed=True)
        kept, dropped, labels = [], [], []
        for label, values in grouped:
            if len(values) >= min_group_size:
                kept.append(values.to_numpy(dtype="float64"))
                labels.append(str(label))
            else:
                dropped.append(str(label))
        row.update(groups=labels, dropped_groups=dropped, n_groups=len(kept),
                   n_rows=int(sum(len(g) for g in kept)))
        if len(kept) < 2:
            rows.append({**row, "status": f"not testable: {len(kept)} group(s) with at least "
                                          f"{min_group_size} rows"})
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.f_oneway(*kept)
        p = float(res.pvalue)
        row.update(status="tested", F=float(res.statistic), p_value=p,
                   eta_squared=_eta_squared(kept), stars=stars(p))
        rows.append(row)
    return pd.DataFrame(rows, columns=list(ONE_WAY_COLUMNS))


def _multi(data: pd.DataFrame, skipped: list[str], max_rows: int | None = None,
           random_state: int = 0) -> tuple[pd.DataFrame, str]:
    """Type II ANOVA table of the additive OLS model; a note says what was fitted or why not.

    With more than ``max_rows`` rows the model is fitted on a uniform random sample of
    ``max_rows`` of them (``random_state``): the formula machinery and the type II fits grow
    with rows x levels, and a sample of that size still resolves any effect worth reading.
    """
    empty = pd.DataFrame(columns=list(MULTI_COLUMNS))
    names = [f for f in FACTORS if f not in skipped]
    sampled = ""
    if max_rows is not None and len(data) > max_rows:
        pick = np.sort(np.random.default_rng(random_state).choice(len(data), max_rows,
                                                                  replace=False))
        data = data.iloc[pick]
        sampled = f" (a random sample of {max_rows} rows)"
    frame = pd.DataFrame({"pnl_per_trade": data["pnl_per_trade"].to_numpy()})
    for f in names:
        frame[f] = data[f"_f_{f}"].astype("string").to_numpy()
    frame = frame.dropna()
    used = [f for f in names if frame[f].nunique() >= 2]
    if not used:
        return empty, "not fitted: no factor with at least 2 levels"
    n_params = 1 + sum(frame[f].nunique() - 1 for f in used)
    if len(frame) <= n_params:
        return empty, (f"not fitted: {len(frame)} rows for {n_params} model parameters")
    try:
        import statsmodels.api as sm
        import statsmodels.formula.api as smf
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError("the multi-factor ANOVA needs statsmodels: "
                          "pip install 'statsmodels>=0.14,<1'") from exc
    formula = "pnl_per_trade ~ " + " + ".join(f"C({f})" for f in used)
    model = smf.ols(formula, data=frame).fit()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = sm.stats.anova_lm(model, typ=2)
    y = frame["pnl_per_trade"].to_numpy(dtype="float64")
    ss_total = float(((y - y.mean()) ** 2).sum())
    ss_resid = float(table.loc["Residual", "sum_sq"])
    rows = []
    for idx, rec in table.iterrows():
        name = "Residual" if idx == "Residual" else str(idx)[2:-1]  # "C(f)" -> "f"
        ss = float(rec["sum_sq"])
        p = float(rec["PR(>F)"]) if name != "Residual" else float("nan")
        rows.append({
            "factor": name, "df": float(rec["df"]), "sum_sq": ss,
            "F": float(rec["F"]) if name != "Residual" else float("nan"), "p_value": p,
            "eta_squared": ss / ss_total if ss_total > 0 else float("nan"),
            "partial_eta_squared": (ss / (ss + ss_resid)
                                    if name != "Residual" and ss + ss_resid > 0
                                    else float("nan")),
            "stars": stars(p),
        })
    note = (f"fitted: {formula} on {len(frame)} rows{sampled}, R^2 = {model.rsquared:.4f}, "
            f"SS_total = {ss_total:.6g}")
    return pd.DataFrame(rows, columns=list(MULTI_COLUMNS)), note


def _top_combos(data: pd.DataFrame, min_trades: float, top_n: int,
                params_per_combo: int) -> tuple[pd.DataFrame, str]:
    empty = pd.DataFrame(columns=list(TOP_COLUMNS))
    missing = [c for c in ("template", "timeframe", "sharpe_per_trade") if c not in data.columns]
    if missing:
        return empty, f"not ranked: missing column(s) {missing}"
    params = [c for c in PARAM_COLUMNS if c in data.columns]
    frame = data.assign(sharpe_per_trade=pd.to_numeric(data["sharpe_per_trade"],
                                                       errors="coerce").astype("float64"))
    records = []
    for (template, timeframe), g in frame.groupby(["template", "timeframe"], sort=True,
                                                  dropna=False):
        mean_trades = float(g["trades"].mean())
        mean_sharpe = float(g["sharpe_per_trade"].mean())
        if mean_trades < min_trades or not math.isfinite(mean_sharpe):
            continue
        best = g.sort_values("sharpe_per_trade", ascending=False, kind="stable",
                             na_position="last").head(params_per_combo)
        param_sets = [{**{c: _plain(r[c]) for c in params},
                       "sharpe_per_trade": _plain(r["sharpe_per_trade"]),
                       "pnl_per_trade": _plain(r["pnl_per_trade"]),
                       "trades": _plain(r["trades"])} for _, r in best.iterrows()]
        records.append({"template": template, "timeframe": timeframe, "n_param_sets": len(g),
                        "mean_trades": mean_trades, "mean_sharpe_per_trade": mean_sharpe,
                        "mean_pnl_per_trade": float(g["pnl_per_trade"].mean()),
                        "param_sets": param_sets})
    if not records:
        return empty, f"no combo with mean trades >= {min_trades}"
    out = pd.DataFrame(records)
    out = out.sort_values(["mean_sharpe_per_trade", "mean_pnl_per_trade"],
                          ascending=[False, False], kind="stable").head(top_n)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out.reset_index(drop=True)[list(TOP_COLUMNS)], (
        f"ranked {len(records)} combo(s) with mean trades >= {min_trades}")


def _plain(x: Any) -> Any:
    """A JSON-friendly scalar: numpy -> Python, NaN/inf -> None."""
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if x is pd.NA or x is pd.NaT:
        return None
    return x


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in frame.to_dict(orient="records"):
        out.append({k: (v if isinstance(v, list | dict) else _plain(v)) for k, v in rec.items()})
    return out


@dataclass(frozen=True)
class AnovaResult:
    """The ANOVA factor analysis of one set of sweep summaries.

    ``one_way``: one row per factor (columns :data:`ONE_WAY_COLUMNS`); ``multi``: the type II
    table of the multi-factor model, factors then ``Residual`` (:data:`MULTI_COLUMNS`);
    ``top_combos``: (:data:`TOP_COLUMNS`); ``excluded_rows``: input rows left out because
    ``trades == 0`` or ``pnl_per_trade`` is NaN; ``n_rows``: rows analysed.
    """

    one_way: pd.DataFrame
    multi: pd.DataFrame
    top_combos: pd.DataFrame
    excluded_rows: int
    n_rows: int
    skipped_factors: list[str] = field(default_factory=list)
    multi_note: str = ""
    top_note: str = ""
    settings: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes null), the content of ``anova.json``."""
        return {
            "format_version": FORMAT_VERSION,
            "settings": dict(self.settings),
            "n_rows": self.n_rows,
            "excluded_rows": self.excluded_rows,
            "skipped_factors": list(self.skipped_factors),
            "one_way": _records(self.one_way),
            "multi": _records(self.multi),
            "multi_note": self.multi_note,
            "top_combos": _records(self.top_combos),
            "top_note": self.top_note,
        }

    def report(self) -> str:
        """The human-readable report written to ``anova_report.txt``."""
        return _report(self)


def analyze(summaries: pd.DataFrame, *, n_buckets: int = 4, min_group_size: int = 10,
            min_trades: float = 5, top_n: int = 20, params_per_combo: int = 5,
            max_model_rows: int | None = MAX_MODEL_ROWS, random_state: int = 0) -> AnovaResult:
    """Run the one-way and multi-factor ANOVA of ``pnl_per_trade`` and rank the combos.

    ``n_buckets`` quantile buckets per numeric parameter; one-way groups need
    ``min_group_size`` rows; top combos need mean trades ``>= min_trades`` and are ranked by
    mean ``sharpe_per_trade`` (the sweep's per-trade Sharpe, not annualised), ``top_n`` of them,
    each with its best ``params_per_combo`` parameter sets by ``sharpe_per_trade``.
    The multi-factor model is fitted on at most ``max_model_rows`` rows (a seeded uniform
    sample, ``random_state``; None = all); the one-way tests and the ranking use every row.
    """
    if not isinstance(summaries, pd.DataFrame):
        raise ConfigError(f"summaries must be a DataFrame, got {type(summaries).__name__}")
    if n_buckets < 1 or min_group_size < 1 or top_n < 0 or params_per_combo < 0:
        raise ConfigError("n_buckets and min_group_size must be >= 1; top_n and "
                          "params_per_combo >= 0")
    data, excluded, skipped = _prepare(summaries, n_buckets)
    one_way = _one_way(data, skipped, min_group_size)
    multi, multi_note = _multi(data, skipped, max_model_rows, random_state)
    top, top_note = _top_combos(data, min_trades, top_n, params_per_combo)
    settings = {"n_buckets": n_buckets, "min_group_size": min_group_size,
                "min_trades": min_trades, "top_n": top_n, "params_per_combo": params_per_combo,
                "max_model_rows": max_model_rows, "random_state": random_state}
    return AnovaResult(one_way=one_way, multi=multi, top_combos=top, excluded_rows=excluded,
                       n_rows=len(data), skipped_factors=skipped, multi_note=multi_note,
                       top_note=top_note, settings=settings)


def _num(x: Any, spec: str = ".4g") -> str:
    x = _plain(x)
    return "-" if x is None else format(x, spec)


def _report(result: AnovaResult) -> str:
    lines = ["ANOVA factor analysis of pnl_per_trade", "=" * 38, "",
             f"rows analysed: {result.n_rows}   excluded (trades == 0 or NaN pnl_per_trade): "
             f"{result.excluded_rows}",
             f"skipped factors (column absent): {', '.join(result.skipped_factors) or 'none'}",
             "", "One-way ANOVA (groups with at least "
             f"{result.settings.get('min_group_size')} rows)", "-" * 40,
             f"{'factor':<15}{'groups':>7}{'rows':>8}{'F':>12}{'p':>12}{'eta^2':>9}  status"]
    for r in result.one_way.itertuples(index=False):
        lines.append(f"{r.factor:<15}{r.n_groups:>7}{r.n_rows:>8}{_num(r.F):>12}"
                     f"{_num(r.p_value, '.3g'):>12}{_num(r.eta_squared, '.3f'):>9}  "
                     f"{r.stars:<4}{r.status}")
        if r.dropped_groups:
            lines.append(f"{'':<15}dropped groups (too small): {', '.join(r.dropped_groups)}")
    lines += ["", "Multi-factor model (OLS, type II ANOVA table)", "-" * 45, result.multi_note]
    if not result.multi.empty:
        lines.append(f"{'factor':<15}{'df':>5}{'sum_sq':>14}{'F':>12}{'p':>12}{'eta^2':>9}"
                     f"{'partial':>9}")
        for r in result.multi.itertuples(index=False):
            lines.append(f"{r.factor:<15}{r.df:>5.0f}{_num(r.sum_sq, '.6g'):>14}{_num(r.F):>12}"
                         f"{_num(r.p_value, '.3g'):>12}{_num(r.eta_squared, '.3f'):>9}"
                         f"{_num(r.partial_eta_squared, '.3f'):>9}  {r.stars}")
    lines += ["", "Top combos by mean sharpe_per_trade (per-trade, not annualised)", "-" * 62,
              result.top_note]
    for r in result.top_combos.itertuples(index=False):
        best = r.param_sets[0] if r.param_sets else {}
        best_text = ", ".join(f"{k}={_num(v)}" for k, v in best.items())
        lines.append(f"{r.rank:>3}. {r.template!s} @ {r.timeframe!s}: "
                     f"sharpe {_num(r.mean_sharpe_per_trade)}, "
                     f"pnl/trade {_num(r.mean_pnl_per_trade)}, trades {_num(r.mean_trades)}, "
                     f"{r.n_param_sets} param set(s); best: {best_text}")
    lines += ["", "Signif. codes: *** p<0.001  ** p<0.01  * p<0.05  . p<0.1", ""]
    return "\n".join(lines)


def write_anova(result: AnovaResult, folder: Path | str) -> tuple[Path, Path]:
    """Write ``anova.json`` and ``anova_report.txt`` into ``folder`` atomically; their paths."""
    folder = Path(folder)
    json_path, report_path = folder / JSON_NAME, folder / REPORT_NAME
    atomic_write_json(json_path, result.to_json())
    atomic_write_bytes(report_path, result.report().encode("utf-8"))
    return json_path, report_path
