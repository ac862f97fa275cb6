"""Helpers of the API tests (no tests here): an app on a test database, SSE parsing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from stratforge.api.app import create_app
from stratforge.ops.db import Database, forget_databases

API = "/api/v1"


@dataclass
class Api:
    """A test client of a fresh app and the app's database."""

    client: TestClient
    db: Database

    def get(self, path: str, **kwargs: Any) -> Any:
        """GET ``/api/v1<path>``."""
        return self.client.get(API + path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        """POST ``/api/v1<path>``."""
        return self.client.post(API + path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        """DELETE ``/api/v1<path>`` (``json=`` allowed)."""
        return self.client.request("DELETE", API + path, **kwargs)


@contextmanager
def make_api(database_url: str, monkeypatch, token: str | None = None) -> Iterator[Api]:
    """An app on ``database_url`` with ``STRATFORGE_API_TOKEN`` set to ``token`` (unset for
    None) when it is created; every database it opened is closed afterwards."""
    if token is None:
        monkeypatch.delenv("STRATFORGE_API_TOKEN", raising=False)
    else:
        monkeypatch.setenv("STRATFORGE_API_TOKEN", token)
    app = create_app(database_url)
    try:
        # 127.0.0.1: the host check serves the loopback names (not TestClient's "testserver")
        yield Api(TestClient(app, raise_server_exceptions=False, base_url="http://127.0.0.1"),
                  app.state.db)
    finally:
        forget_databases()


def parse_sse(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The messages of an SSE body (``id``, ``event``, ``data`` parsed as JSON, ``retry``)
    and its comment lines, read with the rules of the SSE format."""
    messages, comments = [], []
    for block in text.split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.split("\n"):
            if not line:
                continue
            if line.startswith(":"):
                comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            fields[name] = fields.get(name, "") + ("\n" if name in fields else "") + value
        if "data" in fields:
            fields["data"] = json.loads(fields["data"])
        if fields:
            messages.append(fields)
    return messages, comments
