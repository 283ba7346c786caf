"""Queue test helpers: tasks created through the real upload service, a pool per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.database import factory_bus
from app.models import Task, TaskLog, User
from app.processors import registry
from app.queue.pool import WorkerPool
from app.services import tasks as task_service
from app.services.uploads import ReceivedFile, ReceivedForm
from tests.factories import make_user
from tests.queue.processors import PROCESSORS


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "processors": PROCESSORS,
        "task_retry_backoff_seconds": 0,
        "task_lease_seconds": 2,
        "worker_poll_seconds": 0.2,
        "shutdown_grace_seconds": 0.5,
    }


@pytest.fixture(autouse=True)
def _test_processors() -> None:
    registry.configure(PROCESSORS)


@pytest.fixture
async def owner(sessions: async_sessionmaker[AsyncSession]) -> User:
    return await make_user(sessions)


MakeTask = Callable[..., Awaitable[Task]]


@pytest.fixture
def make_task(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, owner: User
) -> MakeTask:
    async def create(
        processor: str = "writer", priority: int = 5, content: bytes = b"some text\n", **_: Any
    ) -> Task:
        temp = settings.upload_dir / ".tmp" / f"{len(content)}-{id(content)}-{priority}.part"
        temp.parent.mkdir(parents=True, exist_ok=True)
        temp.write_bytes(content)
        received = ReceivedFile(filename="book.txt", temp_path=temp, size=len(content))
        received.sha256.update(content)
        options = task_service.UploadOptions(
            project_id=None, priority=priority, processor=processor
        )
        async with sessions() as session:
            tasks, _, _ = await task_service.create_tasks(
                session, settings, owner, ReceivedForm([received], {}), options
            )
            await session.commit()
        return tasks[0]

    return create


@pytest.fixture
async def pool(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[WorkerPool]:
    pool = WorkerPool(settings, sessions, factory_bus(sessions), concurrency=2)
    yield pool
    pool._runner.close()


async def reload(sessions: async_sessionmaker[AsyncSession], task_id: str) -> Task:
    async with sessions() as session:
        task = await session.get(Task, task_id)
        assert task is not None
        return task


async def log_messages(sessions: async_sessionmaker[AsyncSession], task_id: str) -> list[str]:
    async with sessions() as session:
        rows = await session.execute(
            select(TaskLog.message).where(TaskLog.task_id == task_id).order_by(TaskLog.id)
        )
        return list(rows.scalars())
