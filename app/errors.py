"""The service's errors and their problem+json rendering (RFC 9457).

Services raise these; one handler renders each. Routers never translate::

    AppError(detail, status, code)
      ├── BadRequest            400
      ├── Unauthorized          401  (adds WWW-Authenticate: Bearer)
      ├── Forbidden             403
      ├── NotFound              404  task_not_found, project_not_found, result_not_ready, …
      ├── Conflict              409  duplicate names, emails, …
      │     └── InvalidTransition    409  invalid_transition
      ├── FileTooLarge          413  file_too_large
      ├── UnsupportedFileType   415  unsupported_file_type
      ├── RangeNotSatisfiable   416  range_not_satisfiable
      ├── Unprocessable         422  empty_file, too_many_files, weak_password, …
      │                              (always with a non-empty ``errors`` list)
      ├── RateLimited           429  (adds Retry-After)
      ├── ServiceUnavailable    503  database_unavailable, storage_unavailable (Retry-After)
      └── InsufficientStorage   507  insufficient_storage
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, ClassVar

PROBLEM_JSON = "application/problem+json"


class AppError(Exception):
    """An error with a meaning the client can act on."""

    status: ClassVar[int] = 400
    default_code: ClassVar[str] = "bad_request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.default_code
        self.headers = headers or {}
        self.extra = extra or {}

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        return problem(self.status, self.detail, self.code, instance=instance, **self.extra)


class BadRequest(AppError):
    status = 400
    default_code = "bad_request"


class Unauthorized(AppError):
    status = 401
    default_code = "not_authenticated"

    def __init__(self, detail: str = "Not authenticated", *, code: str | None = None) -> None:
        super().__init__(detail, code=code, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status = 403
    default_code = "forbidden"


class NotFound(AppError):
    status = 404
    default_code = "not_found"


class Conflict(AppError):
    status = 409
    default_code = "conflict"


class InvalidTransition(Conflict):
    default_code = "invalid_transition"


class FileTooLarge(AppError):
    status = 413
    default_code = "file_too_large"


class UnsupportedFileType(AppError):
    status = 415
    default_code = "unsupported_file_type"


class RangeNotSatisfiable(AppError):
    status = 416
    default_code = "range_not_satisfiable"


class Unprocessable(AppError):
    """422. The body always carries ``errors`` (API.md): given, or one entry at ``loc``."""

    status = 422
    default_code = "unprocessable"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        loc: Sequence[str | int] = ("body",),
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        extra = dict(extra or {})
        if errors:
            extra["errors"] = errors
        elif not extra.get("errors"):
            extra["errors"] = [error_entry(loc, detail, code or self.default_code)]
        super().__init__(detail, code=code, headers=headers, extra=extra)


class RateLimited(AppError):
    status = 429
    default_code = "rate_limited"


class ServiceUnavailable(AppError):
    status = 503
    default_code = "service_unavailable"


class InsufficientStorage(AppError):
    status = 507
    default_code = "insufficient_storage"


def problem(
    status: int, detail: str, code: str, *, instance: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A problem details body. ``type`` is a stable URN built from ``code``."""
    body: dict[str, Any] = {
        "type": f"urn:novel-task-manager:problem:{code}",
        "title": _title(status),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance is not None:
        body["instance"] = instance
    body.update(extra)
    if status == 422 and not body.get("errors"):
        # API.md: every 422 lists its errors, whichever path raised it
        body["errors"] = [error_entry((), detail, code)]
    return body


def error_entry(loc: Sequence[str | int], msg: str, type_: str) -> dict[str, Any]:
    """One entry of a 422's ``errors`` list, shaped like FastAPI's validation errors."""
    return {"loc": list(loc), "msg": msg, "type": type_}


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
