"""The CLI's client of the REST API: a remote server, or the same API in process.

Where the calls go, first match wins:

1. ``--api URL`` or ``STRATFORGE_API_URL``: that server, and only it;
2. the server named in ``<home>/server.json`` (written by ``stratforge serve``) when it
   answers its health check;
3. otherwise the API itself, built in this process on the home's database
   (``create_app()`` behind Starlette's TestClient): reads need no server and print the
   same output. Commands that need a worker to run what they queue say so
   (:meth:`ApiClient.needs_worker`).

``STRATFORGE_API_TOKEN`` becomes the bearer token either way.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from stratforge.errors import StratforgeError

DEFAULT_API = "http://127.0.0.1:8000"
PROBE_TIMEOUT = 1.0
"""Seconds the health check of a marked server may take before the API runs in process."""
LOCAL_BASE = "http://127.0.0.1"
"""The base URL the in-process API is addressed with (never leaves the process)."""


class ApiError(StratforgeError):
    """The API answered with an error, or could not be reached."""


def _answers(url: str, headers: dict[str, str]) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/health", headers=headers,
                         timeout=PROBE_TIMEOUT).status_code in (200, 503)
    except httpx.HTTPError:
        return False


def _in_process_client(headers: dict[str, str]) -> httpx.Client:
    """A client whose calls run the API in this process on the configured database."""
    import warnings

    with warnings.catch_warnings():  # starlette's notice about its httpx transport
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from stratforge.api.app import create_app

    return TestClient(create_app(), base_url=f"{LOCAL_BASE}/api/v1", headers=headers,
                      raise_server_exceptions=False)


class ApiClient:
    """Calls ``<base>/api/v1/...`` on a server, or on the API in process (``local``)."""

    local = False
    """True when the calls run the API in this process (no server for this home)."""

    def __init__(self, base: str | None = None, token: str | None = None,
                 timeout: float = 10.0) -> None:
        token = token or os.environ.get("STRATFORGE_API_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        explicit = base or os.environ.get("STRATFORGE_API_URL")
        if explicit:
            self.base = explicit.rstrip("/")
        else:
            from stratforge.cli.server_marker import marked_url
            from stratforge.config import get_settings

            marked = marked_url(get_settings().home)
            self.base = marked.rstrip("/") if marked else DEFAULT_API
            self.local = marked is None or not _answers(self.base, headers)
        if self.local:
            self.base = "(in process)"
            self._client = _in_process_client(headers)
        else:
            self._client = httpx.Client(base_url=f"{self.base}/api/v1", headers=headers,
                                        timeout=timeout)

    def needs_worker(self, what: str, hint: str = "") -> None:
        """Refuse ``what`` in one line when no server runs for this home: what it queues
        would wait for a worker that does not exist."""
        if self.local:
            raise ApiError(f"{what} needs a worker to run it and no stratforge server is "
                           f"running for this home: start one with `stratforge serve`"
                           f"{hint}, or pass --api URL")

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON body of a successful call; ApiError with the API's detail otherwise."""
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach the stratforge API at {self.base} ({exc}); start it "
                           "with `stratforge serve` or pass --api URL") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            if isinstance(detail, list):  # FastAPI validation errors
                detail = "; ".join(f"{'.'.join(str(p) for p in d.get('loc', []))}: "
                                   f"{d.get('msg')}" for d in detail)
            elif isinstance(detail, dict):
                detail = detail.get("message") or str(detail)
            raise ApiError(f"{method} {path}: {response.status_code} {detail}")
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        """GET with query parameters (None values dropped)."""
        return self.request("GET", path, params={k: v for k, v in params.items()
                                                 if v is not None})

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def items(body: Any, key: str) -> list[dict[str, Any]]:
    """A list answer, or the list under ``key`` (or ``items``) of an object answer."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for name in (key, "items"):
            if isinstance(body.get(name), list):
                return body[name]
    return []
