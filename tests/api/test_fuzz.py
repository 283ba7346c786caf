"""Schema-driven fuzz: every operation of the app's own OpenAPI, with a token and without.

Schemathesis generates requests from ``/openapi.json`` (valid ones and ones
that break the schema on purpose); each is sent to the running test app and
its response checked: never a 5xx, and the status code, content type and body
are ones the schema documents. Runs on SQLite and PostgreSQL.

The app runs in the test's event loop (the ``app`` fixture), so the
Hypothesis loop runs in a worker thread and hands each request back to the
loop (``anyio.from_thread``). Requests are built by schemathesis' own
``requests`` serialisation and sent with the httpx test client, so what the
app receives is exactly what schemathesis meant to send.

Bounded for CI: a few examples per operation and mode, no deadline, no
example database.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import httpx
import pytest
import requests
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.config import Settings
from app.main import create_app
from app.models import Role
from tests.api.conftest import Upload, finish_task
from tests.factories import app_sessions, bearer, make_user

BASE_URL = "http://testserver"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# FUZZ_SCALE=10 explores ten times as many examples (a deeper local run; CI keeps 1).
SCALE = max(1, int(os.environ.get("FUZZ_SCALE", "1")))
EXAMPLES = {GenerationMode.POSITIVE: 6 * SCALE, GenerationMode.NEGATIVE: 4 * SCALE}
AUTH_MODES = ("user", "admin", "anonymous")
# A live stream never ends on its own: it is fuzzed with ids that name nothing only.
STREAMING = {"/api/v1/tasks/{task_id}/events"}


def _openapi() -> dict[str, Any]:
    """The app's OpenAPI document, read without starting the app."""
    probe = create_app(
        Settings(
            environment="test",
            database_url="sqlite+aiosqlite:///:memory:",
            secret_key="fuzz-collection-secret-key-0123456789abcdef",
            log_level="WARNING",
            _env_file=None,
        )
    )
    return probe.openapi()


OPENAPI = _openapi()
OPERATIONS = [
    (method.upper(), path) for path, operations in OPENAPI["paths"].items() for method in operations
]


def _send(client: httpx.AsyncClient, case: Case[Any], headers: dict[str, str]) -> httpx.Response:
    """Serialise ``case`` as schemathesis does and send it through the app's event loop."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
    kwargs.pop("timeout", None)
    prepared = requests.Request(**kwargs).prepare()
    raw = prepared.body
    body = raw.encode() if isinstance(raw, str) else raw if isinstance(raw, bytes) else None
    assert raw is None or body is not None, f"unexpected body type {type(raw)}"
    sent_headers = {
        name: value.decode("latin-1") if isinstance(value, bytes) else value
        for name, value in prepared.headers.items()
    }

    async def request() -> httpx.Response:
        return await client.request(
            prepared.method or case.method,
            prepared.url or BASE_URL,
            headers=sent_headers,
            content=body,
        )

    return anyio.from_thread.run(request)


@pytest.mark.timeout(300 * SCALE)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
async def test_operation_never_fails_and_answers_as_documented(
    app: FastAPI,
    settings: Settings,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    upload: Upload,
    method: str,
    path: str,
) -> None:
    admin = await make_user(app_sessions(app), role=Role.ADMIN)
    tokens = {"user": headers, "admin": bearer(settings, admin), "anonymous": {}}
    # real rows owned by the fuzzing user: a finished task in a batch-less project
    project = await client.post("/api/v1/projects", json={"name": "Fuzzed"}, headers=headers)
    assert project.status_code == 201, project.text
    created = await upload(data={"project_id": project.json()["id"]})
    assert created.status_code == 202, created.text
    task_id = created.json()["id"]
    await finish_task(app, settings, task_id)
    batch = await client.post(
        "/api/v1/tasks/batch",
        files=[("files", ("a.txt", b"Chapter 1\n\nA short tale.\n", "text/plain"))],
        headers=headers,
    )
    assert batch.status_code == 202, batch.text
    known = {
        "task_id": task_id,
        "project_id": project.json()["id"],
        "batch_id": batch.json()["batch_id"],
        "name": "report.json",
    }

    schema = schemathesis.openapi.from_dict(app.openapi())
    operation = schema[path][method]
    names = {p.name for p in operation.path_parameters}
    strategies = []
    has_inputs = any(True for _ in operation.iter_parameters()) or bool(
        operation.get_request_payload_content_types()
    )
    for mode, count in EXAMPLES.items():
        if mode is GenerationMode.NEGATIVE and not has_inputs:
            continue  # nothing to break: no parameters, no body
        strategies.append((mode, count, operation.as_strategy(generation_mode=mode)))
        if names and path not in STREAMING and mode is GenerationMode.POSITIVE:
            real = {name: known[name] for name in names if name in known}
            strategies.append(
                (mode, count, operation.as_strategy(generation_mode=mode, path_parameters=real))
            )

    def fuzz(strategy: st.SearchStrategy[Case[Any]], count: int) -> Callable[[], None]:
        @hypothesis_settings(
            max_examples=count,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy, auth=st.sampled_from(AUTH_MODES))
        def run(case: Case[Any], auth: str) -> None:
            response = _send(client, case, tokens[auth])
            # a 429 would mean the rest of the run tests the limiter, not the operation
            assert response.status_code != 429, "the rate limit ran dry during the fuzz"
            case.validate_response(response, checks=CHECKS, headers=tokens[auth])

        return run

    for _mode, count, strategy in strategies:
        await anyio.to_thread.run_sync(fuzz(strategy, count * len(AUTH_MODES)))


def test_every_operation_is_fuzzed_and_documents_its_errors() -> None:
    paths = {path for _, path in OPERATIONS}
    assert "/api/v1/tasks/upload" in paths
    assert "/api/v1/auth/login" in paths
    assert len(OPERATIONS) >= 25
    problem_json = "application/problem+json"
    for path, operations in OPENAPI["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            documented = set(responses)
            if path.startswith("/api/v1/"):
                assert {"401", "422", "429", "503"} <= documented, (method, path)
            if "requestBody" in operation:
                assert {"408", "413"} <= documented, (method, path)
            for status, response in responses.items():
                if status[0] in "45" and path.startswith("/api/v1/"):
                    assert problem_json in response.get("content", {}), (method, path, status)
