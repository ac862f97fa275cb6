"""Errors as JSON: what each failure answers (see docs/api.md, "Errors").

Every error body is a JSON object with ``detail``: a sentence for people, or (422 from request
validation) FastAPI's list of ``{"loc", "msg", "type"}`` naming each bad field. Unknown ids
answer 404, state conflicts 409 (with ``active_id`` when an operation is in the way), bad
settings and unusable data 422, other refusals 400; anything unexpected 500, still as JSON.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from stratforge.errors import ConfigError, DataError, StratforgeError
from stratforge.ops.operations import ConflictError, NotFoundError

log = logging.getLogger("stratforge.api")


class ErrorOut(BaseModel):
    """An error answer."""

    detail: str = Field(description="What was wrong and what to do.")


class ConflictOut(ErrorOut):
    """A 409 answer: the request does not fit the current state."""

    active_id: str | None = Field(None, description="The operation in the way, if any.")


NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such record."}}
"""The ``responses=`` entry of routes that read one record."""
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ConflictOut, "description": "The current state does not allow this."}}
"""The ``responses=`` entry of routes whose request may not fit the current state."""
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {**NOT_FOUND, **CONFLICT}
"""The ``responses=`` entries of routes that change one record."""


def status_of(exc: StratforgeError) -> int:
    """The HTTP status a stratforge error answers with."""
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, ConfigError | DataError):
        return 422
    return 400


def field_error(field: str, message: str, *, where: str = "body") -> RequestValidationError:
    """A 422 naming ``field`` (the same shape FastAPI gives bad requests)."""
    return RequestValidationError([{"loc": (where, field), "msg": message,
                                    "type": "value_error"}])


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities written as strings (strict JSON has no such
    numbers, and a bad request may well hold them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


async def _invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": json_safe(jsonable_encoder(exc.errors()))},
                        status_code=422)


async def _stratforge_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StratforgeError)
    body: dict[str, Any] = {"detail": str(exc)}
    if isinstance(exc, ConflictError) and exc.active_id:
        body["active_id"] = exc.active_id
    return JSONResponse(body, status_code=status_of(exc))


async def _not_implemented(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": f"{request.method} {request.url.path} is not available in "
                                   f"this build yet ({exc or 'not implemented'})"},
                        status_code=501)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error in %s %s", request.method, request.url.path)
    return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the server "
                                   "log"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on ``app``."""
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StratforgeError, _stratforge_error)
    app.add_exception_handler(NotImplementedError, _not_implemented)
    app.add_exception_handler(Exception, _unexpected)
