"""The cost model of an instrument: what every fill and round trip costs, fixed for a run.

A cost is a fact about the market, never a parameter to search: every instrument carries a
:class:`Costs` (built-in defaults below, overridable in ``instruments.yaml`` under ``costs:``
and per run by settings or CLI flags such as ``--commission``), and the simulator charges it
to every trade. Parameter spaces, samplers and parameter tables refuse cost names
(:data:`COST_FIELDS`).

Per fill (entry and exit), for one contract / share / lot:

- ``spread_ticks``: the full bid-ask spread; every market fill crosses half of it, so a round
  trip pays one full spread (charged in ``pnl_points``);
- ``slippage_ticks``: ticks each market fill moves against the trade (a limit fill at the
  target pays none); velocity slippage adds ``velocity_slippage`` ticks per tick of the last
  completed bar's close-to-close move, at most ``velocity_cap_ticks`` (0 = no cap);
- ``fee_bps``: a fee in basis points of the fill's notional (FX, equities, crypto), charged in
  ``pnl_points`` as ``fee_bps / 1e4 * price`` per fill;
- ``commission``: currency per contract per side, charged in currency (``fees``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from stratforge.errors import ConfigError

COST_FIELDS: tuple[str, ...] = (
    "commission", "spread_ticks", "slippage_ticks", "fee_bps", "velocity_slippage",
    "velocity_cap_ticks", "quantity",
)
"""Every cost setting (and the position size): never a searchable parameter."""
LEGACY_COST_NAMES: tuple[str, ...] = ("cost_points",)
"""Old cost names that are refused with a pointer to the cost model."""
WHERE_COSTS_ARE_SET = (
    "costs are a fact about the market, fixed for a run: set them per instrument in "
    "<home>/instruments.yaml under `costs:` (commission, spread_ticks, slippage_ticks, "
    "fee_bps, velocity_slippage, velocity_cap_ticks), or for one run with --commission, "
    "--spread-ticks, --slippage-ticks and --fee-bps (see docs/instruments.md)")


@dataclass(frozen=True)
class Costs:
    """Trading costs applied to every trade (see the module docstring for the rules).

    Attributes:
        commission: currency per contract (share, lot) per side; a round trip pays it twice.
        spread_ticks: the full bid-ask spread in ticks; a round trip pays it once.
        slippage_ticks: ticks every market fill moves against the trade (not target fills).
        fee_bps: fee in basis points of notional per fill.
        velocity_slippage: extra slippage ticks per tick of the last completed bar's
            close-to-close move (0 = off).
        velocity_cap_ticks: the most extra ticks velocity slippage adds (0 = no cap).
        quantity: contracts (shares, lots) per trade; must be > 0.
    """

    commission: float = 0.0
    spread_ticks: float = 0.0
    slippage_ticks: float = 0.0
    fee_bps: float = 0.0
    velocity_slippage: float = 0.0
    velocity_cap_ticks: float = 0.0
    quantity: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, check_cost(f.name, getattr(self, f.name), "Costs"))

    def to_dict(self) -> dict[str, float]:
        """The costs as a plain dict."""
        return asdict(self)

    def with_overrides(self, **values: float | None) -> Costs:
        """A copy with the given settings replaced (None keeps the current value)."""
        unknown = sorted(set(values) - set(COST_FIELDS))
        if unknown:
            raise ConfigError(f"unknown cost setting(s) {', '.join(unknown)}; known: "
                              f"{', '.join(COST_FIELDS)}")
        return replace(self, **{k: v for k, v in values.items() if v is not None})

    def round_trip_price(self, tick_size: float, price: float) -> float:
        """Price units one round trip costs at ``price`` before velocity slippage: the
        spread once, slippage on two market fills and the fee on two notionals."""
        return (self.spread_ticks * tick_size + 2.0 * self.slippage_ticks * tick_size
                + 2.0 * self.fee_bps * 1e-4 * price)

    def round_trip_currency(self, tick_size: float, point_value: float, price: float) -> float:
        """Currency one round trip of ``quantity`` costs at ``price`` (price costs times the
        point value, plus two commissions), before velocity slippage."""
        return (self.round_trip_price(tick_size, price) * point_value * self.quantity
                + 2.0 * self.commission * self.quantity)

    def per_fill_price(self, tick_size: float, price: float) -> float:
        """Price units one market fill costs at ``price``: half the spread, the slippage and
        the fee (before velocity slippage)."""
        return (0.5 * self.spread_ticks * tick_size + self.slippage_ticks * tick_size
                + self.fee_bps * 1e-4 * price)

    def figures(self, tick_size: float, point_value: float, price: float) -> dict[str, float]:
        """One market fill and one round trip at ``price``, in price units and in currency
        (``quantity`` contracts, commissions included), before velocity slippage."""
        round_trip = self.round_trip_currency(tick_size, point_value, price)
        return {"per_fill_price": self.per_fill_price(tick_size, price),
                "per_fill_currency": round_trip / 2.0,  # a round trip is two fills
                "round_trip_price": self.round_trip_price(tick_size, price),
                "round_trip_currency": round_trip}

    def describe(self) -> str:
        """One line such as 'spread 1 tick, slippage 1 tick per fill, commission 0.62 per
        side' (only the parts that are set)."""
        parts = []
        if self.spread_ticks:
            parts.append(f"spread {self.spread_ticks:g} tick{_s(self.spread_ticks)}")
        if self.slippage_ticks:
            parts.append(f"slippage {self.slippage_ticks:g} tick{_s(self.slippage_ticks)} "
                         "per fill")
        if self.velocity_slippage:
            cap = (f", at most {self.velocity_cap_ticks:g}" if self.velocity_cap_ticks else "")
            parts.append(f"velocity slippage {self.velocity_slippage:g} x the last bar's move"
                         f"{cap} ticks")
        if self.fee_bps:
            parts.append(f"fee {self.fee_bps:g} bp of notional per fill")
        if self.commission:
            parts.append(f"commission {self.commission:g} per side")
        if self.quantity != 1.0:
            parts.append(f"quantity {self.quantity:g}")
        return ", ".join(parts) if parts else "no costs"


