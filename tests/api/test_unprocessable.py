"""Every 422 carries a non-empty ``errors`` list (API.md "Errors"), custom codes included.

``test_every_422_code_in_the_app_is_exercised`` reads every ``Unprocessable(...)``
raised under ``app/`` and fails when a code has no request below that makes it.
"""

from __future__ import annotations

import ast
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from app.config import Settings
from app.errors import AppError, Unprocessable, problem
from app.models import Role
from tests.conftest import ROOT
from tests.factories import app_sessions, bearer, make_user

TEXT = b"Chapter 1\n\nA short story.\n"
Send = Callable[[httpx.AsyncClient, dict[str, str]], Awaitable[httpx.Response]]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"max_batch_files": 2}


def upload(**kwargs: Any) -> Send:
    async def send(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
        return await client.post("/api/v1/tasks/upload", headers=headers, **kwargs)

    return send


async def _idempotency_reused(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    key = {**headers, "Idempotency-Key": "k-1"}
    first = await client.post("/api/v1/tasks/upload", files={"file": ("a.txt", TEXT)}, headers=key)
    assert first.status_code == 202
    return await client.post("/api/v1/tasks/upload", files={"file": ("b.txt", TEXT)}, headers=key)


async def _too_many_files(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    files = [("files", (f"{n}.txt", TEXT)) for n in range(3)]
    return await client.post("/api/v1/tasks/batch", files=files, headers=headers)


def _create_user(body: dict[str, Any]) -> Send:
    async def send(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
        return await client.post("/api/v1/users", json=body, headers=headers)

    return send


def _json(path: str, body: Any, method: str = "POST") -> Send:
    async def send(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
        return await client.request(method, path, json=body, headers=headers)

    return send


async def _nul_in_query(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.get("/api/v1/tasks/", params={"q": "\x00"}, headers=headers)


CASES: dict[str, tuple[str, Send]] = {
    "invalid email": ("invalid_email", _create_user({"email": "nope", "password": "Str0ng-pass!"})),
    "weak password": ("weak_password", _create_user({"email": "a@b.co", "password": "short"})),
    "not multipart": ("invalid_form", upload(json={"file": "x"})),
    "file in the wrong field": ("invalid_form", upload(files={"files": ("a.txt", TEXT)})),
    "no file part": ("missing_file", upload(files={"priority": (None, "1")})),
    "empty file": ("empty_file", upload(files={"file": ("a.txt", b"")})),
    "too many files": ("too_many_files", _too_many_files),
    "too many fields": (
        "too_many_fields",
        upload(files=[("file", ("a.txt", TEXT))] + [(f"f{n}", (None, "x")) for n in range(60)]),
    ),
    "field too long": (
        "field_too_long", upload(files={"file": ("a.txt", TEXT), "processor": (None, "x" * 5000)})
    ),
    "bad upload option": (
        "validation_error", upload(files={"file": ("a.txt", TEXT), "priority": (None, "11")})
    ),
    "idempotency key reused": ("idempotency_key_reused", _idempotency_reused),
    "bad callback URL": (
        "invalid_callback_url",
        upload(files={"file": ("a.txt", TEXT), "callback_url": (None, "not a url")}),
    ),
    "callback without a signing secret": (
        "callback_secret_missing",
        upload(files={"file": ("a.txt", TEXT), "callback_url": (None, "https://example.com/h")}),
    ),
    "bad JSON body": ("validation_error", _json("/api/v1/projects", {"name": 5})),
    "not JSON": ("validation_error", _json("/api/v1/projects", "[")),
    "bad query": ("validation_error", _json("/api/v1/tasks/?page=0", None, "GET")),
    "NUL in the query": ("", _nul_in_query),  # the edge guard's own code
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
async def test_every_422_lists_its_errors(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, case: str
) -> None:
    admin = await make_user(app_sessions(app), role=Role.ADMIN)
    code, send = CASES[case]
    response = await send(client, bearer(settings, admin))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    if code:
        assert body["code"] == code
    assert isinstance(body["errors"], list)
    assert body["errors"], body
    for error in body["errors"]:
        assert isinstance(error["loc"], list)
        assert isinstance(error["msg"], str)
        assert error["msg"]
        assert isinstance(error["type"], str)
        assert error["type"]


def _raised_codes() -> set[str]:
    """The ``code`` of every ``Unprocessable(...)`` under app/ (its default when none)."""
    codes: set[str] = set()
    for path in sorted((ROOT / "app").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (
                isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Unprocessable"
            ):
                continue
            code = next((k.value for k in node.keywords if k.arg == "code"), None)
            if code is None:
                codes.add(Unprocessable.default_code)
            elif isinstance(code, ast.Constant) and isinstance(code.value, str):
                codes.add(code.value)
            else:
                codes.add(f"<computed in {path.relative_to(ROOT)}:{node.lineno}>")
    return codes


def test_every_422_code_in_the_app_is_exercised() -> None:
    exercised = {code for code, _ in CASES.values()}
    missing = _raised_codes() - exercised
    assert missing == set(), f"add a request that answers each of {missing} to CASES"


def test_the_hierarchy_adds_errors_to_any_422() -> None:
    plain = Unprocessable("The thing is wrong", code="thing_wrong").to_problem()
    assert plain["errors"] == [
        {"loc": ["body"], "msg": "The thing is wrong", "type": "thing_wrong"}
    ]
    placed = Unprocessable("Bad header", code="bad", loc=("header", "x")).to_problem()
    assert placed["errors"][0]["loc"] == ["header", "x"]
    given = [{"loc": ["body", "a"], "msg": "m", "type": "t"}]
    assert Unprocessable("x", errors=given).to_problem()["errors"] == given
    assert Unprocessable("x", extra={"errors": given}).to_problem()["errors"] == given

    class Custom(AppError):
        status = 422
        default_code = "custom"

    assert Custom("Custom failure").to_problem()["errors"] == [
        {"loc": [], "msg": "Custom failure", "type": "custom"}
    ]
    assert problem(422, "d", "c", errors=[])["errors"] == [{"loc": [], "msg": "d", "type": "c"}]
    assert "errors" not in problem(409, "d", "c")


@pytest.fixture
async def raising_client(settings: Settings) -> Any:
    """The real app with routes raising a bare 422 HTTPException and an empty validation error."""
    from asgi_lifespan import LifespanManager

    from app.main import create_app

    app = create_app(settings)

    async def http_422() -> None:
        raise HTTPException(422, "Unprocessable by hand")

    async def empty_validation() -> None:
        raise RequestValidationError([])

    app.add_api_route("/test/http-422", http_422)
    app.add_api_route("/test/empty-validation", empty_validation)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


@pytest.mark.parametrize("path", ["/test/http-422", "/test/empty-validation"])
async def test_422s_from_the_framework_list_errors_too(
    raising_client: httpx.AsyncClient, path: str
) -> None:
    response = await raising_client.get(path)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert errors
    assert errors[0]["msg"]
