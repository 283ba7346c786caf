"""Every route that the API contract (docs/api.md) promises is served by the app.

Read the way tools read it: the OpenAPI schema for HTTP routes (stable across
FastAPI versions, including its lazily included routers), plus the route
tree for the WebSocket route, which OpenAPI does not describe.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from app.config import Settings
from app.main import create_app

ROOT = Path(__file__).resolve().parents[2]
API_MD = ROOT / "docs" / "api.md"
ROUTE = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^` ]*)`")
SHORTHAND = re.compile(r"`GET (/[^` ]+)` / `PATCH` / `DELETE`")
PARAM = re.compile(r"\{[^}]+\}")
HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def _normal(path: str) -> str:
    return PARAM.sub("{}", path.rstrip("/")) or "/"


def promised() -> set[tuple[str, str]]:
    text = API_MD.read_text(encoding="utf-8")
    routes = {(method, _normal(path)) for method, path in ROUTE.findall(text)}
    for path in SHORTHAND.findall(text):
        routes |= {("PATCH", _normal(path)), ("DELETE", _normal(path))}
    return routes


def _walk(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, set[str] | None]]:
    """Every route, also inside mounts and lazily included routers."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            context = getattr(route, "include_context", None)
            yield from _walk(included.routes, prefix + (getattr(context, "prefix", "") or ""))
            continue
        path = prefix + (getattr(route, "path", "") or "")
        inner = getattr(route, "routes", None)
        if inner and not getattr(route, "methods", None) and not hasattr(route, "endpoint"):
            yield from _walk(inner, path)
        else:
            yield path, getattr(route, "methods", None)


def served(settings: Settings) -> set[tuple[str, str]]:
    app = create_app(settings)
    routes = {
        (method.upper(), _normal(path))
        for path, operations in app.openapi().get("paths", {}).items()
        for method in operations
        if method.upper() in HTTP_METHODS
    }
    for path, methods in _walk(app.routes):
        routes |= {(method, _normal(path)) for method in methods or {"GET"}}
    return routes


def test_every_promised_route_is_served(settings: Settings) -> None:
    wanted = promised()
    assert len(wanted) >= 30  # the contract was read
    assert sorted(wanted - served(settings)) == []


def test_the_websocket_route_is_found_in_the_route_tree(settings: Settings) -> None:
    assert ("GET", "/api/v1/ws/tasks/{}") in served(settings)
