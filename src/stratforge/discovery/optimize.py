"""Per-template exit optimisation with a design-of-experiments schedule, and fission.

``optimize_templates(library, patterns, symbol=...)`` fills every template's ``params`` with
the best exit parameters found on a representative subset of its members, splits templates
whose members want clearly different exits into children (``T0001`` -> ``T0001.1``,
``T0001.2``, ...; the parent is replaced by its children, which are optimised in the same
run) when the split is confirmed on members that were not used to find it, and
checkpoints after every batch of templates so a rerun resumes where the last one
stopped and gives the same result. With a training end (the library's ``train_end``) every
member must lie in the training span and the simulations see only the bars that end by it.
The rules are written down in docs/discovery.md ("Optimisation and fission"); the array
work runs in :mod:`stratforge.discovery.worker`.
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import ttest_1samp
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

from stratforge.config import resolve_home
from stratforge.data.atomic import atomic_write_json
from stratforge.data.bars import ts_ns
from stratforge.data.load import load_bars
from stratforge.data.resample import bar_end_times
from stratforge.discovery.doe import (
    EXIT_COLUMNS,
    STOP,
    TARGET,
    TIGHT,
    DesignSchedule,
    ParameterSpace,
    phase_sizes,
    to_exit_params,
)
from stratforge.discovery.library import Template, TemplateLibrary
from stratforge.discovery.patterns import ORACLE_LOOKAHEAD
from stratforge.discovery.span import utc_time
from stratforge.discovery.templates import member_arrays, summarize_members
from stratforge.discovery.worker import MarketArrays, kernel_matrix, member_points, score_points
from stratforge.errors import ConfigError
from stratforge.features.vectors import FEATURE_NAMES
from stratforge.instruments import Instrument, get_instrument
from stratforge.progress import ProgressCallback, no_progress
from stratforge.sim.fills import fill_offset, velocity_slip_ticks
from stratforge.sim.params import Costs
from stratforge.sim.session_flags import session_last_flags
from stratforge.timeframes import parse_timeframe

SILHOUETTE_MIN = 0.45
FISSION_KS: tuple[int, ...] = (2, 3, 4, 5)
MEMBERS_PER_CLUSTER = 5
MAX_FISSION_DEPTH = 2
FISSION_ALPHA = 0.01
FISSION_PROPOSALS: tuple[str, ...] = ("features", "exits")
"""How a candidate split is proposed: ``features`` (the feature and median cut that best
separates what the discovery members' own optima want), ``exits`` (KMeans on those optima)."""
MIN_HOLDOUT_PER_CHILD = 3
NEEDED_COLUMNS: tuple[str, ...] = ("pattern_id", "timeframe", "bar", "ts", "z", *FEATURE_NAMES)
CHECKPOINT_FILE = "checkpoint.json"
CHECKPOINT_FORMAT = "stratforge.optimization_checkpoint"
CHECKPOINT_VERSION = 3
REPORT_COLUMNS: tuple[str, ...] = (
    "template_id", "parent_id", "depth", "members", "members_used", "timeframes", "score",
    "mean_points", "trades", "win_rate", "sharpe_per_trade", "best_phase", *EXIT_COLUMNS,
    "fission_members", "split_feature", "discovery_gain", "silhouette", "k",
    "holdout_members", "holdout_gain", "holdout_p", "split", "children",
)


@dataclass(frozen=True)
class OptimizationResult:
    """What ``optimize_templates`` returns.

    Attributes:
        library: the library with ``params`` filled; split templates replaced by their
            children (in the parent's place), fission metadata under ``"optimization"``.
        report: one row per optimised template (split parents included), ``REPORT_COLUMNS``.
        splits: parent id -> child ids, for every template that split.
        fission_trials: candidate splits put to the held-out confirmation (kept or not);
            count them among the run's trials for deflation.
    """

    library: TemplateLibrary
    report: pd.DataFrame
    splits: dict[str, list[str]]
    fission_trials: int = 0


def _seed(random_state: int, *keys: str) -> int:
    """A seed for one template or member, independent of processing order."""
    words = [int(random_state) & 0xFFFFFFFF, *(zlib.crc32(k.encode()) for k in keys)]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def _even_positions(n: int, k: int) -> np.ndarray:
    """``min(n, k)`` positions spread evenly over ``0 .. n-1`` (both ends included)."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(np.int64))


class _Context:
    """Patterns, markets, the instrument and the settings shared by every template."""

    def __init__(self, library: TemplateLibrary, patterns: pd.DataFrame, symbol: str,
                 home: Path | str | None, instrument: Instrument,
                 bars: Mapping[str, pd.DataFrame] | None, settings: dict[str, Any]):
        missing = [c for c in NEEDED_COLUMNS if c not in patterns.columns]
        if missing:
            raise ConfigError(f"optimize_templates: the patterns frame lacks column(s) "
                              f"{', '.join(missing)} (docs/discovery.md, patterns frame)")
        ids = patterns["pattern_id"].astype(str)
        if ids.duplicated().any():
            raise ConfigError(f"optimize_templates: pattern_id must be unique; "
                              f"{ids[ids.duplicated()].iloc[0]!r} repeats")
        self.patterns = patterns.set_index(ids.to_numpy(), drop=False)
        self.library, self.symbol, self.home = library, symbol, home
        self.instrument, self.bars, self.settings = instrument, bars, settings
        end = settings["train_end"]
        self.end_ns = None if end is None else int(pd.Timestamp(end).value)
        self.tick = float(instrument.tick_size)
        self.costs: Costs = settings["costs_object"]
        self._markets: dict[str, MarketArrays] = {}

    def members(self, template: Template) -> pd.DataFrame:
        """The template's member rows, in time order (then pattern id)."""
        absent = [m for m in template.member_ids if m not in self.patterns.index]
        if absent:
            raise ConfigError(f"template {template.template_id}: {len(absent)} member(s) are "
                              f"not in the patterns frame (first {absent[0]!r}); pass the "
                              "patterns the library was built from")
        rows = self.patterns.loc[template.member_ids]
        return rows.sort_values(["ts", "pattern_id"], kind="stable")

    def market(self, timeframe: str) -> tuple[MarketArrays, np.ndarray]:
        """The timeframe's bar arrays and bar start times (loaded once); with a training end,
        only the bars that end by it (a trade still open on the last one exits there, as at
        the end of the data)."""
        if timeframe not in self._markets:
            frame = (self.bars[timeframe] if self.bars is not None and timeframe in self.bars
                     else load_bars(self.symbol, timeframe, home=self.home))
            stamps = ts_ns(frame)
            if self.end_ns is not None:
                ends = bar_end_times(stamps, parse_timeframe(timeframe),
                                     self.instrument.session)
                # bar ends rise with the starts: the training bars are a prefix
                keep = int(np.searchsorted(ends, self.end_ns, side="right"))
                frame, stamps = frame.iloc[:keep], stamps[:keep]
            prices = [np.ascontiguousarray(frame[c].to_numpy(dtype=np.float64))
                      for c in ("open", "high", "low", "close")]
            flags = session_last_flags(stamps, self.instrument.session)
            extra = velocity_slip_ticks(prices[3], self.tick, self.costs.velocity_slippage,
                                        self.costs.velocity_cap_ticks)
            self._markets[timeframe] = (MarketArrays(*prices, flags, self.tick,
                                                     float(self.instrument.point_value), extra),
                                        stamps)
        return self._markets[timeframe]

    def entries(self, rows: pd.DataFrame, timeframe: str) -> np.ndarray:
        """Signal bars of ``rows`` (one timeframe), checked against that timeframe's bars."""
        _market, stamps = self.market(timeframe)
        at = rows["bar"].to_numpy(dtype=np.int64)
        when = pd.to_datetime(rows["ts"], utc=True).dt.as_unit("ns").array.asi8
        if self.end_ns is not None and (at >= len(stamps)).any():
            late = rows["pattern_id"].astype(str).to_numpy()[at >= len(stamps)]
            raise ConfigError(f"{len(late)} member(s) of {timeframe} lie after the training end "
                              f"{self.settings['train_end']} (first {late[0]!r}); cluster "
                              "the training patterns only (span.training_patterns)")
        inside = (at >= 0) & (at < len(stamps))
        if not inside.all() or (stamps[at] != when).any():
            raise ConfigError(f"patterns of {timeframe} do not match the {timeframe} bars of "
                              f"{self.symbol} (bar positions or times differ); rerun "
                              "discovery on the current data")
        return at

    def space(self, members: pd.DataFrame) -> ParameterSpace:
        """The parameter space of a template (see ``ParameterSpace.from_scale``)."""
        def median_ticks(column: str) -> float:
            if column not in members.columns:
                return math.nan
            values = members[column].to_numpy(dtype=np.float64) / self.tick
            values = values[np.isfinite(values) & (values > 0)]
            return float(np.median(values)) if len(values) else math.nan
        sigma = median_ticks("sigma")
        mfe, mae = median_ticks("oracle_mfe"), median_ticks("oracle_mae")
        scale = next((v for v in (sigma, mfe) if math.isfinite(v)), 8.0)
        counts = members["timeframe"].astype(str).value_counts()
        main = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0] if len(counts) else "1m"
        return ParameterSpace.from_scale(scale, ORACLE_LOOKAHEAD.get(main, 60), mfe_ticks=mfe,
                                         mae_ticks=mae)

    def groups(self, rows: pd.DataFrame
               ) -> list[tuple[MarketArrays, np.ndarray, np.ndarray, np.ndarray]]:
        """(market, row positions, signal bars, fading sides) per timeframe of ``rows``,
        built once. A member is traded on the side that fades its own move, -sign(z), as
        matching trades a two-sided template."""
        tfs = rows["timeframe"].astype(str).to_numpy()
        fade = -np.sign(rows["z"].to_numpy(dtype=np.float64))
        out = []
        for tf in sorted(set(tfs.tolist())):
            cols = np.flatnonzero(tfs == tf)
            out.append((self.market(tf)[0], cols, self.entries(rows.iloc[cols], tf),
                        fade[cols]))
        return out

    def points(self, vectors: np.ndarray, groups: list, n_rows: int, direction: int,
               member_of_row: np.ndarray | None = None) -> np.ndarray:
        """Member PnL points: every vector on every row, or row r on ``member_of_row[r]``.
        A one-sided template (``direction`` +1 / -1) trades its side on every member; a
        two-sided one (0) each member's fading side."""
        matrix = kernel_matrix(to_exit_params(vectors, self.tick), self.costs)
        fill = self.settings["fill"]
        if member_of_row is None:
            out = np.full((len(matrix), n_rows), np.nan)
        else:
            out = np.full(len(matrix), np.nan)
        for market, cols, entries, fade in groups:
            sides = fade if direction == 0 else direction
            if member_of_row is None:
                out[:, cols] = member_points(market, entries, sides, matrix, fill=fill)
                continue
            local = np.full(n_rows, -1)
            local[cols] = np.arange(len(cols))
            sel = np.flatnonzero(local[member_of_row] >= 0)
            out[sel] = member_points(market, entries, sides, matrix[sel],
                                     member_of_row=local[member_of_row[sel]], fill=fill)
        return out

    def scaled(self, rows: pd.DataFrame) -> np.ndarray:
        """Scaled feature vectors of ``rows`` with the library's per-timeframe scalers."""
        out = np.empty((len(rows), len(FEATURE_NAMES)))
        tfs = rows["timeframe"].astype(str).to_numpy()
        for tf in sorted(set(tfs.tolist())):
            sel = tfs == tf
            out[sel] = self.library.scale(rows[sel], tf)
        return out


