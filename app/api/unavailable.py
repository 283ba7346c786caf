"""A dependency that is down answers 503 (or 507), never 500.

While the database is unreachable (stopped, restarting, too many
connections) any HTTP request that needs it answers ``503
database_unavailable`` with ``Retry-After``. When ``UPLOAD_DIR`` is full a
request that must write there answers ``507 insufficient_storage``, and when
it is read-only ``503 storage_unavailable``, both with ``Retry-After``; so is a
bucket that cannot be reached or refuses (``STORAGE_BACKEND=s3``). Each is a
problem+json body saying what to do; nothing was kept (the upload's temp
files and placed files are removed by the upload service, its transaction
rolled back). ``CatchAllMiddleware`` asks :func:`translate` before it answers
500, so this also covers the gate's credential lookup, which reads the
database before any route runs.
"""

from __future__ import annotations

import errno

from app.database import means_database_down
from app.errors import AppError, InsufficientStorage, ServiceUnavailable
from app.services.storage import ObjectStoreUnavailable

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
        if isinstance(item, ObjectStoreUnavailable):
            return ServiceUnavailable(
                "The server's object storage cannot be reached right now: nothing was stored "
                f"and nothing was kept. Try again in {STORAGE_RETRY_AFTER_SECONDS} s.",
                code="storage_unavailable",
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
