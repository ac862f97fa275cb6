"""Answers made of artifact files (JSON documents and HTML reports) from the home folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.responses import FileResponse, Response

from stratforge.errors import DataError
from stratforge.ops.operations import NotFoundError

JSON_DOCUMENT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {"schema": {"type": "object"}}},
          "description": "The JSON document as written by the run."}}
HTML_DOCUMENT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {"schema": {"type": "string"}}},
          "description": "A self-contained HTML report (opens offline)."}}


def read_document(path: Path, what: str) -> Any:
    """The parsed JSON file at ``path``: NotFoundError when it is missing, DataError when it
    is not JSON."""
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise NotFoundError(f"{what} is not written yet ({path.name} missing in "
                            f"{path.parent})") from None
    except ValueError as exc:
        raise DataError(f"{what} at {path} is not valid JSON ({exc})", source=str(path)
                        ) from None


def json_file_response(path: Path, what: str) -> Response:
    """The JSON file at ``path`` as it is on disk (checked to be JSON first)."""
    read_document(path, what)
    return Response(path.read_bytes(), media_type="application/json")


def html_file_response(path: Path, what: str) -> FileResponse:
    """The HTML file at ``path`` (NotFoundError when it is missing)."""
    if not path.is_file():
        raise NotFoundError(f"{what} is not written yet ({path.name} missing in "
                            f"{path.parent})")
    return FileResponse(path, media_type="text/html")
