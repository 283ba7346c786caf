"""One unit of work per request: the sessions an upload or a read opens, the statements it runs.

Before the request's session was shared by the gate and the endpoint, every
authenticated request opened two (an upload with a project or an
Idempotency-Key, three or four).
"""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from app.models import ApiKey
from tests.api.conftest import Upload
from tests.counting import counting
from tests.factories import app_sessions

# statements: SELECT the user; INSERT task (numbered event_seq 1 at once: no UPDATE),
# file row, log row, queue row; on PostgreSQL the four INSERTs are CTEs of one statement
# whose SELECT is the event's pg_notify (which also wakes other processes' workers).
# Before: 5 / 7 (the INSERTs one by one, a second pg_notify for the queue).
UPLOAD_STATEMENTS = {"sqlite": 5, "postgresql": 2}


async def test_an_upload_opens_one_session(upload: Upload, backend: str) -> None:
    await upload(b"warm-up\n", "warm.txt")  # first-use statements out of the way
    with counting() as counts:
        response = await upload(b"Hello world.\n", "book.txt")
    assert response.status_code == 202
    assert counts.figures == (1, UPLOAD_STATEMENTS[backend]), counts.statements
    # the gate commits after authenticating, then the upload's unit of work
    assert counts.transactions == 2


async def test_a_read_opens_one_session(
    upload: Upload, client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    task_id = (await upload(b"Hello world.\n", "book.txt")).json()["id"]
    with counting() as counts:
        response = await client.get(f"/api/v1/tasks/{task_id}", headers=headers)
    assert response.status_code == 200
    assert counts.figures == (1, 2), counts.statements  # the user, the task
    assert counts.transactions == 2


async def test_an_api_key_commits_its_last_use_at_once_and_only_when_due(
    upload: Upload,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    app: FastAPI,
    backend: str,
) -> None:
    created = await client.post("/api/v1/auth/api-keys", json={"name": "ci"}, headers=headers)
    with_key = {"Authorization": f"Bearer {created.json()['key']}"}
    with counting() as first:  # last_used_at written: committed before the request's work
        refused = await upload(data={"project_id": "no-such-project"}, auth=with_key)
    assert refused.status_code == 404  # the request's own transaction rolled back ...
    async with app_sessions(app)() as session:  # ... but the key's last use was kept
        last_used = (await session.execute(select(ApiKey.last_used_at))).scalar_one()
    assert last_used is not None
    assert first.transactions == 2
    with counting() as again:  # within LAST_USED_RESOLUTION: nothing more is written
        response = await upload(b"Hello world.\n", "book.txt", auth=with_key)
    assert response.status_code == 202
    assert len(again.statements) == UPLOAD_STATEMENTS[backend]
    async with app_sessions(app)() as session:
        assert (await session.execute(select(ApiKey.last_used_at))).scalar_one() == last_used
