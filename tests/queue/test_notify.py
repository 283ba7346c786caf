"""The events a worker's statements send with NOTIFY (built in SQL) are the ones it
delivers to its own bus: other processes see the same change the same way."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.database import factory_bus
from app.events.publish import EVENTS_CHANNEL, MAX_ERROR_LENGTH, PROCESS_ID, TaskEvent
from app.models import Task
from app.processors.base import ProcessorOutput
from app.queue import attempts
from tests.queue.conftest import MakeTask, log_messages

pytestmark = pytest.mark.postgres_only


async def test_a_claim_and_a_completion_notify_the_events_they_deliver_locally(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], make_task: MakeTask
) -> None:
    task = await make_task("noop")
    async with sessions() as session, session.begin():  # an earlier attempt's long error
        error = "é" * (MAX_ERROR_LENGTH + 5)
        await session.execute(update(Task).where(Task.id == task.id).values(error_message=error))
    local: list[TaskEvent] = []
    factory_bus(sessions).subscribe(TaskEvent, local.append)
    heard: list[str] = []
    listening = await asyncpg.connect(settings.database_url.replace("+asyncpg", ""))
    try:
        await listening.add_listener(EVENTS_CHANNEL, lambda *args: heard.append(args[3]))
        [claimed] = await attempts.claim(sessions, settings, "worker-1", 10)
        finished = (claimed, ProcessorOutput(summary="done"), settings.upload_dir / "unused")
        assert await attempts.complete_many(sessions, settings, [finished]) == [True]
        async with asyncio.timeout(10):
            while len(heard) < 2:
                await asyncio.sleep(0.02)
    finally:
        await listening.close()
    origins, events = zip(*map(TaskEvent.from_json, heard), strict=True)
    assert origins == (PROCESS_ID, PROCESS_ID)
    assert local == list(events)
    started, completed = events
    assert (started.task_id, started.status, started.stage, claimed.attempt) == (
        task.id,
        "processing",
        "starting",
        1,
    )
    assert started.error_message == error[: MAX_ERROR_LENGTH - 1] + "…"
    assert (completed.status, completed.progress, completed.error_message) == (
        "completed",
        100,
        None,
    )
    assert completed.seq == started.seq + 1
    assert await log_messages(sessions, task.id) == [
        "Uploaded and queued",
        "Started attempt 1",
        attempts.COMPLETED_MESSAGE,
    ]
