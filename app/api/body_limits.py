"""Every request body is bounded in size and in pace while it streams.

One pure ASGI middleware in front of the routes, inside the ``/api/v1`` gate
(so a request without credentials still answers 401 first):

- **Size.** The two upload routes take at most what a valid form can take
  (:func:`app.services.uploads.upload_body_limit`: their files at
  ``MAX_FILE_SIZE``, ``MAX_FORM_FIELDS`` fields at ``MAX_FORM_FIELD_SIZE``,
  and the parts' framing); every other route ``MAX_JSON_BODY_SIZE`` (JSON
  bodies, the login form). The bytes of a body, ``Content-Length`` or chunked,
  are counted as they stream by Starlette's ``RequestBodyLimitMiddleware``
  (the same limiter FastAPI's ``max_body_size`` installs; ours is chosen per
  route at request time, because it follows the settings); its 413 is raised
  from ``receive`` and rendered as problem+json by the app's handlers. A
  declared ``Content-Length`` over the limit is answered here before anything
  is read, because Starlette answers that case with a text/plain 413 of its
  own: ``file_too_large`` on the upload routes (API.md's code for uploads),
  ``request_too_large`` elsewhere.
- **Pace.** While a body is incomplete, each read waits at most
  ``BODY_TIMEOUT_SECONDS`` for the client's next bytes; a stalled body is
  refused with 408 ``request_timeout``, raised from ``receive`` like the
  413, so the route's own cleanup runs (an upload's temp files are removed by
  its form).

A response sent before the body was read to its end carries
``Connection: close``: the server closes the connection instead of reading
(and throwing away) the rest of a body it has refused.
"""

from __future__ import annotations

import anyio
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.problems import problem_response
from app.config import Settings
from app.errors import problem
from app.services.uploads import upload_body_limit

# path -> whether it is the batch route (up to MAX_BATCH_FILES files)
UPLOAD_ROUTES = {"/api/v1/tasks/upload": False, "/api/v1/tasks/batch": True}


class BodyTimeout(HTTPException):
    """408, raised from ``receive``: FastAPI's body reading lets HTTP exceptions through."""

    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"The request body stalled: nothing arrived for {seconds:g} seconds")


def body_limit(settings: Settings, path: str) -> tuple[int, str]:
    """The most bytes a body sent to ``path`` may have, and the problem code past it."""
    batch = UPLOAD_ROUTES.get(path.rstrip("/"))
    if batch is None:
        return settings.max_json_body_size, "request_too_large"
    return upload_body_limit(settings, batch=batch), "file_too_large"


def _declared_length(headers: Headers) -> int | None:
    value = headers.get("content-length", "")
    return int(value) if value.isascii() and value.isdigit() else None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, code = body_limit(self.settings, scope["path"])
        headers = Headers(scope=scope)
        declared = _declared_length(headers)
        if declared is not None and declared > limit:
            detail = (
                f"The request body ({declared} bytes) is larger than the limit of {limit} bytes"
            )
            body = problem(413, detail, code, instance=scope["path"])
            await problem_response(body, 413, {"Connection": "close"})(scope, receive, send)
            return

        timeout = self.settings.body_timeout_seconds
        # HTTP/1.1: a request has a body only with a length or a transfer coding
        complete = not declared and "transfer-encoding" not in headers

        async def timed_receive() -> Message:
            nonlocal complete
            if complete:  # e.g. an SSE route waiting for the disconnect: no deadline
                return await receive()
            try:
                with anyio.fail_after(timeout):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(timeout) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not complete:
                response_headers = MutableHeaders(raw=list(message.get("headers", [])))
                response_headers["connection"] = "close"
                message = {**message, "headers": response_headers.raw}
            await send(message)

        limited = RequestBodyLimitMiddleware(self.app, max_body_size=limit)
        await limited(scope, timed_receive, closing_send)
