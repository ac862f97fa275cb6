"""Bearer-token authentication and the bind check of ``stratforge serve``.

With ``STRATFORGE_API_TOKEN`` set when the app is created, every request but the public ones
(``/api/v1/health``, and the dashboard's static files under ``/ui/``, which ask for the token
in the browser) must carry ``Authorization: Bearer <token>``; others get a 401 with a JSON
body. The check is a plain ASGI middleware, so it also covers the docs, the schema and
unknown paths. ``check_bind`` refuses to serve a non-loopback address without a token.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from stratforge.api.tickets import is_report_path, ticket_in, valid_ticket
from stratforge.errors import ConfigError

TOKEN_ENV = "STRATFORGE_API_TOKEN"

SCHEME = {"type": "http", "scheme": "bearer",
          "description": f"The value of {TOKEN_ENV} (needed only when the server sets it)."}

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def with_bearer_security(schema: dict[str, Any], public_paths: Iterable[str]
                         ) -> dict[str, Any]:
    """Declare the bearer scheme in an OpenAPI schema, on every operation but those of
    ``public_paths`` (in place; returns the schema). The middleware does the checking, so
    no route pays for a security dependency."""
    public = set(public_paths)
    schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = SCHEME
    for path, item in schema.get("paths", {}).items():
        if path in public:
            continue
        for operation in item.values():
            if isinstance(operation, dict):
                operation["security"] = [{"bearer": []}]
    return schema


def token_from_env() -> str | None:
    """``STRATFORGE_API_TOKEN`` (surrounding blanks removed), or None when unset or empty."""
    value = (os.environ.get(TOKEN_ENV) or "").strip()
    return value or None


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def bind_address(host: str) -> str:
    """``host`` as uvicorn binds it: blanks removed, an IPv6 literal without its brackets
    (``[::1]`` becomes ``::1``). ConfigError for an unbalanced bracket or a bracketed
    value that is not an IPv6 address."""
    name = host.strip()
    if name.startswith("[") or name.endswith("]"):
        inner = name[1:-1] if name.startswith("[") and name.endswith("]") else None
        try:
            if inner is None or ipaddress.ip_address(inner).version != 6:
                raise ValueError(name)
        except ValueError:
            raise ConfigError(f"--host {host!r}: brackets hold an IPv6 address such as "
                              "[::1]; give a host name, an IPv4 address or [IPv6]") from None
        return inner
    if not name:
        raise ConfigError("--host is empty; give an address such as 127.0.0.1 or ::1")
    return name


def check_bind(host: str, token: str | None) -> None:
    """Raise ConfigError when ``host`` is not a loopback address and no token is set."""
    if is_loopback(host) or (token or "").strip():
        return
    raise ConfigError(
        f"refusing to serve the API on {host!r} without authentication: anyone who can reach "
        f"that address could start and cancel work. Set {TOKEN_ENV} to a secret token "
        "(clients then send 'Authorization: Bearer <token>'), or bind 127.0.0.1 (the default)")


class BearerAuthMiddleware:
    """ASGI middleware: a 401 JSON answer unless the bearer token matches (public paths and
    non-HTTP scopes pass through)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], *, token: str,
                 public_paths: Iterable[str] = (), public_prefixes: Iterable[str] = ()
                 ) -> None:
        self.app = app
        self.token = token.encode()
        self.public = frozenset(public_paths)
        self.prefixes = tuple(public_prefixes)

    def is_public(self, path: str) -> bool:
        """Whether ``path`` is served without the token (a public path, or under a public
        prefix such as the dashboard's static files)."""
        return path in self.public or (bool(self.prefixes) and path.startswith(self.prefixes))

    def authorised(self, scope: Scope) -> bool:
        """Whether the request's Authorization header carries the token."""
        for name, value in scope.get("headers") or ():
            if name == b"authorization":
                scheme, _, credentials = value.strip().partition(b" ")
                return scheme.lower() == b"bearer" and \
                    hmac.compare_digest(credentials.strip(), self.token)
        return False

    def ticketed(self, scope: Scope) -> bool:
        """Whether the request is a GET of a run's report with a valid ticket for that path
        (``api.report_tickets``: how a browser tab opens a report without the token)."""
        path = scope.get("path") or ""
        ticket = ticket_in(scope) if scope.get("method") == "GET" else None
        return ticket is not None and is_report_path(path) and \
            valid_ticket(self.token, path, ticket)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass an authorised (or public, or ticketed) request on; answer 401 otherwise."""
        if scope["type"] != "http" or self.is_public(scope.get("path") or "") or \
                self.authorised(scope) or self.ticketed(scope):
            await self.app(scope, receive, send)
            return
        missing = not any(name == b"authorization" for name, _ in scope.get("headers") or ())
        detail = (f"missing bearer token: send 'Authorization: Bearer <token>' ({TOKEN_ENV} "
                  "of the server)") if missing else "invalid bearer token"
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b'Bearer realm="stratforge"')]})
        await send({"type": "http.response.body", "body": body})
