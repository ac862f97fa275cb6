"""Request and response models of the training routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from stratforge.api.common_models import OperationOut
from stratforge.api.deps import SymbolName
from stratforge.api.limits import training_bounds
from stratforge.api.settings_models import settings_request_model
from stratforge.trainer.config import TrainConfig

TrainingRunRequest = settings_request_model(
    "TrainingRunRequest", TrainConfig,
    "Trainer settings (docs/trainer.md); every field optional, null means the default.",
    annotations={"symbol": SymbolName}, bounds=training_bounds())


class TrainingRunOut(BaseModel):
    """A training operation and what its folder holds."""

    operation: OperationOut
    folder: str = Field(description="`<home>/training/<operation id>/`, or for a run "
                                    "started by `stratforge train` "
                                    "`<home>/training/<SYMBOL>-<timeframe>/`.")
    log: bool = Field(description="`training_log.json` is written.")
    report: bool = Field(description="`training_report.html` is written.")
    summary: dict[str, Any] | None = Field(
        description="The log's headline numbers (days, trades, PnL, ...), once written.")


class TrainingRunItem(BaseModel):
    """One training run of the home in the list."""

    operation: OperationOut | None = Field(
        description="Its operation; null for a folder no operation names (a run made "
                    "before `stratforge train` recorded operations).")
    folder: str = Field(description="Its folder's name under `<home>/training/`.")
    days: int = Field(description="Days trained so far.")
    source: str = Field(description="`cli` (`stratforge train`), `server` (API, dashboard, "
                                    "agent) or `folder` (no operation).")
    symbol: str | None = Field(default=None, description="A folder's symbol (no operation).")
    timeframe: str | None = Field(default=None,
                                  description="A folder's timeframe (no operation).")


class TrainingRunsOut(BaseModel):
    """Every training run of the home: operations newest first, then unnamed folders."""

    runs: list[TrainingRunItem]
