"""Response models of the template-library routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class TemplateOut(BaseModel):
    """One template (docs/discovery.md, "Templates"); NaN statistics are null."""

    template_id: str
    timeframes: list[str]
    centroid_scaled: list[float | None]
    centroid_raw: list[float | None]
    members: int
    member_ids: list[str] | None = Field(None, description="Only with `?members=true`.")
    direction: int = Field(description="0 fades the move on either side, +1 long only, -1 "
                                       "short only.")
    oracle_win_rate: float | None
    oracle_direction_share: float | None
    mfe_percentiles: list[float | None]
    mae_percentiles: list[float | None]
    long_share: float | None
    physics_variance: float | None
    parent_id: str | None
    params: dict[str, Any]
    conditions: list[dict[str, Any]] = Field(
        default_factory=list,
        description="A fission child's cuts: each {feature, above, cut} (raw units); the "
                    "template matches only bars above (above true) or at or below the cut.")


class LibraryOut(BaseModel):
    """The template library of a symbol (``stratforge discover``)."""

    symbol: str
    folder: str
    feature_names: list[str] = Field(description="The order of the centroid dimensions.")
    timeframes: list[str] = Field(description="Timeframes with a feature scaler.")
    metadata: dict[str, Any]
    count: int
    templates: list[TemplateOut]
