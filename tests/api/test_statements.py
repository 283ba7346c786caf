"""One unit of work per request: the sessions an upload or a read opens, the statements it runs.

Before the request's session was shared by the gate and the endpoint, every
authenticated request opened two (an upload with a project or an
Idempotency-Key, three or four).
"""

from __future__ import annotations

import httpx

from tests.api.conftest import Upload
from tests.counting import counting

# statements: SELECT the user; INSERT task (numbered event_seq 1 at once: no UPDATE),
# file row, log row, queue row; on PostgreSQL also the two pg_notify SELECTs (queue, event)
UPLOAD_STATEMENTS = {"sqlite": 5, "postgresql": 7}


async def test_an_upload_opens_one_session(upload: Upload, backend: str) -> None:
    await upload(b"warm-up\n", "warm.txt")  # first-use statements out of the way
    with counting() as counts:
        response = await upload(b"Hello world.\n", "book.txt")
    assert response.status_code == 202
    assert counts.figures == (1, UPLOAD_STATEMENTS[backend]), counts.statements


async def test_a_read_opens_one_session(
    upload: Upload, client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    task_id = (await upload(b"Hello world.\n", "book.txt")).json()["id"]
    with counting() as counts:
        response = await client.get(f"/api/v1/tasks/{task_id}", headers=headers)
    assert response.status_code == 200
    assert counts.figures == (1, 2), counts.statements  # the user, the task
