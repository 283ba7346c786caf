"""Upkeep: expired leases, retention of files, dead workers, the processor registry."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models import FileStorage, Task, TaskQueue, Worker
from app.models.base import utcnow
from app.processors import registry
from app.queue import attempts, maintenance
from app.queue.pool import WorkerPool
from tests.queue.conftest import MakeTask, reload


async def _expire_leases(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            update(TaskQueue).values(locked_until=utcnow() - timedelta(seconds=1))
        )


async def test_expired_leases_are_retried_then_failed(
    make_task: MakeTask, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    settings.task_max_retries = 1
    task = await make_task()
    async with sessions() as session, session.begin():
        await session.execute(update(Task).values(max_retries=1))
    await attempts.claim(sessions, settings, "gone", 1)
    await _expire_leases(sessions)
    report = await maintenance.run_maintenance(sessions, settings)
    assert (report.reclaimed, report.failed) == (1, 0)
    back = await reload(sessions, task.id)
    assert (back.status, back.retry_count, back.attempt) == ("pending", 1, 1)

    [claimed] = await attempts.claim(sessions, settings, "gone-again", 1)
    assert claimed.attempt == 2
    await _expire_leases(sessions)
    report = await maintenance.run_maintenance(sessions, settings)
    assert (report.reclaimed, report.failed) == (0, 1)
    failed = await reload(sessions, task.id)
    assert failed.status == "failed"
    assert failed.error_message == (
        "The worker running this task stopped responding 2 times (its lease expired); giving up."
    )
    # the worker that lost the lease can no longer write anything
    assert await attempts.report_progress(sessions, claimed, 50, "late") is False


async def test_retention_deletes_files_and_keeps_rows(
    pool: WorkerPool, make_task: MakeTask, sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:  # fmt: skip
    task = await make_task("writer")
    async with asyncio.timeout(30):
        await pool.run_until_idle()
    async with sessions() as session:
        rows = (await session.execute(select(FileStorage))).scalars().all()
        assert {r.name for r in rows} == {"original.txt", "out.txt"}
        assert all(r.expires_at is not None for r in rows)
        expires = {r.name: r.expires_at for r in rows}
    assert expires["out.txt"] > utcnow() + timedelta(days=settings.result_ttl_days - 1)
    assert (await maintenance.run_maintenance(sessions, settings)).files_deleted == 0
    async with sessions() as session, session.begin():
        await session.execute(
            update(FileStorage)
            .where(FileStorage.name == "out.txt")
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert (await maintenance.run_maintenance(sessions, settings)).files_deleted == 1
    results = settings.upload_dir / "tasks" / task.id / "results"
    assert not (results / "out.txt").exists()
    async with sessions() as session:
        row = (
            await session.execute(select(FileStorage).where(FileStorage.name == "out.txt"))
        ).scalar_one()
        assert row.deleted_at is not None
        assert row.size > 0
    assert (await reload(sessions, task.id)).status == "completed"


async def test_dead_workers_are_forgotten(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    await maintenance.register_worker(sessions, "alive", 2)
    await maintenance.register_worker(sessions, "dead", 2)
    async with sessions() as session, session.begin():
        await session.execute(
            update(Worker)
            .where(Worker.id == "dead")
            .values(heartbeat_at=utcnow() - timedelta(hours=1))
        )
    assert (await maintenance.run_maintenance(sessions, settings)).workers_removed == 1
    async with sessions() as session:
        assert (await session.execute(select(Worker.id))).scalars().all() == ["alive"]


async def test_health_counts_live_workers(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await maintenance.register_worker(sessions, "w1", 3)
    body = (await client.get("/health")).json()
    assert body["status"] == "healthy"
    assert body["workers"] == {"status": "ok", "processes": 1, "concurrency": 3}


def test_registry_knows_built_ins_and_configured_processors() -> None:
    assert {"analyze", "noop", "writer"} <= set(registry.processor_names())
    assert registry.get_processor("noop").name == "noop"
    with pytest.raises(registry.UnknownProcessor):
        registry.get_processor("nope")


def test_processors_setting_is_parsed() -> None:
    parsed = Settings(_env_file=None, processors="a=pkg.mod:obj, b=x:y")  # type: ignore[call-arg]
    assert parsed.processors == {"a": "pkg.mod:obj", "b": "x:y"}
    with pytest.raises(ValueError, match="name=module:attribute"):
        Settings(_env_file=None, processors="broken")  # type: ignore[call-arg]
