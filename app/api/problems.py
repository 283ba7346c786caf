"""Exception handlers: every error leaves as problem+json (API.md "Errors")."""

from __future__ import annotations

from typing import Any

from asgi_correlation_id import correlation_id
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.unavailable import translate
from app.errors import PROBLEM_JSON, AppError, problem
from app.log import get_logger

log = get_logger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def problem_response(
    body: dict[str, Any], status: int, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


async def app_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return problem_response(exc.to_problem(request.url.path), exc.status, exc.headers)


# FastAPI's 400 for a body it could not decode (bytes that are not UTF-8 under a JSON
# content type, a malformed form); malformed JSON is already a 422 ``json_invalid``.
_UNPARSABLE_BODY = "There was an error parsing the body"


def _unparsable_body(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    cause = exc.__cause__
    msg = (
        "is not valid UTF-8"
        if isinstance(cause, UnicodeDecodeError)
        else "cannot be parsed as its Content-Type says"
    )
    errors = [{"loc": ["body"], "msg": msg, "type": "body_unparsable"}]
    body = problem(
        422, f"body: {msg}", "validation_error", instance=request.url.path, errors=errors
    )
    return problem_response(body, 422)


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _UNPARSABLE_BODY:
        return _unparsable_body(request, exc)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No route matches {request.method} {request.url.path}"
    if exc.status_code == 413 and MAX_BODY_SIZE_SCOPE_KEY in request.scope:  # Starlette's limit
        limit = request.scope[MAX_BODY_SIZE_SCOPE_KEY]
        detail = f"The request body is larger than the limit of {limit} bytes"
    body = problem(exc.status_code, detail, code, instance=request.url.path)
    return problem_response(body, exc.status_code, dict(exc.headers or {}))


async def client_disconnect_handler(request: Request, exc: Exception) -> JSONResponse:
    """The client left mid-body: nobody reads this answer, it ends the request without a 500."""
    assert isinstance(exc, ClientDisconnect)
    detail = "The client left before the request body was complete"
    body = problem(400, detail, "client_disconnected", instance=request.url.path)
    return problem_response(body, 400)


def _printable(part: Any) -> Any:
    """A location part or message that JSON can carry: a client's JSON key may hold a lone
    surrogate (``{"\\ud800": 1}``), which would make the 422 itself fail to encode."""
    if isinstance(part, str) and not part.isascii():
        return part.encode("utf-8", "backslashreplace").decode("utf-8")
    return part


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": [_printable(part) for part in err.get("loc", ())],
            "msg": _printable(err.get("msg", "")),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(part) for part in first["loc"])
    detail = f"{where}: {first['msg']}" if where else str(first["msg"])
    body = problem(
        422, detail, "validation_error", instance=request.url.path, errors=jsonable_encoder(errors)
    )
    return problem_response(body, 422)


class CatchAllMiddleware:
    """Turn an unexpected exception into a 500 problem (no internals, with the request id),
    or, when it says a dependency is down, into that 503/507 problem.

    Installed inside the request-id and CORS middleware, so the 500 still
    carries ``X-Request-ID``; Starlette's own ``Exception`` handler would run
    outside them.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            path = scope.get("path", "")
            error = translate(exc)  # a database or storage that is down: 503/507, not 500
            if error is not None and not started:
                log.warning(
                    "dependency_unavailable", code=error.code, path=path, error=type(exc).__name__
                )
                await problem_response(error.to_problem(path), error.status, error.headers)(
                    scope, receive, send
                )
                return
            log.exception("unhandled_error", path=path, method=scope.get("method"))
            if started:
                raise
            body = problem(
                500,
                "An unexpected error occurred. Quote the request id when reporting it.",
                "internal_error",
                instance=path,
                request_id=correlation_id.get(),
            )
            await problem_response(body, 500)(scope, receive, send)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, app_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(ClientDisconnect, client_disconnect_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
