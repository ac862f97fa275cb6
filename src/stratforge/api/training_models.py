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
    folder: str = Field(description="`<home>/training/<operation id>/`.")
    log: bool = Field(description="`training_log.json` is written.")
    report: bool = Field(description="`training_report.html` is written.")
    summary: dict[str, Any] | None = Field(
        description="The log's headline numbers (days, trades, PnL, ...), once written.")
