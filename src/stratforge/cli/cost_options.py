"""The cost-override options every command that simulates shares (``--commission``,
``--spread-ticks``, ``--slippage-ticks``, ``--fee-bps``).

Each left out (None) keeps the instrument's own cost model (``Instrument.costs``, built-in or
from ``instruments.yaml``); a given one replaces that setting for the run. Costs are never
searched (see ``stratforge.costs``).
"""

from __future__ import annotations

from typing import Annotated

import typer

Commission = Annotated[float | None, typer.Option(
    "--commission", help="Commission per contract (share, lot) per side, in the instrument's "
                         "currency [the instrument's cost model].")]
SpreadTicks = Annotated[float | None, typer.Option(
    "--spread-ticks", help="Full bid-ask spread in ticks, paid once per round trip [the "
                           "instrument's cost model].")]
SlippageTicks = Annotated[float | None, typer.Option(
    "--slippage-ticks", help="Slippage in ticks per market fill [the instrument's cost "
                             "model].")]
FeeBps = Annotated[float | None, typer.Option(
    "--fee-bps", help="Fee in basis points of notional per fill [the instrument's cost "
                      "model].")]


def cost_overrides(commission: float | None, spread_ticks: float | None,
                   slippage_ticks: float | None, fee_bps: float | None
                   ) -> dict[str, float | None]:
    """The four overrides as keyword values for ``Costs.with_overrides`` (None keeps)."""
    return {"commission": commission, "spread_ticks": spread_ticks,
            "slippage_ticks": slippage_ticks, "fee_bps": fee_bps}
