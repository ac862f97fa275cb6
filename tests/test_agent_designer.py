"""The built-in Thompson designer on hand-made contexts: it never repeats a design, is
deterministic for a seed and history, follows the posteriors, honours overrides, and the
designer registry."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from stratforge.costs import COST_FIELDS
from stratforge.errors import ConfigError, StratforgeError
from stratforge.instruments import get_instrument
from stratforge.ops.agent.designer import (
    DesignContext,
    ModelOption,
    TemplateInfo,
    ThompsonDesigner,
    arm_outcomes,
    candidates,
    get_designer,
    register_designer,
)
from stratforge.ops.agent.regions import REGION_NAMES
from stratforge.ops.agent.spec import CostModel, validate_overrides

BASE = {"symbol": "MNQ", "timeframes": ["1h", "15m", "5m"],
        "training": {"start": "2023-01-01T00:00:00Z", "end": "2023-02-27T23:00:00Z"},
        "backtest": {"start": "2023-02-27T23:00:00Z", "end": "2023-03-25T00:00:00Z"},
        "n_sets": 32, "signal": {"library": "feedfacecafebeef"}}
TEMPLATES = (TemplateInfo("T0001", ("1h", "15m", "5m"), 70),
             TemplateInfo("T0002", ("15m",), 40),
             TemplateInfo("T0003", ("1h",), 20))  # no member on a signal timeframe


YARDSTICKS = {"1h": 80.0, "15m": 40.0, "5m": 20.0}  # median true ranges in MNQ ticks


def context(history=(), overrides=None, seed=0, base=BASE, yardsticks=YARDSTICKS,
            tick_size=0.25):
    return DesignContext(base=base, templates=TEMPLATES, signal_timeframes=("15m", "5m"),
                         history=tuple(history), overrides=validate_overrides(overrides),
                         seed=seed, yardsticks=yardsticks, tick_size=tick_size)


def record(design, verdict="poor", status="completed"):
    return {"fingerprint": design.fingerprint, "arm": design.arm, "status": status,
            "verdict": verdict}


def test_candidates_cover_templates_timeframes_and_regions():
    pool = candidates(context())
    arms = Counter(c.arm for c in pool)
    # T0001 fires on 15m and 5m, T0002 on 15m only, T0003 on no signal timeframe
    assert arms == {"feedface/T0001@15m": 3, "feedface/T0001@5m": 3, "feedface/T0002@15m": 3}
    assert [c.spec.region.name for c in pool[:3]] == list(REGION_NAMES)
    assert len({c.fingerprint for c in pool}) == len(pool)


@pytest.mark.parametrize(("symbol", "tick", "yardsticks"), [
    ("MNQ", 0.25, YARDSTICKS),
    ("EURUSD", 0.00001, {"1h": 3000.0, "15m": 1400.0, "5m": 800.0}),
])
def test_designs_are_in_yardsticks_and_never_hold_a_cost(symbol, tick, yardsticks):
    costs = CostModel.of(get_instrument(symbol).costs)
    pool = candidates(context(base={**BASE, "symbol": symbol, "costs": costs},
                              yardsticks=yardsticks, tick_size=tick))
    assert pool
    for candidate in pool:
        bounds = candidate.spec.region.bounds
        assert not set(bounds) & (set(COST_FIELDS) | {"cost_points"})
        tf = candidate.spec.signal.timeframe
        if candidate.spec.region.name == "default":
            # the stop spans 0.5-3 yardsticks of the signal timeframe, in whole ticks
            assert bounds["stop_ticks"] == (round(0.5 * yardsticks[tf]),
                                            round(3 * yardsticks[tf]))
        # every design carries the instrument's resolved cost model
        assert candidate.spec.costs.model_dump() == costs
    with pytest.raises(ConfigError, match="no yardstick for 5m"):
        candidates(context(yardsticks={"15m": 40.0}))


def test_it_never_repeats_and_stops_when_everything_was_tried():
    designer, history = ThompsonDesigner(), []
    for _ in range(9):
        design = designer.design(context(history))
        assert design.fingerprint not in {h["fingerprint"] for h in history}
        history.append(record(design))
    with pytest.raises(StratforgeError, match=r"every design .* has been tried"):
        designer.design(context(history))
    # a cancelled experiment may be tried again; a running one may not
    history[0] = {**history[0], "status": "cancelled", "verdict": None}
    history[1] = {**history[1], "status": "running", "verdict": None}
    assert designer.design(context(history)).fingerprint == history[0]["fingerprint"]


def test_it_is_deterministic_for_a_seed_and_history():
    first = ThompsonDesigner().design(context(seed=5))
    assert ThompsonDesigner().design(context(seed=5)) == first
    arms = {ThompsonDesigner().design(context(seed=s)).arm for s in range(20)}
    assert len(arms) > 1  # the seed matters
    history = [record(first)]
    after = ThompsonDesigner().design(context(history, seed=5))
    assert ThompsonDesigner().design(context(history, seed=5)) == after


def test_it_follows_the_posteriors():
    pool = candidates(context())
    good = next(c for c in pool if c.arm.endswith("T0001@5m"))
    bad = next(c for c in pool if c.arm.endswith("T0002@15m"))
    # two finished experiments each: the good arm promising twice, the bad arm poor twice
    history = [{"fingerprint": f"{name}{i}", "arm": c.arm, "status": "completed",
                "verdict": verdict} for name, c, verdict in
               (("g", good, "promising"), ("b", bad, "poor")) for i in range(2)]
    assert arm_outcomes(tuple(history)) == {good.arm: (2, 0), bad.arm: (0, 2)}
    picks = Counter(ThompsonDesigner().design(context(history, seed=s)).arm
                    for s in range(300))
    # P(Beta(3, 1) is the largest of it, Beta(1, 1), Beta(1, 3)) = 0.73; Beta(1, 3)'s: 0.03
    assert picks[good.arm] > 150 and picks[bad.arm] < 45


def test_overrides_fix_the_choice():
    design = ThompsonDesigner().design(context(overrides={
        "signal": {"template_id": "T0002"}, "region": {"name": "wide"}, "n_sets": 8}))
    assert design.spec.signal.template_id == "T0002" and design.spec.signal.timeframe == "15m"
    assert design.spec.region.name == "wide" and design.spec.n_sets == 8
    # an explicit timeframe is allowed even where the template had no member
    pinned = ThompsonDesigner().design(context(overrides={
        "signal.template_id": "T0003", "signal.timeframe": "5m", "region.name": "tight"}))
    assert pinned.arm == "feedface/T0003@5m"
    custom = ThompsonDesigner().design(context(overrides={
        "region": {"bounds": {"stop_ticks": [8, 8], "target_ticks": [20, 20]}}}))
    assert custom.spec.region.name == "custom"
    assert custom.spec.region.bounds == {"stop_ticks": (8.0, 8.0), "target_ticks": (20.0, 20.0)}
    with pytest.raises(ConfigError, match=r"signal.template_id 'T0099' is not in the template"):
        ThompsonDesigner().design(context(overrides={"signal.template_id": "T0099"}))
    with pytest.raises(ConfigError, match=r"signal.timeframe 4h is not in timeframes"):
        ThompsonDesigner().design(context(overrides={"signal.timeframe": "4h"}))


def test_the_registry():
    assert isinstance(get_designer("thompson"), ThompsonDesigner)
    with pytest.raises(ConfigError, match=r"unknown designer 'oracle'; known: .*thompson"):
        get_designer("oracle")

    class FirstCandidate:
        def design(self, ctx):
            c = candidates(ctx)[0]
            from stratforge.ops.agent.designer import Design

            return Design(c.spec, c.fingerprint, c.arm, "first untried")

    register_designer("first", FirstCandidate)
    try:
        assert get_designer("first").design(context()).spec.signal.template_id == "T0001"
    finally:
        from stratforge.ops.agent import designer as module

        module._DESIGNERS.pop("first")


MODELS = (ModelOption("momentum", ("logret_1", "rsi_14"), "elasticnet", 3),
          ModelOption("reversion", ("bollinger_20", "close_location"), "elasticnet", 3))


def both(history=(), overrides=None, seed=0, kinds=("template", "model")):
    return dataclasses.replace(context(history, overrides, seed), kinds=kinds, models=MODELS)


def test_model_designs_join_the_pool_only_when_offered():
    assert all(c.spec.kind == "template" for c in candidates(context()))
    pool = candidates(both())
    arms = Counter(c.arm for c in pool)
    assert arms["model/elasticnet/momentum/h3@5m"] == len(REGION_NAMES)
    assert arms["model/elasticnet/reversion/h3@15m"] == len(REGION_NAMES)
    models = [c for c in pool if c.spec.kind == "model"]
    assert len(models) == 2 * 2 * len(REGION_NAMES)  # feature sets x timeframes x regions
    for c in models:
        assert c.spec.signal.kind == "model" and c.spec.signal.model_id is None
        assert c.spec.signal.library is None and c.spec.signal.match_threshold == 1.0
    # the overrides choose the kind: a model section, or a template
    only = candidates(both(overrides={"model": {"feature_set": "reversion", "horizon": 12}}))
    assert {c.arm for c in only} == {"model/elasticnet/reversion/h12@15m",
                                     "model/elasticnet/reversion/h12@5m"}
    assert all(c.spec.kind == "template" for c in
               candidates(both(overrides={"signal.template_id": "T0001"})))
    custom = candidates(both(overrides={"model.features": ["rsi_7"]}))
    assert {c.spec.model.feature_set for c in custom} == {"custom"}
    with pytest.raises(ConfigError, match=r"model\.feature_set 'trend' is not offered"):
        candidates(both(overrides={"model.feature_set": "trend"}))


def test_thompson_chooses_between_exit_rule_and_model_designs():
    pool = candidates(both())
    template = next(c for c in pool if c.spec.kind == "template")
    model = next(c for c in pool if c.spec.kind == "model")
    history = []
    for c in pool:  # every arm: two finished experiments (fingerprints not in the pool)
        won = c.arm == model.arm
        history += [{"fingerprint": f"{c.arm}-{i}", "arm": c.arm, "status": "completed",
                     "verdict": "promising" if won else "poor"} for i in range(2)]
    picks = Counter(ThompsonDesigner().design(both(history, seed=s)).arm for s in range(200))
    assert picks.most_common(1)[0][0] == model.arm and picks[model.arm] > 100
    flipped = [{**h, "verdict": "promising" if h["arm"] == template.arm else "poor"}
               for h in history]
    picks = Counter(ThompsonDesigner().design(both(flipped, seed=s)).arm for s in range(200))
    assert picks.most_common(1)[0][0] == template.arm