def _search(rows: pd.DataFrame, space: ParameterSpace, seed: int, direction: int,
            ctx: _Context) -> tuple[np.ndarray, str]:
    """The best vector (and its phase) of a template-level design of experiments on ``rows``:
    ``iterations`` evaluations, the objective being the rows' pooled points per trade."""
    s = ctx.settings
    schedule = DesignSchedule(space, s["iterations"], seed)
    groups, n = ctx.groups(rows), len(rows)
    while not schedule.done:
        vectors = schedule.next_batch()
        schedule.tell(vectors, score_points(ctx.points(vectors, groups, n, direction),
                                            s["min_trades"]).score)
    best, _score, phase = schedule.best()
    return best, phase


def _optimise(template: Template, members: pd.DataFrame, ctx: _Context) -> dict[str, Any]:
    """The template-level design of experiments on the representative subset."""
    s = ctx.settings
    subset = members.iloc[_even_positions(len(members), s["members_per_template"])]
    best, phase = _search(subset, ctx.space(members),
                          _seed(s["random_state"], template.template_id, "template"),
                          template.direction, ctx)
    groups, n = ctx.groups(subset), len(subset)
    stats = score_points(ctx.points(best[None], groups, n, template.direction),
                         s["min_trades"])
    exits = to_exit_params(best[None], ctx.tick)[0]
    params = {name: float(v) for name, v in zip(EXIT_COLUMNS, exits, strict=True)}
    params["max_hold_bars"] = int(params["max_hold_bars"])
    return {"params": params, "score": float(stats.score[0]),
            "mean_points": float(stats.mean_points[0]), "trades": int(stats.trades[0]),
            "win_rate": float(stats.win_rate[0]), "sharpe": float(stats.sharpe_per_trade[0]),
            "phase": phase, "members_used": len(subset)}


