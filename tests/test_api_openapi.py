"""The committed OpenAPI snapshot (``tests/data/openapi.json``) must stay a subset of the
live schema: a change may add paths, methods, parameters, fields and status codes, never
remove or rename one.

Refresh the snapshot after an intended change (additions, or a breaking change agreed on):

    STRATFORGE_UPDATE_OPENAPI=1 pytest tests/test_api_openapi.py
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from test_api_support import API, make_api

SNAPSHOT = Path(__file__).parent / "data" / "openapi.json"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    ref = node.get("$ref")
    if not ref:
        return node, None
    target: Any = root
    for part in ref.lstrip("#/").split("/"):
        target = target[part]
    return target, ref


def fields(node: Any, root: dict[str, Any], prefix: str = "",
           seen: frozenset[str] = frozenset()) -> set[str]:
    """Every field path a JSON schema describes (``a``, ``a.b``, ``items[].c``, ``map{}``),
    following ``$ref``, ``allOf``/``anyOf``/``oneOf``, arrays and maps."""
    if not isinstance(node, dict):
        return set()
    node, ref = _resolve(node, root)
    if ref in seen:
        return set()
    seen = seen | {ref} if ref else seen
    out: set[str] = set()
    for name, child in (node.get("properties") or {}).items():
        path = f"{prefix}{name}"
        out.add(path)
        out |= fields(child, root, f"{path}.", seen)
    for key in ("allOf", "anyOf", "oneOf"):
        for child in node.get(key) or []:
            out |= fields(child, root, prefix, seen)
    if isinstance(node.get("items"), dict):
        out |= fields(node["items"], root, f"{prefix}[].", seen)
    if isinstance(node.get("additionalProperties"), dict):
        out |= fields(node["additionalProperties"], root, f"{prefix}{{}}.", seen)
    return out


def surface(schema: dict[str, Any]) -> set[tuple[str, ...]]:
    """What clients rely on: paths, methods, parameters, request and response fields,
    status codes and media types, one tuple each."""
    out: set[tuple[str, ...]] = set()
    for path, item in schema.get("paths", {}).items():
        out.add(("path", path))
        for method, operation in item.items():
            if method not in METHODS:
                continue
            where = (path, method.upper())
            out.add(("method", *where))
            for entry in operation.get("parameters", []):
                parameter, _ = _resolve(entry, schema)
                out.add(("parameter", *where, parameter["in"], parameter["name"]))
            body = (operation.get("requestBody") or {}).get("content", {})
            for media, content in body.items():
                out.add(("request body", *where, media))
                out |= {("request field", *where, f)
                        for f in fields(content.get("schema"), schema)}
            for status, entry in operation.get("responses", {}).items():
                response, _ = _resolve(entry, schema)
                out.add(("status", *where, status))
                for media, content in (response.get("content") or {}).items():
                    out.add(("response media", *where, status, media))
                    out |= {("response field", *where, status, f)
                            for f in fields(content.get("schema"), schema)}
    return out


def removed(snapshot: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What the snapshot has and the current schema lacks, one readable line each."""
    return sorted(" ".join(item) for item in surface(snapshot) - surface(current))


@pytest.fixture
def current(home, tmp_path, monkeypatch) -> dict[str, Any]:
    with make_api(f"sqlite:///{tmp_path / 'schema.db'}", monkeypatch) as api:
        response = api.get("/openapi.json")
        assert response.status_code == 200
        return response.json()


def test_the_schema_keeps_everything_in_the_snapshot(current):
    if os.environ.get("STRATFORGE_UPDATE_OPENAPI") == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
        pytest.skip(f"snapshot written to {SNAPSHOT}")
    assert SNAPSHOT.exists(), ("no OpenAPI snapshot; write it with "
                               "STRATFORGE_UPDATE_OPENAPI=1 pytest tests/test_api_openapi.py")
    gone = removed(json.loads(SNAPSHOT.read_text()), current)
    assert not gone, ("the API lost what clients may rely on (if intended, refresh the "
                      "snapshot with STRATFORGE_UPDATE_OPENAPI=1 pytest "
                      "tests/test_api_openapi.py):\n" + "\n".join(gone))


def test_the_snapshot_covers_every_route_of_the_issue():
    snapshot = json.loads(SNAPSHOT.read_text())
    items = surface(snapshot)
    for method, path in [("GET", "/operations"), ("GET", "/operations/{operation_id}"),
                         ("GET", "/operations/{operation_id}/children"),
                         ("DELETE", "/operations/{operation_id}"),
                         ("POST", "/operations/{operation_id}/retry"),
                         ("POST", "/agent/trigger"), ("GET", "/agent/status"),
                         ("DELETE", "/agent/cancel"), ("GET", "/agent/experiments"),
                         ("POST", "/research/runs"), ("POST", "/training/runs"),
                         ("GET", "/events"), ("GET", "/health"), ("GET", "/data/symbols"),
                         ("GET", "/data/timeframes"), ("GET", "/templates/{symbol}")]:
        assert ("method", API + path, method) in items, (method, path)
    assert ("status", f"{API}/agent/trigger", "POST", "409") in items
    assert ("response field", f"{API}/operations/{{operation_id}}", "GET", "200",
            "aggregate.children_percent") in items


@pytest.mark.parametrize("break_it", [
    lambda s: s["paths"].pop(f"{API}/agent/status"),
    lambda s: s["paths"][f"{API}/operations/{{operation_id}}"].pop("delete"),
    lambda s: s["paths"][f"{API}/agent/trigger"]["post"]["responses"].pop("409"),
    lambda s: s["components"]["schemas"]["ProgressOut"]["properties"].pop("percent"),
    lambda s: s["paths"][f"{API}/operations"]["get"]["parameters"].pop(0),
    lambda s: s["paths"].update({f"{API}/ops": s["paths"].pop(f"{API}/operations")}),
])
def test_the_comparison_catches_removals_and_renames(current, break_it):
    broken = copy.deepcopy(current)
    break_it(broken)
    assert removed(current, broken)


def test_additions_are_allowed(current):
    grown = copy.deepcopy(current)
    grown["paths"][f"{API}/new"] = {"get": {"responses": {"200": {"description": "ok"}}}}
    grown["components"]["schemas"]["ProgressOut"]["properties"]["eta"] = {"type": "number"}
    assert removed(current, grown) == []
