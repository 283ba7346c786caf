"""OpenAPI descriptions of the problem+json errors each route may answer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from app.errors import PROBLEM_JSON


class ProblemDetail(BaseModel):
    """RFC 9457 problem details; ``code`` is stable and machine-readable."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None
    request_id: str | None = None


_DESCRIPTIONS = {
    401: "Missing, invalid, expired or revoked credential",
    403: "The caller's role does not allow this",
    404: "Not found (or not the caller's)",
    408: "The request body stalled (nothing arrived for BODY_TIMEOUT_SECONDS)",
    409: "Conflicts with the current state",
    413: "The request body is too large (a file over MAX_FILE_SIZE, JSON over MAX_JSON_BODY_SIZE)",
    415: "The file type is not accepted",
    416: "The requested range cannot be satisfied",
    422: "The request is not valid",
    429: "Too many requests",
    503: "A dependency (the database, the upload storage) is unavailable; retry later",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for these statuses, all problem+json."""
    return {
        status: {
            "model": ProblemDetail,
            "description": _DESCRIPTIONS[status],
            "content": {PROBLEM_JSON: {}},
        }
        for status in statuses
    }


# Every route that reads a request body: its size and its pace are bounded (app.api.body_limits).
BODY_PROBLEMS = problems(408, 413)
