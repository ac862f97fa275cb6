"""``/events``: the change feed as Server-Sent Events (docs/api.md, "Events").

The stream polls the events table (``ops.events.events_after``) every ``POLL_SECONDS`` and
writes each new event as ``id:`` / ``event:`` (its kind) / ``data:`` (the event as JSON),
in id order. It starts after ``Last-Event-ID`` (what a reconnecting ``EventSource`` sends),
else after ``?after=``, else at the newest event (only what happens next). A comment line
(``: keep-alive``) goes out after ``keepalive`` seconds without an event. ``timeout``
(seconds) and ``max_events`` end the stream, so scripts and tests read it deterministically.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from stratforge.api.deps import ID_PATTERN, DbDep, run_db
from stratforge.api.errors import NOT_FOUND
from stratforge.ops.db import Database
from stratforge.ops.events import events_after, last_event_id
from stratforge.ops.operations import get_operation

MAX_EVENT_ID = 2**31 - 1
"""The largest event id (the events table's id is a 32-bit integer on PostgreSQL): a larger
``after`` would overflow the query's parameter there."""

router = APIRouter(tags=["events"])
POLL_SECONDS = 0.5
BATCH = 500
RETRY_MS = 2000
SSE_RESPONSE: dict[int | str, dict[str, Any]] = {200: {
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
    "description": "`id: <n>`, `event: <kind>`, `data: <event JSON>` per event; "
                   "`: keep-alive` comments while idle."}}


def format_event(event: dict[str, Any]) -> str:
    """One event as an SSE message."""
    return f"id: {event['id']}\nevent: {event['kind']}\ndata: {json.dumps(event)}\n\n"


async def event_stream(request: Request, db: Database, start: int, *,
                       operation_id: str | None, timeout: float | None,
                       max_events: int | None, keepalive: float) -> AsyncIterator[str]:
    """The SSE text of the events after ``start`` until the client leaves, ``timeout``
    seconds pass or ``max_events`` were sent."""
    yield f"retry: {RETRY_MS}\n\n"
    cursor, sent = start, 0
    began = last_write = time.monotonic()
    deadline = began + timeout if timeout is not None else None
    while True:
        batch = await run_db(db, events_after, db, cursor, BATCH, operation_id)
        for event in batch:
            yield format_event(event)
            cursor, sent = event["id"], sent + 1
            if max_events is not None and sent >= max_events:
                return
        now = time.monotonic()
        if batch:
            last_write = now
        if deadline is not None and now >= deadline:
            return
        if len(batch) == BATCH:
            continue
        if now - last_write >= keepalive:
            yield ": keep-alive\n\n"
            last_write = now
        if await request.is_disconnected():
            return
        pause = POLL_SECONDS if deadline is None else min(POLL_SECONDS, deadline - now)
        await anyio.sleep(max(0.0, pause))


@router.get("/events", response_class=StreamingResponse,
            responses={**SSE_RESPONSE, **NOT_FOUND})
async def stream_events(
    request: Request,
    db: DbDep,
    after: Annotated[int | None, Query(ge=0, le=MAX_EVENT_ID, description="Start after this "
                                       "event id (0: from the first event).")] = None,
    last_event_id_header: Annotated[int | None, Header(
        alias="Last-Event-ID", ge=0, le=MAX_EVENT_ID,
        description="Sent by a reconnecting EventSource; wins over `after`.")] = None,
    operation_id: Annotated[str | None, Query(pattern=ID_PATTERN,
                                              description="Only this operation's events.")
                            ] = None,
    timeout: Annotated[float | None, Query(gt=0, le=86_400, allow_inf_nan=False,
                                           description="End the stream after this many "
                                                       "seconds.")] = None,
    max_events: Annotated[int | None, Query(ge=1, le=1_000_000, description="End the "
                                            "stream after this many events.")] = None,
    keepalive: Annotated[float, Query(ge=0.1, le=300, allow_inf_nan=False, description=
                                      "Seconds without an event before a keep-alive "
                                      "comment.")] = 15.0,
) -> StreamingResponse:
    """Operation and progress updates as Server-Sent Events (`text/event-stream`)."""
    if operation_id is not None:
        await run_db(db, get_operation, db, operation_id)
    if last_event_id_header is not None:
        start = last_event_id_header
    elif after is not None:
        start = after
    else:
        start = await run_db(db, last_event_id, db)
    stream = event_stream(request, db, start, operation_id=operation_id, timeout=timeout,
                          max_events=max_events, keepalive=keepalive)
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
