"""A database or storage that is down answers 503 (with Retry-After) or 507, never 500.

The chaos suite (tests/chaos) proves it against a real stopped PostgreSQL and
a full or read-only tmpfs; these tests pin the mapping and its problem bodies.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from app.api.unavailable import translate
from app.config import Settings
from app.database import create_session_factory
from app.errors import PROBLEM_JSON
from tests.api.conftest import Upload, files_on_disk


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens once the socket is closed


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), 507, "insufficient_storage"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), 507, "insufficient_storage"),
        (OSError(errno.EROFS, "Read-only file system"), 503, "storage_unavailable"),
        (
            ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"),
            503,
            "database_unavailable",
        ),
        (
            ExceptionGroup("task group", [ValueError("x"), ConnectionResetError()]),
            503,
            "database_unavailable",
        ),
    ],
)
def test_dependency_failures_map_to_a_problem(error: Exception, status: int, code: str) -> None:
    problem = translate(error)
    assert problem is not None
    assert (problem.status, problem.code) == (status, code)
    assert "nothing was" in problem.detail  # says the request left nothing behind
    assert int(problem.headers["Retry-After"]) > 0


def test_a_dropped_database_connection_is_unavailable_and_other_errors_are_not() -> None:
    dropped = DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True)
    assert translate(dropped) is not None
    chained = RuntimeError("while saving")
    chained.__cause__ = ConnectionResetError()
    assert translate(chained) is not None
    # a real bug (a bad statement, a missing file, a value error) stays a 500
    assert translate(OperationalError("SELECT nope", {}, Exception("no such table"))) is None
    assert translate(FileNotFoundError(errno.ENOENT, "missing")) is None
    assert translate(ValueError("bug")) is None


@pytest.fixture
async def database_down(app: FastAPI) -> AsyncIterator[None]:
    """The app's database unreachable (a closed port) for the duration of the test."""
    working = app.state.session_factory
    engine = create_async_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{_closed_port()}/x")
    app.state.session_factory = create_session_factory(engine, app.state.bus)
    try:
        yield
    finally:
        app.state.session_factory = working
        await engine.dispose()


async def test_while_the_database_is_down_requests_answer_503_with_retry_after(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    upload: Upload,
    database_down: None,
    settings: Settings,
) -> None:
    for response in (
        await client.get("/api/v1/tasks/", headers=headers),
        await upload(),
    ):
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.headers["retry-after"] == "5"
        body = response.json()
        assert body["code"] == "database_unavailable"
        assert body["status"] == 503
    health = await client.get("/health")
    assert health.status_code == 503
    assert health.json()["database"]["status"] == "error"
    assert files_on_disk(settings.upload_dir) == []


@pytest.mark.postgres_only
async def test_connections_killed_under_the_api_cost_one_503_at_most(
    app: FastAPI, client: httpx.AsyncClient, headers: dict[str, str], settings: Settings
) -> None:
    """The API's engine does not pre-ping a connection it checks out: a connection a
    database restart broke fails its first statement (503 database_unavailable), which
    invalidates the pool, and the requests after it get new connections."""
    engine = app.state.session_factory.kw["bind"]
    assert engine.pool._pre_ping is False
    for _ in range(3):  # a few connections in the pool
        assert (await client.get("/api/v1/tasks/", headers=headers)).status_code == 200
    admin = await asyncpg.connect(settings.database_url.replace("+asyncpg", ""))
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend' AND pid <> $1",
            app.state.listener.backend_pid,
        )
    finally:
        await admin.close()
    assert killed >= 1
    statuses = []
    for _ in range(4):
        response = await client.get("/api/v1/tasks/", headers=headers)
        statuses.append(response.status_code)
        if response.status_code != 200:
            assert response.json()["code"] == "database_unavailable"
    assert statuses[1:] == [200, 200, 200], statuses
    assert statuses[0] in (200, 503), statuses
