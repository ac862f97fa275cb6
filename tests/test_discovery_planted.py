"""Acceptance test of discovery on the planted market (docs/synthetic.md, "The planted edge").

Issue acceptance: "on the planted market, a template containing the planted pattern exists and
its oracle win rate reflects the planted probability". The planted rule: a shock of
``k_sigma`` = 5 local one-minute sigmas within one minute, then with probability
``p_revert`` = 0.7 a reversion of ``revert_fraction`` = 0.6 of the shock over 15 minutes.

**Hierarchy.** The shock is a one-minute event, so the pattern that can hold it is the 1m bar
of the shock (a cascade: its true range is several times the mean of the previous 20). The
drill-down scans a level below the top only inside the windows opened by the patterns of the
level above, and a 5-sigma one-minute shock is only about 2.2 sigmas of a 5m bar, so a coarser
top rarely opens a window over it. Measured on 90 days, seed 1 (415 events), the share of
planted events found at 1m: hierarchy ``["1m"]`` 65%, ``["5m", "1m"]`` 18%,
``["15m", "5m", "1m"]`` 12%, ``["1h", "15m", "5m", "1m"]`` 4%. A 1m top (every 1m bar
scanned) is therefore the meaningful hierarchy for a one-minute edge; the coarser levels
would only add patterns of other timeframes to the clustering and filter the 1m ones away.

**Oracle of a planted event.** ``oracle_side`` is the mean-reversion side ``-sign(z)``: after
an up-shock z is far above the centre, so the side is short, the fade. ``oracle_win`` is
``mfe > mae`` over the next 60 one-minute bars. With no reversion the price after the shock is
a martingale and ``oracle_win`` is a fair coin (the rate of non-planted patterns). With the
reversion the price drifts 0.6 * 5 = 3 local sigmas along the side over 15 minutes, against
noise of about sqrt(60) = 7.7 sigmas over the 60 bars: a Brownian motion with that drift
has ``mfe > mae`` with probability about 0.725 (``_drift_win_probability``, computed here).
So planted members should win at ``p_revert * 0.725 + (1 - p_revert) * base``, about 0.66,
and a template of share ``s`` planted members at ``s`` times that plus ``1 - s`` times base.

Measured with this file's analysis (200 days, hierarchy ``["1m"]``) over seeds 1-8 (seed 1
first): recall 0.628-0.677 (0.656; 820-900 events each); win rate of reverting planted members
0.683-0.756 (0.748; n about 400; model 0.725), of non-reverting ones 0.411-0.557 (0.522; n
about 175), of non-planted patterns 0.482-0.513 (0.502); the most planted template holds
70-84% planted members (79%) where 11-12% of all patterns are planted; the planted-dominated
templates together win 0.585-0.624 (0.624), within 1.5 standard errors of the mixture above
for every seed. The thresholds below sit several binomial standard errors away from these;
every assertion passes on all 8 seeds.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from stratforge.data import build_atlas
from stratforge.data.demo import synthesize_into_store, synthetic_spec
from stratforge.discovery.fractal import discover_patterns
from stratforge.discovery.patterns import oracle_lookahead
from stratforge.discovery.templates import cluster_patterns
from stratforge.features.vectors import FEATURE_NAMES
from stratforge.timeframes import parse_timeframe

SEED = 1
DAYS = 200
"""About 900 planted events (5 per trade date): enough for the binomial tests below to sit
many standard errors from their thresholds; the market builds and is discovered in seconds."""
HIERARCHY = ["1m"]
"""See the module docstring: only a 1m top scans every minute where a shock can sit."""
MIN_TEMPLATE_MEMBERS = 30
"""Templates this small or smaller are too noisy to speak for a win rate (k-means makes
about N / 100 clusters, so typical templates hold 50-150 members)."""
DOMINATED_SHARE = 0.5
"""A template is "dominated" by planted events when at least half of its members are planted
events, about four times the share over all patterns (11-12%)."""
MINUTE_NS = 60 * 1_000_000_000


def _build(folder, kind):
    synthesize_into_store("MNQ", days=DAYS, seed=SEED, kind=kind, resolution="1m", home=folder)
    build_atlas("MNQ", home=folder)
    return folder


def _drift_win_probability(drift_sigmas: float, horizon_minutes: float, lookahead: int, *,
                           paths: int = 20_000, steps_per_minute: int = 30,
                           seed: int = 0) -> float:
    """P(mfe > mae) over ``lookahead`` minutes of a Brownian motion with one sigma per minute
    plus the planted reversion drift: ``drift_sigmas`` reached over ``horizon_minutes``,
    front-loaded as the generator does (share ``(1 - exp(-4t/T)) / (1 - exp(-4))``)."""
    rng = np.random.default_rng(seed)
    steps = lookahead * steps_per_minute
    t = np.arange(1, steps + 1) / steps_per_minute
    drift = drift_sigmas * np.where(
        t < horizon_minutes, (1 - np.exp(-4 * t / horizon_minutes)) / (1 - math.exp(-4)), 1.0)
    wins, chunk = 0, 2_000
    for _ in range(paths // chunk):
        path = np.cumsum(rng.standard_normal((chunk, steps)), axis=1) / math.sqrt(
            steps_per_minute) + drift
        wins += int((path.max(axis=1) > -path.min(axis=1)).sum())
    return wins / (paths // chunk * chunk)


def _events(spec: dict) -> pd.DataFrame:
    events = pd.DataFrame(spec["planted"]["events"])
    ts = pd.to_datetime(events["ts"], utc=True).astype("datetime64[ns, UTC]")
    return pd.DataFrame({"ts": ts.array.asi8, "direction": events["direction"].astype(int),
                         "reverted": events["reverted"].astype(bool)})


def _match(events: pd.DataFrame, patterns: pd.DataFrame) -> np.ndarray:
    """Per planted event, the pattern id of the 1m pattern at the shock minute or, failing
    that, at the next minute ("" when neither is a pattern)."""
    minute = patterns[patterns["timeframe"] == "1m"]
    ids = dict(zip(minute["ts"].array.asi8.tolist(), minute["pattern_id"].astype(str),
                   strict=True))
    return np.array([ids.get(t, ids.get(t + MINUTE_NS, "")) for t in events["ts"]],
                    dtype=object)


def _analyse(home, events: pd.DataFrame) -> dict:
    """Discovery and clustering of the market in ``home``, with the planted events matched to
    patterns and to templates."""
    result = discover_patterns("MNQ", timeframes=HIERARCHY, home=home, fresh=True)
    patterns = result.patterns.set_index(result.patterns["pattern_id"].astype(str))
    library = cluster_patterns(result.patterns)
    events = events.assign(pattern_id=_match(events, result.patterns))
    found = events[events["pattern_id"] != ""]
    planted = patterns.loc[found["pattern_id"]].assign(
        direction=found["direction"].to_numpy(), reverted=found["reverted"].to_numpy())
    members = library.members_frame()
    members["planted"] = members["pattern_id"].isin(set(found["pattern_id"]))
    members["win"] = patterns.loc[members["pattern_id"], "oracle_win"].to_numpy(dtype=bool)
    fade = pd.Series(-found["direction"].to_numpy(), index=found["pattern_id"].to_numpy())
    members["fade"] = members["pattern_id"].map(fade).fillna(0).astype(int)
    # the side a two-sided template enters on: against the member's own move
    members["entry"] = -np.sign(patterns.loc[members["pattern_id"], "z"].to_numpy())
    members["fades_shock"] = members["planted"] & (members["entry"] == members["fade"])
    per_template = members.groupby("template_id").agg(
        members=("pattern_id", "size"), planted=("planted", "sum"), wins=("win", "sum"),
        fade_sum=("fade", "sum"), fades_shock=("fades_shock", "sum"),
        shocks_up=("fade", lambda f: int((f == -1).sum())),
        shocks_down=("fade", lambda f: int((f == 1).sum())))
    per_template["share"] = per_template["planted"] / per_template["members"]
    per_template["direction"] = pd.Series({t.template_id: t.direction
                                           for t in library.templates})
    per_template["win_rate"] = pd.Series({t.template_id: t.oracle_win_rate
                                          for t in library.templates})
    others = patterns[~patterns.index.isin(set(found["pattern_id"]))]
    return {"events": events, "patterns": patterns, "library": library, "planted": planted,
            "members": members, "templates": per_template,
            "base_rate": float(others["oracle_win"].mean()),
            "recall": len(found) / len(events)}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """The planted market, its discovery and clustering, and the planted events matched."""
    home = _build(tmp_path_factory.mktemp("planted"), "planted")
    spec = synthetic_spec("MNQ", home)
    return {"spec": spec["planted"], **_analyse(home, _events(spec))}


@pytest.fixture(scope="module")
def reversion_win_probability(planted):
    """The oracle win probability of a reverting planted event under the planted rule."""
    rule = planted["spec"]
    return _drift_win_probability(rule["k_sigma"] * rule["revert_fraction"],
                                  rule["horizon_minutes"], oracle_lookahead(
                                      parse_timeframe("1m")))


def _se(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n)


def test_most_planted_events_are_found_as_fading_cascades(planted):
    # Measured recall 0.63-0.68 over 8 seeds (n ~ 890, standard error 0.016): the cascade
    # flag needs the shock minute's true range beyond 3 times the mean of the previous 20,
    # which a 5-sigma shock misses when the minute's own noise runs against it or the
    # previous minutes were wide. 0.55 is more than 5 standard errors below every seed.
    assert len(planted["events"]) > 700
    assert planted["recall"] >= 0.55, planted["recall"]
    found = planted["planted"]
    # The oracle side of the shock bar fades the shock (z is pushed beyond the centre).
    assert (found["oracle_side"].to_numpy() == -found["direction"].to_numpy()).mean() >= 0.99
    assert (found["type"].str.contains("ROCHE_SNAP")).mean() >= 0.95
    # The reverting share among the found events is the planted probability: whether a
    # shock reverts is decided after the shock bar, so finding it cannot depend on it.
    p, n = planted["spec"]["p_revert"], len(found)
    assert abs(found["reverted"].mean() - p) <= 4 * _se(p, n)


def test_a_template_is_dominated_by_planted_events_and_fades_them(planted):
    table = planted["templates"]
    overall = table["planted"].sum() / table["members"].sum()
    big = table[table["members"] > MIN_TEMPLATE_MEMBERS]
    best = big.loc[big["share"].idxmax()]
    # Measured: the best template holds 70-84% planted members over 8 seeds, against an
    # overall share of 11-12%.
    assert best["share"] >= DOMINATED_SHARE
    assert best["share"] >= 4 * overall
    # Templates are two-sided (the vectors are mirror-invariant): a dominated template holds
    # shocks up and down alike and enters against each member's own move, which is against
    # the planted shock for nearly every planted member.
    dominated = big[big["share"] >= DOMINATED_SHARE]
    assert (dominated["direction"] == 0).all()
    assert (dominated["fades_shock"] >= 0.9 * dominated["planted"]).all()
    both = dominated[["shocks_up", "shocks_down"]].sum()
    assert both.min() >= 0.3 * both.sum(), both  # the symmetric edge is not split by side
    assert (dominated[["shocks_up", "shocks_down"]].min(axis=1) > 0).all()


def test_reverting_planted_events_win_as_the_planted_drift_predicts(planted,
                                                                   reversion_win_probability):
    found, base = planted["planted"], planted["base_rate"]
    reverted = found.loc[found["reverted"], "oracle_win"]
    stayed = found.loc[~found["reverted"], "oracle_win"]
    # The model (about 0.725) against the reverting members (measured 0.683-0.756 over 8
    # seeds, n ~ 400, standard error 0.022): within 4 standard errors, while 0.5 is about 10
    # away.
    w = reversion_win_probability
    assert 0.68 < w < 0.77
    assert abs(reverted.mean() - w) <= 4 * _se(w, len(reverted)), (reverted.mean(), w)
    # A shock that stays leaves a martingale: the base rate of the other patterns (measured
    # 0.41-0.56 against bases 0.48-0.51, n ~ 175, standard error 0.038).
    assert abs(stayed.mean() - base) <= 4 * _se(base, len(stayed)), (stayed.mean(), base)
    # Reverting members win more than those that did not revert (Fisher's exact test, one
    # sided, at 1%; the model difference 0.725 - 0.5 is about 5 standard errors; measured
    # differences 0.14-0.35 over 8 seeds, z 3.3-7, seed 1: 0.23).
    table = [[int(reverted.sum()), int((~reverted).sum())],
             [int(stayed.sum()), int((~stayed).sum())]]
    assert stats.fisher_exact(table, alternative="greater").pvalue < 1e-2


def test_planted_templates_win_rate_reflects_the_reversion_probability(
        planted, reversion_win_probability):
    table, base = planted["templates"], planted["base_rate"]
    p_revert = planted["spec"]["p_revert"]
    planted_rate = p_revert * reversion_win_probability + (1 - p_revert) * base
    big = table[table["members"] > MIN_TEMPLATE_MEMBERS]
    dominated = big[big["share"] >= DOMINATED_SHARE]
    # The dominated templates together (several hundred members): their win rate is the
    # share-weighted mixture of the planted rate and the base rate, within 4 standard
    # errors, and far above the base rate (binomial test against the base rate).
    members, wins = int(dominated["members"].sum()), int(dominated["wins"].sum())
    share = dominated["planted"].sum() / members
    expected = share * planted_rate + (1 - share) * base
    assert abs(wins / members - expected) <= 4 * _se(expected, members), (wins / members,
                                                                          expected)
    # Measured p-values 1e-5 to 1e-9 (z 4-6) over 8 seeds. Patterns close in time share
    # their future path, so the binomial standard error is a little optimistic: 1e-3.
    assert stats.binomtest(wins, members, base, alternative="greater").pvalue < 1e-3
    # The most planted template on its own: the library's oracle win rate agrees with its
    # members, lies above the base rate and within 4 standard errors of its mixture.
    best = big.loc[big["share"].idxmax()]
    assert best["win_rate"] == pytest.approx(best["wins"] / best["members"])
    expected = best["share"] * planted_rate + (1 - best["share"]) * base
    assert best["win_rate"] > base
    assert abs(best["win_rate"] - expected) <= 4 * _se(expected, int(best["members"]))


def _nearest_template(library, patterns: pd.DataFrame) -> np.ndarray:
    """The id of the template whose scaled centroid is nearest to each pattern's scaled
    feature vector (patterns with a NaN feature get "")."""
    ids = np.array([t.template_id for t in library.templates], dtype=object)
    centroids = np.array([t.centroid_scaled for t in library.templates])
    scaled = library.scale(patterns[list(FEATURE_NAMES)], "1m")
    known = np.isfinite(scaled).all(axis=1)
    nearest = np.full(len(patterns), "", dtype=object)
    distance = ((scaled[known, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    nearest[known] = ids[distance.argmin(axis=1)]
    return nearest


def test_null_market_shows_no_planted_excess(planted, tmp_path_factory):
    # The null market of the same seed (the same random numbers without the planted drift,
    # nor the fat tails): there are no shocks at the planted minutes, so patterns there are
    # as rare as at any minute (measured 2-4% of planted minutes against 63-68% on the
    # planted market, 8 seeds) ...
    home = _build(tmp_path_factory.mktemp("null"), "null")
    null = _analyse(home, planted["events"][["ts", "direction", "reverted"]])
    assert null["recall"] < 0.1, null["recall"]
    # ... and the feature-space regions of the planted-dominated templates (null patterns
    # assigned to the nearest centroid of the planted library) show no win-rate excess at the
    # level the planted templates pass (1e-3). Measured over 8 seeds: 129-202 null patterns
    # there, win rate minus base -0.05 to +0.06, one-sided p 0.05-0.9. With so few patterns
    # the test is loose (a planted-size excess of 0.1 would give p ~ 0.01); the recall above
    # is the sharp contrast. Single null templates are not tested: with ~40 templates of ~100
    # members the best one reaches a Bonferroni-corrected 1% now and then (seed 2 does).
    table = planted["templates"]
    big = table[table["members"] > MIN_TEMPLATE_MEMBERS]
    dominated = list(big.index[big["share"] >= DOMINATED_SHARE])
    patterns = null["patterns"]
    inside = patterns[np.isin(_nearest_template(planted["library"], patterns), dominated)]
    base = null["base_rate"]
    wins, members = int(inside["oracle_win"].sum()), len(inside)
    assert members >= 50, members
    pvalue = stats.binomtest(wins, members, base, alternative="greater").pvalue
    assert pvalue > 1e-3, (wins, members, base, pvalue)
