"""Short-lived tickets that let a browser open a run's report as a top-level page.

With a token, the dashboard cannot put ``Authorization`` on a link, and a report fetched with
the token and shown from a ``blob:`` URL inherits the dashboard's Content-Security-Policy,
which refuses the report's inline plotly.js (its charts stay blank). Instead the dashboard asks
``POST /report-tickets`` (with the token) for a URL carrying a ticket: an expiry and an HMAC,
under the server's token, of the report's path and that expiry. The bearer middleware lets a
``GET`` of exactly that path through while the ticket is valid (two minutes); the report then
opens in its own tab under the report's own sandboxed policy. A ticket names one path, so it
opens nothing else, and the token never appears in a URL.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import parse_qs

from stratforge.api.deps import API_PREFIX

TICKET_SECONDS = 120
"""How long a report ticket stays valid."""
REPORT_PREFIXES = (f"{API_PREFIX}/research/runs/", f"{API_PREFIX}/training/runs/")
"""The paths whose ``.../report`` a ticket may open."""

def is_report_path(path: str) -> bool:
    """Whether ``path`` is a run's report (``/api/v1/{research,training}/runs/<id>/report``)."""
    if not path.startswith(REPORT_PREFIXES) or not path.endswith("/report"):
        return False
    middle = path[len(next(p for p in REPORT_PREFIXES if path.startswith(p))):-len("/report")]
    return bool(middle) and "/" not in middle and ".." not in middle


def make_ticket(token: bytes, path: str, now: float | None = None) -> str:
    """A ticket for ``path``, valid ``TICKET_SECONDS`` from ``now``."""
    expiry = int((time.time() if now is None else now) + TICKET_SECONDS)
    return f"{expiry}.{_mac(token, path, expiry)}"


def valid_ticket(token: bytes, path: str, ticket: str, now: float | None = None) -> bool:
    """Whether ``ticket`` was made for ``path`` under ``token`` and has not expired."""
    expiry_text, _, mac = ticket.partition(".")
    if not expiry_text.isdigit() or not mac:
        return False
    if int(expiry_text) < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(mac, _mac(token, path, int(expiry_text)))


def ticket_in(scope: dict[str, Any]) -> str | None:
    """The ``ticket`` query parameter of an ASGI request, if any."""
    query = parse_qs((scope.get("query_string") or b"").decode("latin-1"))
    values = query.get("ticket")
    return values[0] if values else None


def _mac(token: bytes, path: str, expiry: int) -> str:
    return hmac.new(token, f"{path}|{expiry}".encode(), hashlib.sha256).hexdigest()
