"""Fission: split a template whose members want clearly different exits, on evidence.

:func:`fission` proposes a split on half of a template's members (a cut on one feature, or
clustered exits) and keeps it only when members the proposal never saw confirm it (a cut:
cross-fitted over both halves). :func:`child_template` builds a kept split's children. The
rules are written down in docs/discovery.md ("Fission").
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import ttest_1samp
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

from stratforge.discovery.doe import STOP, TARGET, TIGHT, DesignSchedule, ParameterSpace
from stratforge.discovery.library import Template
from stratforge.discovery.optimize_context import OptimizeContext, derived_seed, search_exits
from stratforge.discovery.templates import member_arrays, summarize_members
from stratforge.features.vectors import FEATURE_NAMES

SILHOUETTE_MIN = 0.45
FISSION_KS: tuple[int, ...] = (2, 3, 4, 5)
MEMBERS_PER_CLUSTER = 5
MAX_FISSION_DEPTH = 2
FISSION_ALPHA = 0.01
FISSION_PROPOSALS: tuple[str, ...] = ("features", "exits")
"""How a candidate split is proposed: ``features`` (the feature and median cut that best
separates what the discovery members' own optima want), ``exits`` (KMeans on those optima)."""
MIN_HOLDOUT_PER_CHILD = 3


def _halves(template: Template, members: pd.DataFrame, ctx: OptimizeContext
            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The seeded split of the members: (discovery, held out).

    A seeded permutation cuts the members in two; the larger half is the discovery half (the
    first ``fission_members`` of it in time order are optimised one by one), and the other
    half is held out to confirm the split. Both keep the members' time order."""
    s = ctx.settings
    rng = np.random.default_rng(derived_seed(s["random_state"], template.template_id, "halves"))
    order = rng.permutation(len(members))
    cut = len(members) - len(members) // 2
    return members.iloc[np.sort(order[:cut])], members.iloc[np.sort(order[cut:])]


def _member_optima(template: Template, rows: pd.DataFrame, space: ParameterSpace,
                   ctx: OptimizeContext) -> tuple[np.ndarray, np.ndarray]:
    """Every row optimised alone with the same seeded design: (best vectors, traded)."""
    s = ctx.settings
    # common random numbers: every member is searched with the same seeded design, so
    # members that behave alike get the same best vector (see docs/discovery.md)
    seed = derived_seed(s["random_state"], template.template_id, "fission")
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


def _own_optima(template: Template, part: pd.DataFrame, space: ParameterSpace,
                ctx: OptimizeContext) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The first ``fission_members`` of ``part`` (in time order), each optimised alone
    (:func:`_member_optima`), and the positions of those that traded."""
    found = part.iloc[:ctx.settings["fission_members"]]
    best, traded = _member_optima(template, found, space, ctx)
    return found, best, np.flatnonzero(traded)


def _clusters(template: Template, points: np.ndarray, ctx: OptimizeContext
              ) -> tuple[int, float, np.ndarray | None]:
    """(k, silhouette, labels) of the best KMeans clustering of the members' best exits."""
    s = ctx.settings
    best_k, best_sil, best_labels = 0, -math.inf, None
    with threadpool_limits(limits=1):  # 50 points: a thread pool costs more than it saves
        for k in FISSION_KS:
            if len(points) < MEMBERS_PER_CLUSTER * k or len(np.unique(points, axis=0)) < k:
                continue
            model = KMeans(n_clusters=k, n_init=10,
                           random_state=derived_seed(s["random_state"], template.template_id))
            labels = model.fit(points).labels_
            if len(np.unique(labels)) < 2:
                continue
            sil = float(silhouette_score(points, labels))
            if sil > best_sil:
                best_k, best_sil, best_labels = k, sil, labels
    return best_k, best_sil if best_labels is not None else math.nan, best_labels


def _confirm(template: Template, space: ParameterSpace,
             found: pd.DataFrame, held: pd.DataFrame, children: list[list[str]],
             ctx: OptimizeContext) -> dict[str, Any]:
    """The held-out test of a split proposed by clustering exits (docs/discovery.md,
    "Fission"): the parent's optimum and each child's are searched on the discovery members
    (``found``, the clustered ones, each child on its own), then :func:`_holdout_test`."""
    s = ctx.settings
    child_of = {pid: c for c, ids in enumerate(children) for pid in ids}
    found_child = np.asarray([child_of[str(p)] for p in found["pattern_id"]])
    seed = derived_seed(s["random_state"], template.template_id, "confirm")
    vectors = [search_exits(found, space, seed, template.direction, ctx)[0]]
    vectors += [search_exits(found.iloc[np.flatnonzero(found_child == c)], space, seed,
                             template.direction, ctx)[0] for c in range(len(children))]
    return _holdout_test(template, np.vstack(vectors), held, children, ctx)


def _holdout_gains(template: Template, vectors: np.ndarray, held: pd.DataFrame,
                   children: list[list[str]], ctx: OptimizeContext
                   ) -> tuple[np.ndarray, np.ndarray]:
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
                  children: list[list[str]], ctx: OptimizeContext) -> dict[str, Any]:
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


def _feature_split(found: pd.DataFrame, best: np.ndarray, ctx: OptimizeContext, direction: int
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


def fission(template: Template, members: pd.DataFrame, ctx: OptimizeContext) -> dict[str, Any]:
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
    space = ctx.space(members)
    found, best, labelled = _own_optima(template, discovery, space, ctx)
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
                      ctx: OptimizeContext, result: dict[str, Any]) -> dict[str, Any]:
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
    _found, best, labelled = _own_optima(template, held, space, ctx)
    other, _gain, other_exits = _feature_split(held, best[labelled], ctx, template.direction)
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
                  ctx: OptimizeContext) -> list[list[str]]:
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


def child_template(child_id: str, parent: Template, member_ids: list[str],
                    ctx: OptimizeContext, conditions: list[dict[str, Any]] | None = None
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
