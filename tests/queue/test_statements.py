"""Sessions opened and statements run by a worker for one task, claim to completion."""

from __future__ import annotations

import asyncio

from app.queue.pool import WorkerPool
from tests.counting import counting
from tests.queue.conftest import MakeTask

# the claim, then the attempt's start, progress and completion (with the one SELECT
# that finds no webhook receiver); PostgreSQL claims in one statement (its four become
# one, the NOTIFY included), completes in three (the UPDATE, its log rows and NOTIFY in
# one; the result row, the upload's expiry and the queue row's removal in another) and
# adds the pg_notify SELECT of the start's event
TASK_FIGURES = {"sqlite": (4, 12), "postgresql": (4, 6)}


async def test_a_task_opens_its_sessions_and_runs_its_statements(
    pool: WorkerPool, make_task: MakeTask, backend: str
) -> None:
    await make_task("writer")
    async with asyncio.timeout(60):
        await pool.run_until_idle()  # first-use statements out of the way
    await make_task("noop")
    with counting() as counts:
        async with asyncio.timeout(60):
            await pool.run_until_idle()
    assert counts.figures == TASK_FIGURES[backend], counts.statements
