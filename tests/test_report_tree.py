"""The report's template tree and discovery levels on hand-made optimize reports: every
fission decision gets the reason the rule gives, and children sit under their parents."""

from __future__ import annotations

import math

import pandas as pd

from stratforge.research.report_tree import levels_html, split_verdict, tree_order

SETTINGS = {"fission": True, "max_fission_depth": 2, "min_silhouette": 0.45,
            "fission_alpha": 0.01}


def _row(**values) -> dict:
    base = {"template_id": "T0001", "parent_id": None, "depth": 0, "members": 100,
            "fission_members": 50, "silhouette": 0.6, "k": 2, "holdout_members": 48,
            "holdout_gain": 2.5, "holdout_p": 0.001, "split": False}
    return {**base, **values}


def test_each_fission_decision_gives_its_reason():
    decision, reason = split_verdict(_row(split=True), SETTINGS)
    assert decision == "split" and "48 held-out members" in reason and "+2.5" in reason
    assert "p = 0.001 < 0.01" in reason
    assert split_verdict(_row(fission_members=0, members=12), SETTINGS) == \
        ("none", "not tried: 12 members (needs 20)")
    assert split_verdict(_row(fission_members=0, depth=2), SETTINGS)[1] == \
        "not tried: at the deepest fission level (2)"
    assert split_verdict(_row(fission_members=0), {**SETTINGS, "fission": False})[1] == \
        "not tried: fission is off"
    assert split_verdict(_row(silhouette=math.nan, k=0), SETTINGS)[0] == "none"
    # a feature cut is a candidate whatever the silhouette (there is none)
    decision, reason = split_verdict(_row(silhouette=math.nan, split_feature="abs_z",
                                          split=True), SETTINGS)
    assert decision == "split" and reason.startswith("kept (split on abs_z: on 48 held-out")
    decision, reason = split_verdict(_row(silhouette=math.nan, split_feature="hurst",
                                          holdout_p=0.3, holdout_gain=0.1), SETTINGS)
    assert decision == "rejected" and "p = 0.3" in reason
    assert split_verdict(_row(silhouette=0.3), SETTINGS)[1] == \
        "no candidate: silhouette 0.30 < 0.45"
    decision, reason = split_verdict(_row(holdout_gain=math.nan, holdout_members=4), SETTINGS)
    assert decision == "rejected"
    assert reason.endswith("fewer than 3 held-out members (4 scored in all)")
    decision, reason = split_verdict(_row(holdout_p=0.2, holdout_gain=0.4), SETTINGS)
    assert decision == "rejected" and "+0.4" in reason and "p = 0.2 ≥ 0.01" in reason
    # significant overall, yet not split: a child was worse on its own held-out members
    decision, reason = split_verdict(_row(), SETTINGS)
    assert decision == "rejected" and "a child does significantly worse" in reason


def test_children_follow_their_parent_depth_first():
    report = pd.DataFrame([
        _row(template_id="T0001", split=True), _row(template_id="T0002"),
        _row(template_id="T0001.1", parent_id="T0001", depth=1, split=True),
        _row(template_id="T0001.2", parent_id="T0001", depth=1),
        _row(template_id="T0001.1.1", parent_id="T0001.1", depth=2),
        _row(template_id="T0001.1.2", parent_id="T0001.1", depth=2)])
    order = [(depth, row["template_id"]) for depth, row in tree_order(report)]
    assert order == [(0, "T0001"), (1, "T0001.1"), (2, "T0001.1.1"), (2, "T0001.1.2"),
                     (1, "T0001.2"), (0, "T0002")]


def test_levels_table_states_each_level():
    summary = {"config": {"scan": "drill"}, "discovery_levels": [
        {"level": 0, "timeframe": "15m", "bars_scanned": 4000, "windows": 0, "patterns": 120,
         "in_sample_patterns": 80, "full_scan": True, "skipped": False},
        {"level": 1, "timeframe": "5m", "bars_scanned": 2500, "windows": 97, "patterns": 0,
         "in_sample_patterns": 0, "full_scan": False, "skipped": True}]}
    html = levels_html(summary)
    assert "scan drill" in html and "every bar" in html and "4,000" in html
    assert "drill-down windows (no pattern" in html and ">97<" in html
    assert "no per-level" in levels_html({"config": {}})
