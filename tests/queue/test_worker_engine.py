"""The worker pool's own PostgreSQL engine: no pre-ping, yet it survives lost connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app import database
from app.config import Settings
from app.database import create_engine_for, create_session_factory, factory_bus
from app.events.bus import EventBus
from app.queue.pool import WorkerPool
from tests.queue.conftest import MakeTask, reload

pytestmark = pytest.mark.postgres_only


@pytest.fixture
async def worker_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine_for(settings, for_workers=True)
    yield engine
    await engine.dispose()


async def _backend_pid(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        pid: int = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        return pid


async def test_the_worker_engine_does_not_ping_but_replaces_idle_connections(
    worker_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert worker_engine.pool._pre_ping is False  # type: ignore[attr-defined]
    sessions = create_session_factory(worker_engine, EventBus())
    first = await _backend_pid(sessions)
    assert await _backend_pid(sessions) == first  # reused while busy
    monkeypatch.setattr(database, "WORKER_IDLE_RECONNECT_SECONDS", 0.05)
    await asyncio.sleep(0.1)
    assert await _backend_pid(sessions) != first  # idle too long: a fresh connection


async def test_a_pool_keeps_working_after_its_connections_are_killed(
    worker_engine: AsyncEngine,
    make_task: MakeTask,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    worker_sessions = create_session_factory(worker_engine, factory_bus(sessions))
    pool = WorkerPool(settings, worker_sessions, factory_bus(sessions), concurrency=2)
    await pool.start()
    try:
        first = await make_task("noop")
        async with asyncio.timeout(30):
            while (await reload(sessions, first.id)).status != "completed":
                await asyncio.sleep(0.05)
        # a database restart, as the worker sees it: every connection it holds dies
        async with sessions() as session:
            await session.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND backend_type = 'client backend'"
                )
            )
        second = await make_task("noop")
        async with asyncio.timeout(30):
            while (await reload(sessions, second.id)).status != "completed":
                await asyncio.sleep(0.05)
    finally:
        await pool.stop()
    # both ran to the end: the first kept its result, the second was claimed on new connections
    assert [(await reload(sessions, task.id)).status for task in (first, second)] == [
        "completed",
        "completed",
    ]
