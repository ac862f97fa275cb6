"""Execution of model signals: the delayed_mid fill at exactly T+d (hand-computed), and the
numba kernel against a slow plain-Python restatement of the rules on random markets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import random_bars
from stratforge.evolution.config import make_evolution_config
from stratforge.evolution.execution import REASONS, follow_signal
from stratforge.instruments import get_instrument
from stratforge.sim import simulate
from stratforge.sim.params import Costs
from stratforge.sim.session_flags import session_last_flags

MNQ = get_instrument("MNQ")


def ladder_bars(n: int = 14) -> pd.DataFrame:
    """Bars with open 100 + i and close 100.5 + i, one minute apart in the US morning."""
    ts = pd.date_range("2024-01-03 15:00", periods=n, freq="1min", tz="UTC").as_unit("ns")
    open_ = 100.0 + np.arange(n)
    close = open_ + 0.5
    return pd.DataFrame({"ts": ts, "open": open_, "high": close + 0.25, "low": open_ - 0.25,
                         "close": close, "volume": np.full(n, 10.0)})


def test_default_delay_of_four_bars_fills_at_bar_t_plus_4_not_t_plus_8():
    config = make_evolution_config()
    assert config.delay_bars == 4
    bars = ladder_bars()
    wanted = np.zeros(len(bars), dtype=np.int64)
    wanted[2] = 1  # long wanted at the close of bar 2 only
    trades = follow_signal(bars, wanted, instrument=MNQ, costs=Costs(commission=0.5),
                           delay_bars=config.delay_bars)
    assert len(trades) == 1
    trade = trades.iloc[0]
    # by hand: fill at mean(open, close) of bar 2 + 4 = 6: (106 + 106.5) / 2 = 106.25; the
    # signal is gone at bar 3, so the exit fills at bar 3 + 4 = 7: (107 + 107.5) / 2
    assert trade["entry_bar"] == 6 and trade["entry_price"] == 106.25
    assert trade["exit_bar"] == 7 and trade["exit_price"] == 107.25
    assert trade["reason"] == "signal"
    assert trade["pnl_points"] == 1.0 and trade["pnl"] == 1.0 * 2.0 - 2 * 0.5
    # the same fill as the simulator's own delayed_mid entry
    # (frictionless: costs=None would charge MNQ's own model, one tick of slippage)
    reference = simulate(bars, np.array([2]), np.array([1]), instrument=MNQ,
                         costs=Costs(), fill="delayed_mid", delay_bars=4)
    assert reference["entry_bar"].iloc[0] == 6
    assert reference["entry_price"].iloc[0] == trade["entry_price"]


def test_a_short_reversal_fills_both_legs_at_the_same_delayed_mid():
    bars = ladder_bars()
    wanted = np.array([0, 1, 1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0])
    trades = follow_signal(bars, wanted, instrument=MNQ, costs=Costs(slippage_ticks=1),
                           delay_bars=2)
    assert trades["entry_bar"].tolist() == [3, 5] and trades["exit_bar"].tolist() == [5, 8]
    mid = (bars["open"] + bars["close"]) / 2
    tick = 0.25
    assert trades["entry_price"].tolist() == [mid[3] + tick, mid[5] - tick]
    assert trades["exit_price"].tolist() == [mid[5] - tick, mid[8] + tick]
    assert trades["side"].tolist() == [1, -1]


def reference_follow(o, h, lo, c, flags, wanted, delay, stop, target, slip):
    """Slow restatement of the execution rules (evolution.execution docstring)."""
    n = len(c)
    trades = []
    position = None  # (side, entry_bar, entry_price, mfe, mae)
    blocked = 0
    for k in range(delay, n):
        w = int(wanted[k - delay])
        if blocked and w != blocked:
            blocked = 0
        if position is not None:
            side, start, entry, mfe, mae = position
            if side > 0:
                op, hi, low, cl = o[k], h[k], lo[k], c[k]
                stop_px, target_px = entry - stop, entry + target
                hit_stop_open = stop > 0 and op <= stop_px
                hit_stop = stop > 0 and low <= stop_px
                hit_target_open = target > 0 and op >= target_px
                hit_target = target > 0 and hi >= target_px
                fav, adv = hi - entry, entry - low
            else:
                op, hi, low, cl = o[k], h[k], lo[k], c[k]
                stop_px, target_px = entry + stop, entry - target
                hit_stop_open = stop > 0 and op >= stop_px
                hit_stop = stop > 0 and hi >= stop_px
                hit_target_open = target > 0 and op <= target_px
                hit_target = target > 0 and low <= target_px
                fav, adv = entry - low, hi - entry
            exit_ = None
            if hit_stop_open:
                exit_ = (op - side * slip, "stop")
            elif hit_stop:
                exit_ = (stop_px - side * slip, "stop")
            elif hit_target_open:
                exit_ = (op, "target")
            elif hit_target:
                exit_ = (target_px, "target")
            elif w != side:
                exit_ = ((op + cl) / 2 - side * slip, "signal")
            elif flags[k]:
                exit_ = (cl - side * slip, "session")
            elif k == n - 1:
                exit_ = (cl - side * slip, "end")
            if exit_ is not None:
                trades.append((start, k, side, entry, exit_[0], exit_[1], mfe, mae))
                if exit_[1] != "signal":
                    blocked = side
                position = None
            else:
                position = (side, start, entry, max(mfe, fav), max(mae, adv))
        if position is None and w != 0 and not blocked and k <= n - 2 \
                and not any(flags[k - delay:k + 1]):
            position = (w, k, (o[k] + c[k]) / 2 + w * slip, 0.0, 0.0)
    return trades


@pytest.mark.parametrize("seed", range(8))
def test_kernel_matches_the_plain_python_rules(seed):
    rng = np.random.default_rng(seed)
    bars = random_bars(seed, "2024-03-04", "2024-03-09", keep=0.8)
    n = len(bars)
    runs = rng.integers(1, 12, n)
    sides = rng.choice([-1, 0, 1], n, p=[0.35, 0.3, 0.35])
    wanted = np.repeat(sides, runs)[:n]
    delay = int(rng.integers(1, 6))
    stop_ticks = float(rng.choice([0, 4, 12]))
    target_ticks = float(rng.choice([0, 6, 20]))
    costs = Costs(slippage_ticks=float(rng.choice([0, 1])), commission=0.25, spread_ticks=2,
                  fee_bps=0.5)
    trades = follow_signal(bars, wanted, instrument=MNQ, costs=costs, delay_bars=delay,
                           stop_ticks=stop_ticks, target_ticks=target_ticks)
    o, h, lo, c = (bars[k].to_numpy() for k in ("open", "high", "low", "close"))
    flags = session_last_flags(bars["ts"].array.asi8, MNQ.session)
    expected = reference_follow(o, h, lo, c, flags, wanted, delay, stop_ticks * 0.25,
                                target_ticks * 0.25, costs.slippage_ticks * 0.25)
    assert len(trades) == len(expected) > 10
    got = list(zip(trades["entry_bar"], trades["exit_bar"], trades["side"],
                   trades["entry_price"], trades["exit_price"], trades["reason"],
                   trades["mfe_points"], trades["mae_points"], strict=True))
    for mine, theirs in zip(got, expected, strict=True):
        assert mine[:3] == theirs[:3] and mine[5] == theirs[5]
        assert mine[3] == pytest.approx(theirs[3], abs=1e-9)
        assert mine[4] == pytest.approx(theirs[4], abs=1e-9)
        assert mine[6] == pytest.approx(theirs[6], abs=1e-9)
        assert mine[7] == pytest.approx(theirs[7], abs=1e-9)
    points = ((trades["exit_price"] - trades["entry_price"]) * trades["side"] - 2 * 0.25
              - 0.5e-4 * (trades["entry_price"] + trades["exit_price"]))
    assert np.allclose(trades["pnl"], points * 2.0 - 0.5)
    assert set(trades["reason"]) <= set(REASONS)
