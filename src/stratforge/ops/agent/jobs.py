"""The agent's job handlers: ``agent_cycle`` (the loop), ``training`` and ``backtesting``.

Registered with ``ops.handlers`` (which imports this module), so every worker runs them.
A worker that takes cycles needs ``concurrency`` 2 or more: the cycle holds one slot while
it waits for its child, which needs another (on this worker or any other).
"""

from __future__ import annotations

from typing import Any

from stratforge.config import resolve_home
from stratforge.errors import ConfigError
from stratforge.ops.agent.backtesting import backtest_design
from stratforge.ops.agent.cycle import CYCLE_TYPE, run_cycle
from stratforge.ops.agent.modeling import backtest_model_design, train_model_design
from stratforge.ops.agent.spec import fingerprint, parse_spec
from stratforge.ops.agent.training import train_design, training_seed
from stratforge.ops.context import JobContext
from stratforge.ops.handlers import register


@register(CYCLE_TYPE)
def agent_cycle_job(context: JobContext) -> dict[str, Any]:
    """One research cycle (``ops.agent.cycle``); resumes from its metadata when rerun."""
    return run_cycle(context)


@register("training")
def training_job(context: JobContext) -> dict[str, Any]:
    """Optimise ``parameters.spec`` on its training span (``ops.agent.training``);
    ``parameters.seed`` defaults to the seed derived from the spec's fingerprint."""
    spec = parse_spec(context.parameters.get("spec") or {}, where="training parameters.spec")
    seed = context.parameters.get("seed")
    train = train_model_design if spec.kind == "model" else train_design
    return train(spec, seed=int(seed) if seed is not None else
                 training_seed(fingerprint(spec)), home=resolve_home(),
                 progress=context.progress)


@register("backtesting")
def backtesting_job(context: JobContext) -> dict[str, Any]:
    """Simulate ``parameters.params`` on the backtest span of ``parameters.spec`` (for a
    model design, on the signal of the trained model ``parameters.model_id``)."""
    spec = parse_spec(context.parameters.get("spec") or {},
                      where="backtesting parameters.spec")
    params = context.parameters.get("params")
    if not isinstance(params, dict):
        raise ConfigError("backtesting parameters.params must map exit parameter names to "
                          "values (the training step's chosen set)")
    if spec.kind == "model":
        model_id = context.parameters.get("model_id")
        if not isinstance(model_id, str):
            raise ConfigError("backtesting parameters.model_id must name the model the "
                              "training step trained (its fingerprint)")
        return backtest_model_design(spec, model_id, params, home=resolve_home(),
                                     progress=context.progress)
    return backtest_design(spec, params, home=resolve_home(), progress=context.progress)
