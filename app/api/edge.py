"""The edge check on what every request carries besides its body.

A NUL character cannot be stored in PostgreSQL text (and SQLite compares it
oddly), so a path, query parameter or header that holds one is refused here
with 422, before authentication, rate limiting or routing could pass it to a
query. Request bodies are checked by their models (``app.schemas.common``:
``RequestModel`` and ``Text``) and the upload form by the upload service.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.problems import problem_response
from app.errors import problem

NUL = "\x00"
_REASON = "must not contain NUL (U+0000) characters"


def nul_errors(scope: Scope) -> list[dict[str, Any]]:
    """One validation error per part of the request (outside its body) holding a NUL."""
    errors: list[dict[str, Any]] = []
    if NUL in scope.get("path", ""):
        errors.append({"loc": ["path"], "msg": _REASON, "type": "unsafe_text"})
    query_string: bytes = scope.get("query_string", b"")
    if b"\x00" in query_string or b"%00" in query_string:
        for name, value in QueryParams(query_string).multi_items():
            if NUL in name or NUL in value:
                printable = name.replace(NUL, "\\u0000")
                errors.append({"loc": ["query", printable], "msg": _REASON, "type": "unsafe_text"})
    for raw_name, raw_value in scope.get("headers", ()):
        if b"\x00" in raw_value:
            errors.append(
                {
                    "loc": ["header", raw_name.decode("latin-1")],
                    "msg": _REASON,
                    "type": "unsafe_text",
                }
            )
    return errors


class NulGuardMiddleware:
    """422 (HTTP) or close 1008 (WebSocket) for a request whose path, query or headers hold NUL."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        errors = nul_errors(scope)
        if not errors:
            await self.app(scope, receive, send)
            return
        where = ".".join(str(part) for part in errors[0]["loc"])
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008, "reason": f"{where}: {_REASON}"})
            return
        path = scope.get("path", "").replace(NUL, "\\u0000")
        body = problem(422, f"{where}: {_REASON}", "validation_error", instance=path, errors=errors)
        await problem_response(body, 422)(scope, receive, send)
