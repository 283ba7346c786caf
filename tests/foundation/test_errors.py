"""Every error leaves as problem+json; every response carries X-Request-ID."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI, Query

from app.config import Settings
from app.errors import Conflict, NotFound
from app.main import create_app
from tests.factories import bearer, make_user

PROBLEM = "application/problem+json"


@pytest.fixture
async def error_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real app plus a few routes that fail in each way."""
    app: FastAPI = create_app(settings)

    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    async def not_found() -> None:
        raise NotFound("Widget 7 not found", code="widget_not_found")

    async def conflict() -> None:
        raise Conflict("Name taken", code="duplicate_name")

    async def validated(n: int = Query(ge=1)) -> dict[str, int]:
        return {"n": n}

    app.add_api_route("/test/boom", boom)
    app.add_api_route("/test/not-found", not_found)
    app.add_api_route("/test/conflict", conflict)
    app.add_api_route("/test/validated", validated)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


async def test_unexpected_error_is_a_500_problem_without_internals(
    error_client: httpx.AsyncClient,
) -> None:
    response = await error_client.get("/test/boom", headers={"X-Request-ID": "req-123"})
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["x-request-id"] == "req-123"
    body = response.json()
    assert body["code"] == "internal_error"
    assert body["request_id"] == "req-123"
    assert body["status"] == 500
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text


async def test_app_errors_carry_status_code_and_detail(error_client: httpx.AsyncClient) -> None:
    response = await error_client.get("/test/not-found")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json() == {
        "type": "urn:novel-task-manager:problem:widget_not_found",
        "title": "Not Found",
        "status": 404,
        "detail": "Widget 7 not found",
        "code": "widget_not_found",
        "instance": "/test/not-found",
    }
    assert (await error_client.get("/test/conflict")).json()["code"] == "duplicate_name"


async def test_validation_errors_list_each_error(error_client: httpx.AsyncClient) -> None:
    response = await error_client.get("/test/validated", params={"n": "zero"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["errors"][0]["loc"] == ["query", "n"]
    assert body["errors"][0]["type"] == "int_parsing"
    assert body["detail"].startswith("query.n: ")


async def test_unknown_paths_and_methods_are_problems(
    error_client: httpx.AsyncClient, settings: Settings, sessions: Any
) -> None:
    # authentication comes first, even for a path that does not exist
    response = await error_client.get("/api/v1/no-such-thing")
    assert response.status_code == 401
    user = await make_user(sessions)
    response = await error_client.get("/api/v1/no-such-thing", headers=bearer(settings, user))
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "not_found"
    response = await error_client.delete("/health")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


async def test_request_id_is_generated_or_echoed(error_client: httpx.AsyncClient) -> None:
    generated = (await error_client.get("/health")).headers["x-request-id"]
    assert len(generated) == 32
    echoed = await error_client.get("/health", headers={"X-Request-ID": "client-chosen-id"})
    assert echoed.headers["x-request-id"] == "client-chosen-id"
    # an id that is not short printable ASCII is replaced, not echoed
    replaced = await error_client.get("/health", headers={"X-Request-ID": "x" * 500})
    assert replaced.headers["x-request-id"] != "x" * 500
