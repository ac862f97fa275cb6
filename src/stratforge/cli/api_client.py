"""The CLI's client of the REST API (httpx): base URL, bearer token and readable errors."""

from __future__ import annotations

import os
from typing import Any

import httpx

from stratforge.errors import StratforgeError

DEFAULT_API = "http://127.0.0.1:8000"


class ApiError(StratforgeError):
    """The API answered with an error, or could not be reached."""


class ApiClient:
    """Calls ``<base>/api/v1/...``; ``STRATFORGE_API_TOKEN`` becomes the bearer token."""

    def __init__(self, base: str | None = None, token: str | None = None,
                 timeout: float = 10.0) -> None:
        self.base = (base or os.environ.get("STRATFORGE_API_URL") or DEFAULT_API).rstrip("/")
        token = token or os.environ.get("STRATFORGE_API_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(base_url=f"{self.base}/api/v1", headers=headers,
                                    timeout=timeout)

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
