"""The request guard of the API server: which hosts, origins, bodies and sizes it takes, and
the security headers of every answer (docs/api.md, "Origins, hosts and limits").

A plain ASGI middleware, outermost, so it covers every route, the dashboard's files and
unknown paths alike, and costs a GET a few dictionary look-ups:

- ``Host`` must name one of the allowed hosts (the loopback names, the bind address and
  those configured), else 400: a page served from a DNS name that someone pointed at this
  machine (DNS rebinding) is refused.
- A state-changing request (POST, PUT, PATCH, DELETE) whose ``Origin`` (or, without one,
  ``Referer``) is not this server's own is refused with 403, with or without a token: a web
  page from elsewhere cannot start or cancel work. Requests without either header (curl,
  the CLI, scripts) pass.
- A request with a body must say ``Content-Type: application/json`` (415), and the body
  may not exceed the configured size (413, default 1 MiB).
- Every answer carries a Content-Security-Policy that allows only the server's own scripts,
  ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` and a Referrer-Policy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import HTTPException

from stratforge.api.security import Receive, Scope, Send
from stratforge.errors import ConfigError

ALLOWED_HOSTS_ENV = "STRATFORGE_ALLOWED_HOSTS"
MAX_BODY_ENV = "STRATFORGE_MAX_BODY_BYTES"
DEFAULT_MAX_BODY = 1024 * 1024
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
"""The dashboard's policy: scripts only from this server (no inline script, no eval);
inline styles stay allowed because plotly.js sets style attributes on what it draws."""
REPORT_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
              "img-src data: blob:; font-src data:; base-uri 'none'; form-action 'none'; "
              "frame-ancestors 'none'; sandbox allow-scripts allow-popups")
"""The policy of a run's self-contained report (its plotly.js is inline): sandboxed into an
origin of its own with no network, so its scripts can neither read the dashboard's token nor
call the API."""
SECURITY_HEADERS = ((b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"))


def _host_name(value: str) -> str:
    """The host of a ``Host`` header value, a URL's netloc or a bare address, lower case,
    without the port (an IPv6 literal keeps no brackets)."""
    value = value.strip().lower()
    if value.count(":") > 1 and not value.startswith("["):
        return value  # a bare IPv6 address
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value[1:]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def allowed_hosts(bind: str | None = None, extra: Iterable[str] = ()) -> frozenset[str]:
    """The loopback names, ``bind`` (unless it is a wildcard address) and ``extra``, as host
    names without port or brackets; ``*`` in ``extra`` allows any host."""
    names = set(LOCAL_HOSTS)
    if bind and bind.strip("[]") not in ("0.0.0.0", "::", ""):
        names.add(_host_name(bind))
    names.update("*" if item.strip() == "*" else _host_name(item)
                 for item in extra if item.strip())
    return frozenset(names)


def hosts_from_env() -> frozenset[str]:
    """The allowed hosts: the loopback names plus ``STRATFORGE_ALLOWED_HOSTS`` (commas)."""
    return allowed_hosts(None, (os.environ.get(ALLOWED_HOSTS_ENV) or "").split(","))


def max_body_from_env() -> int:
    """``STRATFORGE_MAX_BODY_BYTES`` (default 1 MiB); ConfigError unless a positive integer."""
    raw = (os.environ.get(MAX_BODY_ENV) or "").strip()
    if not raw:
        return DEFAULT_MAX_BODY
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{MAX_BODY_ENV}={raw!r}: must be a positive number of bytes "
                          f"(default {DEFAULT_MAX_BODY})")
    return value


@dataclass(frozen=True)
class GuardSettings:
    """What the guard allows: host names (``*`` for any) and the body size in bytes."""

    hosts: frozenset[str]
    max_body: int = DEFAULT_MAX_BODY

    @classmethod
    def from_env(cls) -> GuardSettings:
        """The settings of ``STRATFORGE_ALLOWED_HOSTS`` and ``STRATFORGE_MAX_BODY_BYTES``."""
        return cls(hosts_from_env(), max_body_from_env())


class BodyTooLarge(HTTPException):
    """A body that grew past the limit while it was read (no or a lying Content-Length)."""


class RequestGuard:
    """ASGI middleware: the host, origin, content-type and size rules, then the security
    headers on every answer (see the module docstring)."""

    def __init__(self, app, *, settings: GuardSettings,
                 report_prefixes: Iterable[str] = ()) -> None:
        self.app = app
        self.settings = settings
        self.any_host = "*" in settings.hosts
        self.report_suffix = "/report"
        self.report_prefixes = tuple(report_prefixes)

    def headers_for(self, path: str) -> list[tuple[bytes, bytes]]:
        """The security headers of an answer to ``path``."""
        policy = REPORT_CSP if (path.endswith(self.report_suffix) and
                                path.startswith(self.report_prefixes)) else CSP
        return [(b"content-security-policy", policy.encode()), *SECURITY_HEADERS]

    async def refuse(self, send: Send, status: int, detail: str,
                     extra: list[tuple[bytes, bytes]]) -> None:
        """Answer ``status`` with ``{"detail": detail}`` and the security headers."""
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()), *extra]})
        await send({"type": "http.response.body", "body": body})

    def problem(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[int, str] | None:
        """Why the request is refused (status, detail), or None."""
        host = headers.get(b"host", b"").decode("latin-1")
        if not self.any_host and _host_name(host) not in self.settings.hosts:
            return 400, (f"host {host!r} is not served here; allowed: "
                         f"{', '.join(sorted(self.settings.hosts))} (add it with "
                         f"`stratforge serve --allowed-host` or {ALLOWED_HOSTS_ENV})")
        method = scope.get("method", "GET")
        if method not in UNSAFE_METHODS:
            return None
        origin = headers.get(b"origin")
        source = origin if origin is not None else headers.get(b"referer")
        if source is not None:
            text = source.decode("latin-1")
            netloc = urlsplit(text).netloc.lower() if text != "null" else ""
            if netloc != host.lower():
                which = "Origin" if origin is not None else "Referer"
                return 403, (f"{method} refused: {which} {text!r} is not this server "
                             f"({host}); state-changing requests from other web pages are "
                             "not accepted (call the API from the dashboard, the CLI or a "
                             "script)")
        length = headers.get(b"content-length")
        has_body = (length is not None and length.strip() not in (b"", b"0")) or \
            b"transfer-encoding" in headers
        if has_body:
            kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if kind != b"application/json":
                return 415, (f"{method} bodies must be JSON: send 'Content-Type: "
                             f"application/json' (got {kind.decode('latin-1') or 'none'!r})")
            if length is not None and length.strip().isdigit() and \
                    int(length) > self.settings.max_body:
                return 413, self.too_large()
        return None

    def too_large(self) -> str:
        """The 413 sentence."""
        return (f"request body over {self.settings.max_body} bytes; send less (the limit "
                f"is {MAX_BODY_ENV} or `stratforge serve --max-body`)")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse what the rules refuse; pass the rest on with the security headers added."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.headers_for(scope.get("path") or "")
        headers = dict(scope.get("headers") or ())
        refused = self.problem(scope, headers)
        if refused is not None:
            await self.refuse(send, *refused, extra)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        if scope.get("method") in UNSAFE_METHODS:
            receive = self.counted(receive)
        await self.app(scope, receive, send_with_headers)

    def counted(self, receive: Receive) -> Receive:
        """``receive`` that raises a 413 once the body read passes the limit."""
        seen = 0
        limit = self.settings.max_body

        async def wrapped():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(413, self.too_large())
            return message

        return wrapped
