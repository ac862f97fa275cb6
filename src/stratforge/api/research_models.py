"""Request and response models of the research routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from stratforge.api.deps import SymbolName
from stratforge.api.limits import research_bounds
from stratforge.api.settings_models import settings_request_model
from stratforge.research.config import QUICK, ResearchConfig

MAX_NULL_TWINS = 1000
"""The most null twins one queued run may ask for (each twin is a whole research run)."""

ResearchRunRequest = settings_request_model(
    "ResearchRunRequest", ResearchConfig,
    "Research settings (docs/research.md); every field optional, null means the default.",
    annotations={"timeframes": str | list[str], "symbol": SymbolName},
    extra={"quick": (bool | None, Field(None, description="Smaller sizes underneath: "
                                         f"{QUICK} (each can still be set).")),
           "null_twins": (int | None, Field(
               None, ge=1, le=MAX_NULL_TWINS,
               description="After the run, run the same configuration on this many null "
                           "twins of its data (`stratforge run --null-twins`); the block "
                           "lands in summary.json's `null_twins`."))},
    bounds=research_bounds())


class RunFiles(BaseModel):
    """Which artifacts a run has written so far."""

    summary: bool
    playbook: bool
    report: bool


class RunInfo(BaseModel):
    """One research run folder (``<home>/runs/<run_id>/``)."""

    run_id: str
    created: str | None
    symbol: str | None
    complete: bool = Field(description="Every phase finished.")
    phases_done: list[str]
    files: RunFiles
    damaged: str | None = Field(None, description="Why the run folder cannot be read "
                                "(a damaged config.json or state.json); null when it can.")
    status: str = Field("incomplete", description=(
        "`completed` (every phase done), else the status of the research_run operation that "
        "runs it (`pending`, `running`, `failed`, `cancelled`), `damaged`, or `incomplete` "
        "(stopped with no operation known)."))
    error: str | None = Field(None, description="Why it failed: the operation's error, or "
                              "why the folder is damaged.")
    operation_id: str | None = Field(None, description="The research_run operation of the "
                                     "run, when one is known.")


class RunDetail(RunInfo):
    """One research run with its stored settings."""

    config: dict[str, Any]


class RunList(BaseModel):
    """A page of research runs, newest first."""

    runs: list[RunInfo]
    limit: int
    offset: int
