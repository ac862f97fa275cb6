"""``POST /report-tickets``: a short-lived URL that opens a run's report in a browser tab
(the ticket rules are in ``api.tickets``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from stratforge.api.deps import API_PREFIX
from stratforge.api.security import token_from_env
from stratforge.api.tickets import TICKET_SECONDS, is_report_path, make_ticket
from stratforge.errors import ConfigError

router = APIRouter(tags=["reports"])


class TicketIn(BaseModel):
    """The report to open."""

    path: str = Field(..., max_length=400, description="The report's path, e.g. "
                                                       "/api/v1/research/runs/<run_id>/report")


class TicketOut(BaseModel):
    """Where to open it."""

    url: str = Field(..., description="The path with its ticket (no ticket without a token).")
    expires_in: int


@router.post("/report-tickets", response_model=TicketOut)
def create_ticket(body: TicketIn, request: Request) -> Any:
    """A short-lived URL that opens one run's report in a browser tab without the token."""
    if not is_report_path(body.path):
        raise ConfigError(f"{body.path!r} is not a run's report path (expected "
                              f"{API_PREFIX}/research/runs/<id>/report or "
                              f"{API_PREFIX}/training/runs/<id>/report)")
    token = token_from_env()
    if not request.app.state.auth or token is None:
        return {"url": body.path, "expires_in": TICKET_SECONDS}
    ticket = make_ticket(token.encode(), body.path)
    return {"url": f"{body.path}?ticket={ticket}", "expires_in": TICKET_SECONDS}
