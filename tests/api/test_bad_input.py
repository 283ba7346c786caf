"""Bad input never answers 500: oversized pages, odd form values, NUL and lone surrogates.

Every refusal is a 422 problem with a non-empty ``errors`` list (or a 404 for an
id that names nothing), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.api.edge import NulGuardMiddleware
from app.config import Settings
from app.models import Role
from app.schemas.common import MAX_PAGE
from tests.api.conftest import Upload
from tests.factories import app_sessions, bearer, make_user


def assert_validation_problem(response: httpx.Response, *loc: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["errors"], body
    if loc:
        assert [list(loc)] == [e["loc"][: len(loc)] for e in body["errors"][:1]], body


@pytest.fixture
async def task_id(upload: Upload) -> str:
    response = await upload()
    assert response.status_code == 202, response.text
    task: str = response.json()["id"]
    return task


@pytest.fixture
async def admin_headers(app: FastAPI, settings: Settings) -> dict[str, str]:
    admin = await make_user(app_sessions(app), role=Role.ADMIN)
    return bearer(settings, admin)


# --- pagination ---------------------------------------------------------------------------

HUGE_PAGES = [
    {"page": "100000000000000000000"},
    {"page": "4611686018427387904", "page_size": "100"},
    {"page": str(2**63)},
    {"page": str(MAX_PAGE + 1)},
]


@pytest.mark.parametrize("params", HUGE_PAGES)
async def test_pages_past_the_bound_are_422_on_every_paginated_route(
    client: httpx.AsyncClient, headers: dict[str, str], task_id: str, params: dict[str, str]
) -> None:
    for path in ("/api/v1/tasks/", f"/api/v1/tasks/{task_id}/logs", "/api/v1/projects"):
        response = await client.get(path, params=params, headers=headers)
        assert_validation_problem(response, "query", "page")


async def test_the_last_allowed_page_answers_empty(
    client: httpx.AsyncClient, headers: dict[str, str], task_id: str
) -> None:
    params = {"page": str(MAX_PAGE), "page_size": "100"}
    for path in ("/api/v1/tasks/", f"/api/v1/tasks/{task_id}/logs", "/api/v1/projects"):
        response = await client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["items"] == []
        assert body["page"] == MAX_PAGE
    openapi = (await client.get("/openapi.json")).json()
    page = next(
        p for p in openapi["paths"]["/api/v1/tasks/"]["get"]["parameters"] if p["name"] == "page"
    )
    assert page["schema"]["maximum"] == MAX_PAGE


# --- upload form values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "priority",
    ["1,2", "null", "{}", "²", "٣", " 5 ", "5\n", "-1", "11", "+5", "1e1", "99999999999999999999"],
)
async def test_upload_priority_must_be_an_ascii_integer_from_0_to_10(
    upload: Upload, priority: str
) -> None:
    response = await upload(data={"priority": priority})
    assert_validation_problem(response, "body", "priority")
    assert response.json()["errors"][0]["type"] == "priority_range"


@pytest.mark.parametrize(("priority", "expected"), [("0", 0), ("10", 10), ("07", 7), ("", 5)])
async def test_upload_priority_accepts_0_to_10(
    upload: Upload, priority: str, expected: int
) -> None:
    response = await upload(data={"priority": priority})
    assert response.status_code == 202, response.text
    assert response.json()["priority"] == expected


# --- NUL and lone surrogates ------------------------------------------------------------------


async def test_nul_in_path_query_or_header_is_422_before_anything_else(
    client: httpx.AsyncClient, headers: dict[str, str], task_id: str
) -> None:
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/api/v1/tasks/?q=%00", {}),
        ("GET", "/api/v1/tasks/?q=abc%00def&status=pending", {}),
        ("GET", "/api/v1/tasks/?project_id=%00", {}),
        ("GET", "/api/v1/tasks/export?q=%00", {}),
        ("GET", "/api/v1/tasks/?%00=1", {}),
        ("GET", "/api/v1/tasks/%00", {}),
        ("PATCH", "/api/v1/tasks/%00", {"json": {"priority": 1}}),
        ("DELETE", "/api/v1/tasks/%00", {}),
        ("GET", "/api/v1/projects/%00", {}),
        ("GET", "/api/v1/batches/%00", {}),
        ("GET", "/api/v1/batches/%00/archive", {}),
        ("DELETE", "/api/v1/auth/api-keys/%00", {}),
        ("GET", f"/api/v1/tasks/{task_id}/files/report.json%00", {}),
        ("GET", f"/api/v1/tasks/{task_id}/logs?level=%00", {}),
        ("GET", "/api/v1/tasks/", {"headers": {"Idempotency-Key": "a\x00b"}}),
    ]
    for method, url, kwargs in cases:
        request_headers = {**headers, **kwargs.pop("headers", {})}
        response = await client.request(method, url, headers=request_headers, **kwargs)
        assert_validation_problem(response)
        assert response.json()["errors"][0]["type"] == "unsafe_text", url
    # authentication still comes first (401), and a credential holding NUL is never looked up
    for url, auth in [
        ("/api/v1/tasks/%00", {}),
        ("/api/v1/tasks/c1/events?token=%00", {}),
        ("/api/v1/tasks/c1/events?token=ntm_ab%00_cd", {}),
        ("/api/v1/tasks/", {"Authorization": "Bearer ntm_0123\x00_secret"}),
    ]:
        response = await client.get(url, headers=auth)
        assert response.status_code == 401, (url, response.text)


async def test_nul_in_json_fields_is_422(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    admin_headers: dict[str, str],
    task_id: str,
) -> None:
    project = await client.post("/api/v1/projects", json={"name": "Novels"}, headers=headers)
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]
    cases: list[tuple[str, str, dict[str, Any], dict[str, str], str]] = [
        ("POST", "/api/v1/projects", {"name": "a\x00b"}, headers, "name"),
        ("POST", "/api/v1/projects", {"name": "ok", "description": "\x00"}, headers, "description"),
        ("PATCH", f"/api/v1/projects/{project_id}", {"name": "x\x00"}, headers, "name"),
        ("PATCH", f"/api/v1/tasks/{task_id}", {"project_id": "\x00"}, headers, "project_id"),
        ("POST", "/api/v1/auth/api-keys", {"name": "key\x00"}, headers, "name"),
        (
            "POST",
            "/api/v1/users",
            {"email": "a\x00@example.com", "password": "Str0ng-enough-pass"},
            admin_headers,
            "email",
        ),
        (
            "POST",
            "/api/v1/users",
            {"email": "new@example.com", "password": "Str0ng-enough\x00"},
            admin_headers,
            "password",
        ),
    ]
    for method, url, body, auth, field in cases:
        response = await client.request(method, url, json=body, headers=auth)
        assert_validation_problem(response, "body", field)
        assert response.json()["errors"][0]["type"] == "unsafe_text"


@pytest.mark.parametrize(
    "raw",
    [b'{"name": "\\ud800"}', b'{"name": "ok", "description": "x\\udfff"}', b'{"\\ud800": 1}'],
)
async def test_lone_surrogates_in_json_are_422(
    client: httpx.AsyncClient, headers: dict[str, str], raw: bytes
) -> None:
    response = await client.post(
        "/api/v1/projects",
        content=raw,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert_validation_problem(response, "body")


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"username": "a\x00@example.com", "password": "whatever"}, "username"),
        ({"username": "a@example.com", "password": "pass\x00word"}, "password"),
    ],
)
async def test_nul_in_login_form_is_422_without_credentials(
    client: httpx.AsyncClient, form: dict[str, str], field: str
) -> None:
    response = await client.post("/api/v1/auth/login", data=form)
    assert_validation_problem(response, "body", field)


@pytest.mark.parametrize("field", ["project_id", "processor", "priority"])
async def test_nul_in_upload_form_fields_is_422(upload: Upload, field: str) -> None:
    response = await upload(data={field: "ab\x00c"})
    assert_validation_problem(response, "body", field)
    assert response.json()["errors"][0]["type"] == "unsafe_text"


async def test_q_matches_only_what_it_says(
    client: httpx.AsyncClient, headers: dict[str, str], upload: Upload
) -> None:
    for name in ("alpha.txt", "beta.txt"):
        assert (await upload(name=name)).status_code == 202
    response = await client.get("/api/v1/tasks/", params={"q": "alp"}, headers=headers)
    assert [t["file_name"] for t in response.json()["items"]] == ["alpha.txt"]


# --- ids that are not ids ---------------------------------------------------------------------


async def test_ids_that_are_not_uuids_are_404(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for bad in ("not-a-uuid", "x" * 1000, "%20", "1' OR '1'='1", "😀"):
        for method, url in [
            ("GET", f"/api/v1/tasks/{bad}"),
            ("GET", f"/api/v1/tasks/{bad}/logs"),
            ("GET", f"/api/v1/tasks/{bad}/result"),
            ("GET", f"/api/v1/tasks/{bad}/files"),
            ("GET", f"/api/v1/tasks/{bad}/files/report.json"),
            ("DELETE", f"/api/v1/tasks/{bad}"),
            ("GET", f"/api/v1/projects/{bad}"),
            ("DELETE", f"/api/v1/projects/{bad}"),
            ("GET", f"/api/v1/batches/{bad}"),
            ("DELETE", f"/api/v1/auth/api-keys/{bad}"),
        ]:
            response = await client.request(method, url, headers=headers)
            assert response.status_code == 404, (method, url, response.text)
            assert response.headers["content-type"] == "application/problem+json"


async def test_a_body_that_cannot_be_decoded_is_422(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for content in (b"\xff\xfe\x00{", b'{"name": "caf\xe9"}'):
        response = await client.post(
            "/api/v1/projects",
            content=content,
            headers={**headers, "Content-Type": "application/json"},
        )
        assert_validation_problem(response, "body")
    response = await client.post(
        "/api/v1/projects", content=b"{", headers=headers | {"Content-Type": "application/json"}
    )
    assert_validation_problem(response, "body")
    assert response.json()["errors"][0]["type"] == "json_invalid"


async def test_a_websocket_whose_path_or_query_holds_nul_is_closed_with_1008() -> None:
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the request must not get past the guard")

    for path, query in [("/api/v1/ws/tasks/c\x001", b""), ("/api/v1/ws/tasks/c1", b"token=%00")]:
        sent.clear()
        scope = {"type": "websocket", "path": path, "query_string": query, "headers": []}
        await NulGuardMiddleware(app)(scope, receive, send)
        assert [m["type"] for m in sent] == ["websocket.close"]
        assert sent[0]["code"] == 1008
