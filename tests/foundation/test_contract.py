"""Every route that the API contract (../shared/API.md) promises is in the app's route table."""

from __future__ import annotations

import re
from pathlib import Path

from app.config import Settings
from app.main import create_app

API_MD = Path(__file__).resolve().parents[3] / "shared" / "API.md"
ROUTE = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^` ]*)`")
SHORTHAND = re.compile(r"`GET (/[^` ]+)` / `PATCH` / `DELETE`")
PARAM = re.compile(r"\{[^}]+\}")


def _normal(path: str) -> str:
    return PARAM.sub("{}", path.rstrip("/")) or "/"


def promised() -> set[tuple[str, str]]:
    text = API_MD.read_text(encoding="utf-8")
    routes = {(method, _normal(path)) for method, path in ROUTE.findall(text)}
    for path in SHORTHAND.findall(text):
        routes |= {("PATCH", _normal(path)), ("DELETE", _normal(path))}
    return routes


def test_every_promised_route_is_in_the_route_table(settings: Settings) -> None:
    app = create_app(settings)
    served = set()
    for route in app.routes:  # read as tools read it: a flat table, not a tree
        path = getattr(route, "path", None)
        if path is None:
            continue
        for method in getattr(route, "methods", None) or {"GET"}:
            served.add((method, _normal(path)))
    wanted = promised()
    assert len(wanted) >= 30  # the contract was read
    assert sorted(wanted - served) == []