def _halves(template: Template, members: pd.DataFrame, ctx: _Context
            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The seeded split of the members: (discovery, held out).

    A seeded permutation cuts the members in two; the larger half is the discovery half (the
    first ``fission_members`` of it in time order are optimised one by one), and the other
    half is held out to confirm the split. Both keep the members' time order."""
    s = ctx.settings
    rng = np.random.default_rng(_seed(s["random_state"], template.template_id, "halves"))
    order = rng.permutation(len(members))
    cut = len(members) - len(members) // 2
    return members.iloc[np.sort(order[:cut])], members.iloc[np.sort(order[cut:])]


def _member_optima(template: Template, rows: pd.DataFrame, space: ParameterSpace,
                   ctx: _Context) -> tuple[np.ndarray, np.ndarray]:
    """Every row optimised alone with the same seeded design: (best vectors, traded)."""
    s = ctx.settings
    # common random numbers: every member is searched with the same seeded design, so
    # members that behave alike get the same best vector (see docs/discovery.md)
    seed = _seed(s["random_state"], template.template_id, "fission")
    schedules = [DesignSchedule(space, s["fission_iterations"], seed, tie_tolerance=ctx.tick)
                 for _ in range(len(rows))]
    traded = np.zeros(len(rows), dtype=bool)
    groups = ctx.groups(rows)
    while not schedules[0].done:
        batches = [sched.next_batch() for sched in schedules]
        owner = np.repeat(np.arange(len(rows)), [len(b) for b in batches])
        pts = ctx.points(np.vstack(batches), groups, len(rows), template.direction, owner)
        traded |= np.bincount(owner, np.isfinite(pts), len(rows)) > 0
        for sched, batch, chunk in zip(schedules, batches,
                                       np.split(pts, np.cumsum([len(b) for b in batches])[:-1]),
                                       strict=True):
            sched.tell(batch, chunk)
    best = np.asarray([sched.best()[0] for sched in schedules]).reshape(-1, space.dimensions)
    return best, traded


def _clusters(template: Template, points: np.ndarray, ctx: _Context
              ) -> tuple[int, float, np.ndarray | None]:
    """(k, silhouette, labels) of the best KMeans clustering of the members' best exits."""
    s = ctx.settings
    best_k, best_sil, best_labels = 0, -math.inf, None
    with threadpool_limits(limits=1):  # 50 points: a thread pool costs more than it saves
        for k in FISSION_KS:
            if len(points) < MEMBERS_PER_CLUSTER * k or len(np.unique(points, axis=0)) < k:
                continue
            model = KMeans(n_clusters=k, n_init=10,
                           random_state=_seed(s["random_state"], template.template_id))
            labels = model.fit(points).labels_
            if len(np.unique(labels)) < 2:
                continue
            sil = float(silhouette_score(points, labels))
            if sil > best_sil:
                best_k, best_sil, best_labels = k, sil, labels
    return best_k, best_sil if best_labels is not None else math.nan, best_labels


def _confirm(template: Template, space: ParameterSpace,
             found: pd.DataFrame, held: pd.DataFrame, children: list[list[str]],
             ctx: _Context) -> dict[str, Any]:
    """The held-out test of a split proposed by clustering exits (docs/discovery.md,
    "Fission"): the parent's optimum and each child's are searched on the discovery members
    (``found``, the clustered ones, each child on its own), then :func:`_holdout_test`."""
    s = ctx.settings
    child_of = {pid: c for c, ids in enumerate(children) for pid in ids}
    found_child = np.asarray([child_of[str(p)] for p in found["pattern_id"]])
    seed = _seed(s["random_state"], template.template_id, "confirm")
    vectors = [_search(found, space, seed, template.direction, ctx)[0]]
    vectors += [_search(found.iloc[np.flatnonzero(found_child == c)], space, seed,
                        template.direction, ctx)[0] for c in range(len(children))]
    return _holdout_test(template, np.vstack(vectors), held, children, ctx)


def _holdout_gains(template: Template, vectors: np.ndarray, held: pd.DataFrame,
                   children: list[list[str]], ctx: _Context) -> tuple[np.ndarray, np.ndarray]:
    """Per held-out member, what its child's exit earns over the parent's, and its child.

    ``vectors`` are the parent's exit, then each child's. A member that does not trade scores
    0; one that trades under neither is left out."""
    child_of = {pid: c for c, ids in enumerate(children) for pid in ids}
    held_child = np.asarray([child_of[str(p)] for p in held["pattern_id"]], dtype=np.int64)
    pts = ctx.points(vectors, ctx.groups(held), len(held), template.direction)
    mine = pts[1 + held_child, np.arange(len(held))]
    both_idle = np.isnan(mine) & np.isnan(pts[0])
    gain = np.nan_to_num(mine) - np.nan_to_num(pts[0])
    return gain[~both_idle], held_child[~both_idle]


def _judge(gain: np.ndarray, held_child: np.ndarray, k: int, alpha: float) -> dict[str, Any]:
    """The verdict on held-out gains: kept when their mean is above 0 at one-sided
    significance ``alpha``, every one of the ``k`` children has ``MIN_HOLDOUT_PER_CHILD``
    held-out members and no child does significantly worse than the parent on its own."""
    out = {"holdout_members": len(gain), "holdout_gain": math.nan, "holdout_p": math.nan,
           "kept": False}
    counts = np.bincount(held_child, minlength=k)
    if len(gain) < 2 or counts.min() < MIN_HOLDOUT_PER_CHILD:
        return out
    out["holdout_gain"] = float(gain.mean())
    out["holdout_p"] = _one_sided_p(gain)
    worse = [_one_sided_p(-gain[held_child == c]) for c in range(k)]
    out["kept"] = out["holdout_p"] < alpha and min(worse) >= alpha
    return out


def _holdout_test(template: Template, vectors: np.ndarray, held: pd.DataFrame,
                  children: list[list[str]], ctx: _Context) -> dict[str, Any]:
    """The held-out test of a split (:func:`_holdout_gains`, then :func:`_judge` at
    ``fission_alpha``)."""
    gain, held_child = _holdout_gains(template, vectors, held, children, ctx)
    return _judge(gain, held_child, len(children), ctx.settings["fission_alpha"])


def _one_sided_p(values: np.ndarray) -> float:
    """p-value of a one-sided t-test that the mean of ``values`` is above 0 (a constant
    sample: 0 when positive, else 1)."""
    if len(values) < 2:
        return 1.0
    if np.ptp(values) == 0:
        return 0.0 if values[0] > 0 else 1.0
    return float(ttest_1samp(values, 0.0, alternative="greater").pvalue)


def _feature_split(found: pd.DataFrame, best: np.ndarray, ctx: _Context, direction: int
                   ) -> tuple[dict[str, Any] | None, float, np.ndarray | None]:
    """(cut, discovery gain, exits) of the best median cut of one feature, or
    (None, nan, None); ``exits`` are the rows of ``best`` the whole and the two sides
    (at or below the cut, then above) earn most with.

    The own optima of the members optimised one by one (``best``) are scored on every
    discovery member (a matrix of points, untraded = 0). For each of the 14 features, the
    members at or below its median form one group and the rest the other (each needs
    ``MEMBERS_PER_CLUSTER``); a group's exit is the member optimum that earns the group most.
    The gain is what the two groups earn with their exits over what all earn with the single
    best one; the feature with the largest positive gain proposes the split (ties: the
    earlier feature), as the cut ``{"feature", "cut"}`` (raw units). Chosen on the discovery
    members only: the held-out test (:func:`_holdout_test`) judges it."""
    points = np.nan_to_num(ctx.points(best, ctx.groups(found), len(found), direction))
    totals = points.sum(axis=1)
    whole = float(totals.max())
    chosen: dict[str, Any] | None = None
    exits: np.ndarray | None = None
    top = 0.0
    for name in FEATURE_NAMES:
        values = found[name].to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            continue
        cut = float(np.median(values))
        low = values <= cut
        if min(int(low.sum()), int((~low).sum())) < MEMBERS_PER_CLUSTER:
            continue
        below, over = points[:, low].sum(axis=1), points[:, ~low].sum(axis=1)
        gain = float(below.max()) + float(over.max()) - whole
        if gain > top + 1e-9:
            chosen, top = {"feature": name, "cut": cut}, gain
            exits = best[[int(np.argmax(totals)), int(np.argmax(below)), int(np.argmax(over))]]
    return chosen, (top if chosen is not None else math.nan), exits


def _cut_children(template: Template, members: pd.DataFrame, cut: dict[str, Any]
                  ) -> tuple[list[list[str]], list[list[dict[str, Any]]]]:
    """Member ids and conditions of the two children of a cut: at or below it, then above
    (each child keeps the parent's conditions and adds its side of the cut)."""
    values = members[cut["feature"]].to_numpy(dtype=np.float64)
    above = values > cut["cut"]
    groups, conditions = [], []
    for side in (False, True):
        ids = members.index[above == side]
        groups.append(sorted(str(p) for p in ids))
        conditions.append([*template.conditions,
                           {"feature": cut["feature"], "above": side, "cut": cut["cut"]}])
    return groups, conditions


def _fission(template: Template, members: pd.DataFrame, ctx: _Context) -> dict[str, Any]:
    """Propose a split on half the members and confirm it on members the proposal never
    saw (a cut: cross-fitted over both halves; clustered exits: on the other half)."""
    s = ctx.settings
    none: dict[str, Any] = {"fission_members": 0, "split_feature": "",
                            "discovery_gain": math.nan, "silhouette": math.nan, "k": 0,
                            "fission_trial": False, "holdout_members": 0,
                            "holdout_gain": math.nan, "holdout_p": math.nan, "children": []}
    if (not s["fission"] or template.template_id.count(".") >= s["max_fission_depth"]
            or len(members) < 2 * MEMBERS_PER_CLUSTER * FISSION_KS[0]):
        return none
    discovery, held = _halves(template, members, ctx)
    found = discovery.iloc[:s["fission_members"]]
    space = ctx.space(members)
    best, traded = _member_optima(template, found, space, ctx)
    labelled = np.flatnonzero(traded)
    result = {**none, "fission_members": len(found)}
    if s.get("fission_proposal", "features") == "features":
        cut, gain, exits = _feature_split(discovery, best[labelled], ctx, template.direction)
        if cut is not None:
            result.update(split_feature=cut["feature"], discovery_gain=gain, k=2)
            return _cross_fitted_cut(template, members, (discovery, held), (cut, exits),
                                     space, ctx, result)
    # no cut separates what the members want (or exits were asked for): cluster the exits;
    # either way a template puts at most one candidate to the held-out test
    points = space.normalize(best[labelled])[:, [STOP, TARGET, TIGHT]]
    k, sil, labels = _clusters(template, points, ctx)
    result.update(silhouette=sil, k=k)
    if labels is None or sil < s["min_silhouette"]:
        return result
    children = _child_groups(members, found.index[labelled], labels, ctx)
    test = _confirm(template, space, found.iloc[labelled], held, children, ctx)
    return _with_test(result, test, children)


def _cross_fitted_cut(template: Template, members: pd.DataFrame,
                      halves: tuple[pd.DataFrame, pd.DataFrame],
                      proposal: tuple[dict[str, Any], np.ndarray], space: ParameterSpace,
                      ctx: _Context, result: dict[str, Any]) -> dict[str, Any]:
    """Confirm a cut proposed on the discovery half by cross-fitting (docs/discovery.md,
    "Fission").

    The held-out half proposes its own cut the same way (its first ``fission_members``
    optimised one by one, :func:`_feature_split`). Unless it picks the same feature, nothing
    is tested (no fission trial). When it does, each half's members are scored with the other
    half's proposal (its cut puts them in a child, its exits score child and parent,
    :func:`_holdout_gains`), so every member is held out from the proposal that scores it,
    and the pooled gains are judged once (:func:`_judge`): twice the held-out members of a
    one-way test. The kept children are cut at the midpoint of the two cuts; parent and
    children each take the member optimum that earned their proposal's members most, so both
    sides of the test pick from the same candidates."""
    s = ctx.settings
    discovery, held = halves
    cut, exits = proposal
    found = held.iloc[:s["fission_members"]]
    best, traded = _member_optima(template, found, space, ctx)
    other, _gain, other_exits = _feature_split(held, best[np.flatnonzero(traded)], ctx,
                                               template.direction)
    if other is None or other["feature"] != cut["feature"]:
        return result
    gains, labels = [], []
    for rule, vectors, scored in ((cut, exits, held), (other, other_exits, discovery)):
        groups, _ = _cut_children(template, scored, rule)
        gain, child = _holdout_gains(template, vectors, scored, groups, ctx)
        gains.append(gain)
        labels.append(child)
    test = _judge(np.concatenate(gains), np.concatenate(labels), 2, s["fission_alpha"])
    adopted = {"feature": cut["feature"], "cut": (cut["cut"] + other["cut"]) / 2}
    children, conditions = _cut_children(template, members, adopted)
    return _with_test(result, test, children, conditions)


def _with_test(result: dict[str, Any], test: dict[str, Any], children: list[list[str]],
               conditions: list[list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """The fission record with a candidate's held-out test (children, with their
    conditions when the split is a cut, only when kept)."""
    result.update(fission_trial=True, holdout_members=test["holdout_members"],
                  holdout_gain=test["holdout_gain"], holdout_p=test["holdout_p"])
    if test["kept"]:
        result["children"] = children
        result["child_conditions"] = conditions
    return result


def _child_groups(members: pd.DataFrame, labelled_ids: pd.Index, labels: np.ndarray,
                  ctx: _Context) -> list[list[str]]:
    """Member ids of each child: clustered members by label; every other member joins the
    child whose scaled feature centroid is nearest. Largest child first (then earliest)."""
    position = {pid: i for i, pid in enumerate(members.index)}
    scaled = ctx.scaled(members)
    rows = np.asarray([position[p] for p in labelled_ids])
    centroids = np.vstack([scaled[rows[labels == c]].mean(axis=0) for c in np.unique(labels)])
    label_of = np.full(len(members), -1)
    label_of[rows] = np.searchsorted(np.unique(labels), labels)
    rest = np.flatnonzero(label_of < 0)
    if len(rest):
        dist = ((scaled[rest, None, :] - centroids[None]) ** 2).sum(axis=2)
        label_of[rest] = np.argmin(dist, axis=1)
    groups = [list(members.index[label_of == c]) for c in range(len(centroids))]
    groups.sort(key=lambda g: (-len(g), position[g[0]]))
    return [sorted(str(p) for p in g) for g in groups]  # pattern_id order, as templates


def _child_template(child_id: str, parent: Template, member_ids: list[str],
                    ctx: _Context, conditions: list[dict[str, Any]] | None = None
                    ) -> Template:
    """A fission child, summarised from its members by the same rules as clustered templates.

    A child of a cut (``conditions``) keeps its parent's centroid and adds its side of the
    cut, so the children share out exactly the bars the parent matches. A child of
    clustered exits gets its members' centroid and keeps its parent's conditions (a parent
    that was itself cut stays on its side of that cut)."""
    rows = ctx.patterns.loc[member_ids]
    raw = rows.loc[:, list(FEATURE_NAMES)].to_numpy(dtype=np.float64)
    data = member_arrays(rows, raw, ctx.scaled(rows))
    tf_rank = {name: rank for rank, name in enumerate(ctx.library.scalers)}
    fields = summarize_members(np.arange(len(rows)), data, tf_rank)
    if conditions is not None:
        fields.update(centroid_scaled=list(parent.centroid_scaled),
                      centroid_raw=list(parent.centroid_raw), conditions=conditions)
    else:
        fields["conditions"] = list(parent.conditions)
    return Template(template_id=child_id, parent_id=parent.template_id, **fields)


def _process(template: Template, ctx: _Context) -> dict[str, Any]:
    """Optimise one template and run fission on it; the checkpoint record."""
    members = ctx.members(template)
    record = {"template_id": template.template_id, **_optimise(template, members, ctx),
              **_fission(template, members, ctx)}
    conditions = record.pop("child_conditions", None) or [None] * len(record["children"])
    record["children"] = [{"template_id": f"{template.template_id}.{i}", "member_ids": g,
                           **({"conditions": c} if c is not None else {})}
                          for i, (g, c) in enumerate(zip(record["children"], conditions,
                                                         strict=True), start=1)]
    return record


@dataclass(frozen=True)
class WorkerInputs:
    """Where a worker process finds what ``optimize_templates`` was given: the saved library
    (for its scalers), the patterns frame as a Parquet file and the home of the bars."""

    library_dir: str
    patterns_path: str
    home: str | None = None


@dataclass(frozen=True)
class TemplateJob:
    """One template to optimise in a worker (a module-level function runs it)."""

    template: Template
    symbol: str
    inputs: WorkerInputs
    settings: str  # the JSON settings (no cost object): part of the worker cache key


_WORKER_CONTEXTS: dict[tuple[Any, ...], _Context] = {}


def _worker_context(job: TemplateJob) -> _Context:
    """The job's context, built once per process from files (the last one is kept)."""
    key = (job.inputs, job.symbol, job.settings)
    if key not in _WORKER_CONTEXTS:
        _WORKER_CONTEXTS.clear()
        settings = json.loads(job.settings)
        settings["costs_object"] = Costs(**settings["costs"])
        library = TemplateLibrary.load(job.inputs.library_dir)
        patterns = pd.read_parquet(job.inputs.patterns_path)
        spec = get_instrument(job.symbol, job.inputs.home)
        _WORKER_CONTEXTS[key] = _Context(library, patterns, job.symbol, job.inputs.home, spec,
                                         None, settings)
    return _WORKER_CONTEXTS[key]


def process_template_job(job: TemplateJob) -> dict[str, Any]:
    """Optimise one template and run fission on it in a worker: its checkpoint record."""
    return _process(job.template, _worker_context(job))


def _fingerprint(library: TemplateLibrary, patterns: pd.DataFrame,
                 settings: dict[str, Any]) -> str:
    """SHA-256 over the library's templates, the member patterns used and the settings."""
    digest = hashlib.sha256()
    clean = {k: v for k, v in settings.items() if k != "costs_object"}
    digest.update(json.dumps(clean, sort_keys=True).encode())
    for t in library.templates:
        digest.update(json.dumps([t.template_id, t.direction, t.timeframes, t.member_ids,
                                  t.centroid_scaled]).encode())
    cols = [c for c in ("pattern_id", "timeframe", "bar", "ts", "z", "sigma", "oracle_mfe",
                        "oracle_mae") if c in patterns.columns]
    digest.update(pd.util.hash_pandas_object(patterns[cols], index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _load_checkpoint(path: Path, fingerprint: str) -> list[dict[str, Any]]:
    """Records of a matching checkpoint; none when absent, unreadable or for other inputs."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if (not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT
            or state.get("version") != CHECKPOINT_VERSION
            or state.get("fingerprint") != fingerprint):
        return []
    return list(state.get("records", []))


def optimize_templates(library: TemplateLibrary, patterns: pd.DataFrame, *, symbol: str,
                       home: Path | str | None = None, members_per_template: int = 20,
                       iterations: int = 60, fission: bool = True, fission_members: int = 50,
                       fission_iterations: int = 20, max_fission_depth: int = MAX_FISSION_DEPTH,
                       min_silhouette: float = SILHOUETTE_MIN,
                       fission_alpha: float = FISSION_ALPHA,
                       fission_proposal: str = "features",
                       costs: Costs | None = None, fill: str = "close", min_trades: int = 5,
                       random_state: int = 0, checkpoint_dir: Path | str | None = None,
                       resume: bool = True, batch_size: int = 8,
                       bars: Mapping[str, pd.DataFrame] | None = None,
                       instrument: Instrument | None = None, train_end: Any = None,
                       executor: Any = None, worker_inputs: WorkerInputs | None = None,
                       progress: ProgressCallback = no_progress) -> OptimizationResult:
    """Optimise exit parameters per template and split templates by fission.

    Args:
        library: the template library; ``patterns``: the pattern finder's frame (needs
            ``NEEDED_COLUMNS``; uses ``sigma`` and the oracle columns when present).
        symbol, home: where the bars are (``load_bars(symbol, tf, home=home)``, once per
            timeframe) and the default checkpoint folder
            ``<home>/discovery/<SYMBOL>/optimization/``.
        members_per_template: size of the representative subset (evenly spaced in time).
        iterations: design-of-experiments evaluations per template (>= 6).
        fission, fission_members, fission_iterations, max_fission_depth, min_silhouette,
            fission_alpha: fission settings (a seeded half of the members, at most
            ``fission_members`` of them, each optimised alone with ``fission_iterations``
            evaluations; a candidate split needs a silhouette of ``min_silhouette`` and is
            kept only when it beats the parent on the other half at one-sided significance
            ``fission_alpha``; templates with ``max_fission_depth`` dots in their id are not
            split again).
        fission_proposal: ``features`` (default: the median cut of the one feature that
            best separates what the discovery members' own optima want) or ``exits``
            (KMeans on those optima, needing ``min_silhouette``); see docs/discovery.md.
        costs: the cost model (default: the instrument's own); ``fill``: entry fill mode;
            ``min_trades``: trades below which the objective shrinks (see the worker).
        random_state: seed of every random choice.
        checkpoint_dir, resume: checkpoint folder; ``resume=False`` starts afresh.
        batch_size: templates per checkpoint.
        bars: optional bars per timeframe (instead of loading them); ``instrument``: the
            instrument (default ``get_instrument(symbol, home)``).
        train_end: the training end (default: the library's ``metadata["train_end"]``; a
            later one than the library's is a ConfigError). The simulations see only the bars
            that end by it, and every member's bar must be one of them.
        executor, worker_inputs: a ``stratforge.parallel`` executor that optimises the
            templates of a batch side by side; its workers rebuild the inputs from
            ``worker_inputs`` (the saved ``library`` and ``patterns``, the bars of
            ``home``), so ``bars`` must be None. The records, the checkpoints and the result
            are the same as without an executor (a batch is accepted in queue order).
        progress: called ``("optimize", done, total, message)`` after every batch.

    Returns:
        An ``OptimizationResult``; rules in docs/discovery.md ("Optimisation and fission").
    """
    if batch_size < 1 or members_per_template < 1 or fission_members < 1:
        raise ConfigError("batch_size, members_per_template and fission_members must be >= 1")
    if fission_proposal not in FISSION_PROPOSALS:
        raise ConfigError(f"fission_proposal must be one of {', '.join(FISSION_PROPOSALS)}, "
                          f"got {fission_proposal!r}")
    if not 0 < fission_alpha < 1:
        raise ConfigError(f"fission_alpha must lie strictly between 0 and 1 (a one-sided "
                          f"significance level such as 0.01), got {fission_alpha!r}")
    phase_sizes(iterations)
    if fission:
        phase_sizes(fission_iterations)
    fill_offset(fill, 1)
    spec = instrument if instrument is not None else get_instrument(symbol, home)
    cost = costs if costs is not None else spec.costs
    end = _training_end(library, train_end)
    settings = {"symbol": symbol.upper(), "members_per_template": int(members_per_template),
                "iterations": int(iterations), "fission": bool(fission),
                "fission_members": int(fission_members),
                "fission_iterations": int(fission_iterations),
                "max_fission_depth": int(max_fission_depth), "costs": cost.to_dict(),
                "fill": fill, "min_trades": int(min_trades), "random_state": int(random_state),
                "min_silhouette": float(min_silhouette), "fission_alpha": float(fission_alpha),
                "fission_proposal": fission_proposal,
                "train_end": None if end is None else end.isoformat(), "costs_object": cost}
    ctx = _Context(library, patterns, symbol, home, spec, bars, settings)
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else (
        resolve_home(home) / "discovery" / symbol.upper() / "optimization")
    fingerprint = _fingerprint(library, patterns, settings)
    saved = _load_checkpoint(folder / CHECKPOINT_FILE, fingerprint) if resume else []

    queue: deque[Template] = deque(library.templates)
    templates = {t.template_id: t for t in library.templates}
    records: list[dict[str, Any]] = []

    def accept(record: dict[str, Any]) -> None:
        parent = templates[record["template_id"]]
        records.append(record)
        for child in record["children"]:
            templates[child["template_id"]] = _child_template(
                child["template_id"], parent, child["member_ids"], ctx,
                child.get("conditions"))
            queue.append(templates[child["template_id"]])

    for record in saved:
        if not queue or queue[0].template_id != record.get("template_id"):
            queue, records = deque(library.templates), []  # inconsistent: start afresh
            break
        queue.popleft()
        accept(record)
    progress("optimize", len(records), len(records) + len(queue),
             f"{len(records)} template(s) from the checkpoint")
    if executor is not None and (worker_inputs is None or bars is not None):
        raise ConfigError("optimize_templates: an executor needs worker_inputs (the saved "
                          "library and patterns) and the bars of home (bars=None)")
    text = json.dumps({k: v for k, v in settings.items() if k != "costs_object"},
                      sort_keys=True)
    while queue:
        batch = [queue.popleft() for _ in range(min(batch_size, len(queue)))]
        if executor is None:
            done = [_process(t, ctx) for t in batch]
        else:
            jobs = [TemplateJob(t, symbol, worker_inputs, text) for t in batch]
            done = [{}] * len(jobs)
            for index, record in executor.imap_unordered(process_template_job, jobs):
                done[index] = record
        for record in done:
            accept(record)
        atomic_write_json(folder / CHECKPOINT_FILE, {
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
            "fingerprint": fingerprint, "complete": not queue, "records": records})
        progress("optimize", len(records), len(records) + len(queue),
                 f"optimised {records[-1]['template_id']}")
    return _assemble(library, templates, records, settings)


def _training_end(library: TemplateLibrary, train_end: Any) -> pd.Timestamp | None:
    """The training end to simulate up to: ``train_end`` or the library's own; never later
    than the library's."""
    fitted = library.metadata.get("train_end")
    fitted_end = utc_time(fitted, "the library's train_end") if fitted else None
    if train_end is None:
        return fitted_end
    end = utc_time(train_end)
    if fitted_end is not None and end > fitted_end:
        raise ConfigError(f"optimize_templates: train_end {end.isoformat()} is after the "
                          f"library's training end {fitted_end.isoformat()}; the optimiser "
                          "may not see bars the templates were not trained on")
    return end


def _assemble(library: TemplateLibrary, templates: dict[str, Template],
              records: list[dict[str, Any]], settings: dict[str, Any]) -> OptimizationResult:
    """The final library (parents replaced by their children), the report and the splits."""
    by_id = {r["template_id"]: r for r in records}
    splits = {r["template_id"]: [c["template_id"] for c in r["children"]]
              for r in records if r["children"]}

    def resolve(template_id: str) -> list[Template]:
        if template_id in splits:
            return [t for child in splits[template_id] for t in resolve(child)]
        return [replace(templates[template_id], params=by_id[template_id]["params"])]

    final = [t for original in library.templates for t in resolve(original.template_id)]
    clean = {k: v for k, v in settings.items() if k != "costs_object"}
    trials = sum(bool(r["fission_trial"]) for r in records)
    metadata = {**library.metadata, "optimization": {**clean, "splits": splits,
                                                     "fission_trials": trials}}
    rows = []
    for r in records:
        t = templates[r["template_id"]]
        rows.append({
            "template_id": t.template_id, "parent_id": t.parent_id,
            "depth": t.template_id.count("."), "members": t.members,
            "members_used": r["members_used"], "timeframes": ",".join(t.timeframes),
            "score": r["score"], "mean_points": r["mean_points"], "trades": r["trades"],
            "win_rate": r["win_rate"], "sharpe_per_trade": r["sharpe"],
            "best_phase": r["phase"], **r["params"], "fission_members": r["fission_members"],
            "split_feature": r.get("split_feature", ""),
            "discovery_gain": r.get("discovery_gain", math.nan),
            "silhouette": r["silhouette"], "k": r["k"],
            "holdout_members": r["holdout_members"], "holdout_gain": r["holdout_gain"],
            "holdout_p": r["holdout_p"], "split": bool(r["children"]),
            "children": ",".join(splits.get(t.template_id, []))})
    report = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
    return OptimizationResult(TemplateLibrary(final, library.scalers, metadata), report, splits,
                              trials)
