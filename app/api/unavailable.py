"""A dependency that is down answers 503 (or 507), never 500.

While the database is unreachable (stopped, restarting, too many
connections) any HTTP request that needs it answers ``503
database_unavailable`` with ``Retry-After``. When ``UPLOAD_DIR`` is full a
request that must write there answers ``507 insufficient_storage``, and when
it is read-only ``503 storage_unavailable``, both with ``Retry-After``. Each is a
problem+json body saying what to do; nothing was kept (the upload's temp
files and placed files are removed by the upload service, its transaction
rolled back). Installed just inside ``CatchAllMiddleware``, so it also covers
the gate's credential lookup, which reads the database before any route runs.
"""

from __future__ import annotations

import errno

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.problems import problem_response
from app.database import means_database_down
from app.errors import AppError, InsufficientStorage, ServiceUnavailable
from app.log import get_logger

log = get_logger(__name__)

DATABASE_RETRY_AFTER_SECONDS = 5
STORAGE_RETRY_AFTER_SECONDS = 30
_FULL = {errno.ENOSPC, errno.EDQUOT}
_READ_ONLY = {errno.EROFS}


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        orig = getattr(current, "orig", None)
        current = (
            orig if isinstance(orig, BaseException) else current.__cause__ or current.__context__
        )
    return seen


def translate(exc: BaseException) -> AppError | None:
    """The problem a dependency failure should answer, or None for any other error."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (error := translate(inner)) is not None:
                return error
        return None
    for item in _chain(exc):
        if isinstance(item, OSError) and item.errno in _FULL:
            return InsufficientStorage(
                "The server's storage is full: the upload was not stored and nothing was kept. "
                f"Try again in {STORAGE_RETRY_AFTER_SECONDS} s or later.",
                code="insufficient_storage",
                headers={"Retry-After": str(STORAGE_RETRY_AFTER_SECONDS)},
            )
        if isinstance(item, OSError) and item.errno in _READ_ONLY:
            return ServiceUnavailable(
                "The server's storage cannot be written right now: the upload was not stored "
                f"and nothing was kept. Try again in {STORAGE_RETRY_AFTER_SECONDS} s.",
                code="storage_unavailable",
                headers={"Retry-After": str(STORAGE_RETRY_AFTER_SECONDS)},
            )
        if means_database_down(item):
            return ServiceUnavailable(
                "The database is unavailable: nothing was changed. "
                f"Try again in {DATABASE_RETRY_AFTER_SECONDS} s.",
                code="database_unavailable",
                headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
            )
    return None


class UnavailableMiddleware:
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
            error = translate(exc)
            if error is None or started:
                raise
            path = scope.get("path", "")
            log.warning(
                "dependency_unavailable", code=error.code, path=path, error=type(exc).__name__
            )
            await problem_response(error.to_problem(path), error.status, error.headers)(
                scope, receive, send
            )
