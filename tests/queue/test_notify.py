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
from app.queue import attempts
from tests.queue.conftest import MakeTask

pytestmark = pytest.mark.postgres_only


async def test_a_claim_notifies_the_event_it_delivers_locally(
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
        async with asyncio.timeout(10):
            while not heard:
                await asyncio.sleep(0.02)
    finally:
        await listening.close()
    origin, event = TaskEvent.from_json(heard[0])
    assert origin == PROCESS_ID
    assert local == [event]
    assert (event.task_id, event.status, event.stage, claimed.attempt) == (
        task.id,
        "processing",
        "starting",
        1,
    )
    assert event.error_message == error[: MAX_ERROR_LENGTH - 1] + "…"