def _s(value: float) -> str:
    return "" if value == 1 else "s"


def check_cost(name: str, value: Any, where: str) -> float:
    """``value`` as a finite float >= 0 (> 0 for quantity), else a ConfigError naming it."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: {name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ConfigError(f"{where}: {name} must be a finite number >= 0, got {value!r}")
    if name == "quantity" and number == 0:
        raise ConfigError(f"{where}: quantity must be > 0, got 0")
    return number


def refuse_cost_names(names: Any, where: str) -> None:
    """A ConfigError when any of ``names`` is a cost (costs are never searched)."""
    found = [str(n) for n in names if str(n) in COST_FIELDS or str(n) in LEGACY_COST_NAMES]
    if found:
        raise ConfigError(f"{where}: {', '.join(found)} is a cost, not a parameter to search; "
                          f"{WHERE_COSTS_ARE_SET}")


# Realistic per-instrument defaults (retail/ECN all-in figures, one contract / lot / share).
DEFAULT_COSTS = Costs(spread_ticks=1.0, slippage_ticks=1.0)
"""Costs of an instrument that states none (a user instrument without ``costs:``)."""
BUILTIN_COSTS: dict[str, Costs] = {
    # CME equity-index futures: one tick spread, one tick slippage, broker + exchange fees
    "MNQ": Costs(commission=0.62, spread_ticks=1.0, slippage_ticks=1.0),
    "MES": Costs(commission=0.62, spread_ticks=1.0, slippage_ticks=1.0),
    "NQ": Costs(commission=2.25, spread_ticks=1.0, slippage_ticks=1.0),
    "ES": Costs(commission=2.25, spread_ticks=1.0, slippage_ticks=1.0),
    # EURUSD, one standard lot on an ECN: 0.8 pip spread, 0.2 pip slippage, $3.50 per side
    "EURUSD": Costs(commission=3.5, spread_ticks=8.0, slippage_ticks=2.0),
    # US equities per share: one-cent spread and slippage, $0.005 per share per side
    "SPY": Costs(commission=0.005, spread_ticks=1.0, slippage_ticks=1.0),
    "EQUITY": Costs(commission=0.005, spread_ticks=1.0, slippage_ticks=1.0),
    "AAPL": Costs(commission=0.005, spread_ticks=1.0, slippage_ticks=1.0),
    # spot crypto: 5 bp taker fee per side, $0.50 spread, $0.50 slippage per fill
    "BTCUSD": Costs(spread_ticks=50.0, slippage_ticks=50.0, fee_bps=5.0),
}
