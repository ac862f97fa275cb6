"""The bounds of run settings accepted over the API (docs/api.md, "Limits").

The settings classes bound what makes sense at all; a request to a shared server is bounded
further, so one request cannot ask for days of work or memory by accident or on purpose.
Every number a research or training request may set has a bound here: the request models
carry them (``maximum``/``minimum`` in the schema), and a value outside answers 422 naming
the field and the bound. ``workers`` is at most ``WORKERS_PER_CORE`` times the server's
cores. Only the server's configuration (``STRATFORGE_RAY_ADDRESS`` of the workers) may name
a Ray cluster: a request with ``ray_address`` is refused.
"""

from __future__ import annotations

import os
from typing import Any

from stratforge.api.errors import field_error

WORKERS_PER_CORE = 4
SEED_BOUND = 2**53 - 1
"""Seeds stay exact in JSON (a browser reads numbers as doubles)."""
COST_BOUND = 1e6


def max_workers() -> int:
    """The most worker processes a request may ask for: 4 per core of this server."""
    return WORKERS_PER_CORE * (os.cpu_count() or 1)


def research_bounds() -> dict[str, tuple[float | None, float]]:
    """``field: (lower or None, upper)`` for every number of a research request."""
    return {"seed": (0, SEED_BOUND), "max_templates": (None, 10_000),
            "match_threshold": (None, 100.0), "mc_iters": (None, 1_000_000),
            "commission": (None, COST_BOUND), "spread_ticks": (None, COST_BOUND),
            "slippage_ticks": (None, COST_BOUND), "fee_bps": (None, COST_BOUND),
            "anova_min_trades": (None, 1_000_000), "top_combos": (None, 10_000),
            "refine_budget": (None, 10_000_000), "refine_rounds": (None, 10_000),
            "refine_min": (None, 1_000_000), "mutation_scale": (None, 10.0),
            "min_trades": (None, 1_000_000), "folds": (None, 100),
            "min_is_trades": (None, 1_000_000), "pbo_configs": (None, 10_000),
            "pbo_splits": (None, 16), "workers": (None, max_workers()),
            "checkpoint_every": (None, 1_000_000), "optimize_templates": (None, 10_000),
            "optimize_iterations": (None, 100_000), "optimize_members": (None, 100_000),
            "seed_share": (None, 1.0), "seed_scale": (None, 10.0)}


def training_bounds() -> dict[str, tuple[float | None, float]]:
    """``field: (lower or None, upper)`` for every number of a training request."""
    return {"seed": (0, SEED_BOUND), "max_days": (None, 100_000),
            "iterations": (None, 100_000), "warmup_days": (None, 10_000),
            "min_samples": (None, 1_000_000), "match_threshold": (None, 100.0),
            "commission": (None, COST_BOUND), "spread_ticks": (None, COST_BOUND),
            "slippage_ticks": (None, COST_BOUND), "fee_bps": (None, COST_BOUND),
            "min_trades": (None, 1_000_000), "regret_after_bars": (None, 100_000)}


def refuse_ray_address(parameters: dict[str, Any]) -> None:
    """A 422 when a request names a Ray cluster (only the server's configuration may)."""
    if parameters.get("ray_address") is not None:
        raise field_error("ray_address", "a request may not name a Ray cluster: only the "
                          "server's configuration does (STRATFORGE_RAY_ADDRESS of the "
                          "workers); leave ray_address out and set executor 'ray'")


def check_workers(field: str, value: int | None) -> None:
    """A 422 when ``value`` (worker processes or jobs) passes ``max_workers()``."""
    bound = max_workers()
    if value is not None and value > bound:
        raise field_error(field, f"at most {bound} ({WORKERS_PER_CORE} per core of this "
                          f"server), got {value}")
