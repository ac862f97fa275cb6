"""The agent's settings, read from the environment (prefix ``STRATFORGE_AGENT_``).

For example ``STRATFORGE_AGENT_MIN_TRAINING_TRADES=50`` raises the training gate's trade
count, ``STRATFORGE_AGENT_SEED=3`` changes the designer's draws. ``trigger_cycle`` reads them
once and stores the gate thresholds in the cycle's parameters, so a cycle that resumes on
another worker is judged by the thresholds it was started with.
"""

from __future__ import annotations

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from stratforge.errors import ConfigError
from stratforge.ops.agent.gates import GateThresholds
from stratforge.ops.agent.spec import MAX_SETS

ENV_PREFIX = "STRATFORGE_AGENT_"


class AgentSettings(BaseSettings):
    """Gate thresholds (see ``ops.agent.gates``) and the designer's defaults."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    min_training_trades: int = Field(30, ge=0, description="Training gate: in-sample trades "
                                                           "at least this many.")
    min_training_sharpe: float = Field(0.0, description="Training gate: in-sample Sharpe "
                                                        "strictly above this.")
    min_directional_accuracy: float = Field(
        0.5, ge=0.0, le=1.0, description="Training gate of a model design: validation "
                                         "directional accuracy at least this.")
    min_validation_sqn: float = Field(0.0, description="Training gate of a model design: "
                                                       "validation SQN strictly above this.")
    min_backtest_win_rate: float = Field(0.45, ge=0.0, le=1.0,
                                         description="Backtest gate: win rate at least.")
    max_backtest_drawdown_pct: float = Field(40.0, ge=0.0,
                                             description="Backtest gate: max drawdown (% of "
                                                         "peak equity) at most.")
    min_backtest_sharpe: float = Field(-0.5, description="Backtest gate: Sharpe at least.")
    seed: int = Field(0, description="Seed of the designer's Thompson draws.")
    n_sets: int = Field(64, ge=1, le=MAX_SETS,
                        description="Parameter sets the training step samples per design.")
    timeframes: str = Field("1h,15m,5m", description="Default timeframe hierarchy.")
    signal_timeframes: str = Field("15m,5m", description="Timeframes signals may fire on.")
    design_kinds: str = Field("template", description="Design kinds the designer proposes: "
                                                      "template, model, or template,model.")
    model_feature_sets: str = Field("momentum,reversion", description="Feature sets of model "
                                                                      "designs.")
    model_algorithms: str = Field("elasticnet", description="Algorithms of model designs.")
    model_horizons: str = Field("3", description="Target horizons (bars) of model designs.")

    def thresholds(self) -> GateThresholds:
        """The gate thresholds of these settings."""
        return GateThresholds(**{name: getattr(self, name)
                                 for name in GateThresholds.model_fields})


def agent_settings() -> AgentSettings:
    """The settings in force now; a bad value is a ConfigError naming the variable."""
    try:
        return AgentSettings()
    except ValidationError as exc:
        problems = "; ".join(f"{ENV_PREFIX}{'_'.join(str(p) for p in e['loc']).upper()}: "
                             f"{e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid agent settings: {problems}") from None
