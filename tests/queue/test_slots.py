"""A pool never loses a slot: the heartbeat/completion race, cancellation during clean-up, load."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.database import factory_bus
from app.models import Task, TaskLog, TaskResult
from app.queue import attempts, maintenance
from app.queue.pool import WorkerPool
from app.services import storage
from tests.queue.conftest import MakeTask, log_messages, reload


async def test_a_heartbeat_between_completion_and_clean_up_stops_nothing(
    make_task: MakeTask, sessions: async_sessionmaker[AsyncSession], settings: Settings,
    monkeypatch: Any,
) -> None:  # fmt: skip
    """The race that wedged the pool, made deterministic.

    The heartbeat runs right after an attempt committed its completion and
    again while it removes its directory: the database no longer says the
    attempt owns its task, yet the attempt is not stopped, and its slot goes
    back to the pool.
    """
    pool = WorkerPool(settings, sessions, factory_bus(sessions), concurrency=1)
    seen_lost: list[set[tuple[str, int]]] = []
    real_complete = attempts.complete_many
    real_remove = storage.remove

    async def complete_then_heartbeat(*args: Any, **kwargs: Any) -> list[bool]:
        done = await real_complete(*args, **kwargs)
        [(claimed, _, _)] = args[2]
        # what the database says now: this attempt no longer owns the task...
        seen_lost.append(
            await maintenance.heartbeat(
                sessions, settings, pool.worker_id, 1, [(claimed.task_id, claimed.attempt)]
            )
        )
        await pool.heartbeat()  # ...and the pool's heartbeat hears it
        return done

    async def heartbeat_then_remove(*paths: Any) -> None:
        if any(p.name.startswith("attempt-") for p in paths):
            await pool.heartbeat()
        await real_remove(*paths)

    stopped: list[str] = []
    real_stop = pool._runner.stop

    def record_stop(key: str) -> None:
        stopped.append(key)
        real_stop(key)

    monkeypatch.setattr(attempts, "complete_many", complete_then_heartbeat)
    monkeypatch.setattr(storage, "remove", heartbeat_then_remove)
    monkeypatch.setattr(pool._runner, "stop", record_stop)
    tasks = [await make_task("writer") for _ in range(3)]
    try:
        async with asyncio.timeout(30):
            await pool.run_until_idle()
    finally:
        pool._runner.close()
    assert len(seen_lost) == 3
    assert all(lost for lost in seen_lost)  # the injection hit the window every time
    assert stopped == []  # no attempt was judged lost, none was interrupted
    for task in tasks:
        done = await reload(sessions, task.id)
        assert (done.status, done.attempt) == ("completed", 1)
        assert not (settings.upload_dir / "tasks" / task.id / "attempt-1.tmp").exists()
    assert pool.running == {}


async def test_a_slot_comes_back_even_when_clean_up_is_cancelled(
    make_task: MakeTask, sessions: async_sessionmaker[AsyncSession], settings: Settings,
    monkeypatch: Any,
) -> None:  # fmt: skip
    """Whatever interrupts an attempt's own clean-up, its slot is released and its
    directory removed: the release is a done-callback of the attempt's task."""
    pool = WorkerPool(settings, sessions, factory_bus(sessions), concurrency=1)
    real_remove = storage.remove
    interrupted: list[str] = []

    async def cancelled_during_remove(*paths: Any) -> None:
        current = asyncio.current_task()
        if (
            current is not None
            and current.get_name().startswith("attempt-")
            and len(interrupted) < 2
        ):
            interrupted.append(current.get_name())
            current.cancel()
            await asyncio.sleep(0)  # the CancelledError arrives inside the attempt's finally
        await real_remove(*paths)

    monkeypatch.setattr(storage, "remove", cancelled_during_remove)
    tasks = [await make_task("writer") for _ in range(3)]
    try:
        async with asyncio.timeout(30):
            await pool.run_until_idle()
            while pool._background:  # the interrupted clean-ups, finished by the pool
                await asyncio.sleep(0.01)
    finally:
        pool._runner.close()
    assert len(interrupted) == 2
    assert [(await reload(sessions, t.id)).status for t in tasks] == ["completed"] * 3
    assert pool.running == {}
    for task in tasks:
        assert not (settings.upload_dir / "tasks" / task.id / "attempt-1.tmp").exists()


async def test_a_busy_pool_with_short_leases_keeps_all_its_slots(
    make_task: MakeTask, sessions: async_sessionmaker[AsyncSession], settings: Settings,
) -> None:  # fmt: skip
    """The load that wedged it: many noop tasks, short leases, two slots, real loops."""
    settings.task_lease_seconds = 0.6  # heartbeat every 0.2 s, upkeep every 0.3 s
    count = 150
    ids = [(await make_task("noop")).id for _ in range(count)]
    pool = WorkerPool(settings, sessions, factory_bus(sessions), concurrency=2)
    await pool.start()
    try:
        async with asyncio.timeout(60):
            while True:
                async with sessions() as session:
                    done = (
                        await session.execute(
                            select(func.count()).select_from(Task).where(Task.status == "completed")
                        )
                    ).scalar_one()
                if done == count:
                    break
                await asyncio.sleep(0.05)
        # both slots still serve: one more task is claimed and completed at once
        extra = await make_task("noop")
        async with asyncio.timeout(10):
            while (await reload(sessions, extra.id)).status != "completed":
                await asyncio.sleep(0.02)
            while pool.running:  # committed; the attempt is removing its directory
                await asyncio.sleep(0.01)
        assert len(pool.running) == 0
    finally:
        await pool.stop()
    async with sessions() as session:
        results = (
            await session.execute(
                select(TaskResult.task_id, func.count()).group_by(TaskResult.task_id)
            )
        ).all()
        completions = (
            await session.execute(
                select(func.count()).select_from(TaskLog).where(TaskLog.message == "Completed")
            )
        ).scalar_one()
    assert len(results) == count + 1
    assert all(n == 1 for _, n in results)
    assert completions == count + 1
    assert "Completed" in await log_messages(sessions, ids[0])
