"""Completions written in batches: many finished attempts per transaction, each still fenced."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.database import factory_bus
from app.events.publish import TaskEvent
from app.models import FileStorage, TaskLog, TaskQueue, TaskResult
from app.models.base import utcnow
from app.processors.base import OutputFile, ProcessorOutput
from app.queue import attempts, maintenance
from app.queue.pool import WorkerPool
from app.services import storage
from tests.queue.conftest import MakeTask, log_messages, reload


def batch_sizes(monkeypatch: Any, linger: float = 0.2) -> list[int]:
    """Record the size of every batch written; the first write lingers, so that the
    attempts finishing meanwhile gather behind it."""
    sizes: list[int] = []
    real = attempts.complete_many

    async def recorded(*args: Any, **kwargs: Any) -> list[bool]:
        sizes.append(len(args[2]))
        if len(sizes) == 1:
            await asyncio.sleep(linger)
        return await real(*args, **kwargs)

    monkeypatch.setattr(attempts, "complete_many", recorded)
    return sizes


async def test_attempts_finishing_together_complete_in_one_transaction(
    make_task: MakeTask, sessions: async_sessionmaker[AsyncSession], settings: Settings,
    monkeypatch: Any,
) -> None:  # fmt: skip
    sizes = batch_sizes(monkeypatch)
    tasks = [await make_task("writer", content=b"x" * n) for n in range(1, 9)]
    pool = WorkerPool(settings, sessions, factory_bus(sessions), concurrency=8)
    events: list[TaskEvent] = []
    pool.bus.subscribe(TaskEvent, events.append)
    try:
        async with asyncio.timeout(60):
            await pool.run_until_idle()
    finally:
        pool._runner.close()
    assert sum(sizes) == len(tasks)
    assert max(sizes) > 1  # some were written together
    for n, task in enumerate(tasks, start=1):
        done = await reload(sessions, task.id)
        assert (done.status, done.progress, done.attempt) == ("completed", 100, 1)
        assert done.result_url == f"/api/v1/tasks/{task.id}/files/out.txt"
        assert await log_messages(sessions, task.id) == [
            "Uploaded and queued",
            "Started attempt 1",
            "Completed",
        ]
        out = settings.upload_dir / "tasks" / task.id / "results" / "out.txt"
        assert out.read_text().startswith(f"{n} bytes by ")
        completed = [e for e in events if e.task_id == task.id and e.status == "completed"]
        assert len(completed) == 1
    async with sessions() as session:
        results = (await session.execute(select(TaskResult.summary))).scalars().all()
        assert sorted(results) == sorted(f"{n} bytes" for n in range(1, 9))
        kept = select(func.count()).select_from(FileStorage).where(FileStorage.kind == "result")
        assert (await session.execute(kept)).scalar_one() == len(tasks)
        assert (await session.execute(select(func.count()).select_from(TaskQueue))).scalar() == 0


def _finished(
    settings: Settings, claimed: list[attempts.Claimed]
) -> list[tuple[attempts.Claimed, ProcessorOutput, Path]]:
    """Each claimed attempt as if its processor had returned one ``out.txt``."""
    finished = []
    for item in claimed:
        directory = storage.attempt_dir(settings.upload_dir, item.task_id, item.attempt)
        directory.mkdir(parents=True)
        (directory / "out.txt").write_text("done")
        output = ProcessorOutput(summary="ok", files=[OutputFile("out.txt", "text/plain")])
        finished.append((item, output, directory))
    return finished


async def test_a_fenced_out_attempt_in_a_batch_writes_nothing_and_the_others_complete(
    make_task: MakeTask, sessions: async_sessionmaker[AsyncSession], settings: Settings,
) -> None:  # fmt: skip
    first, second = await make_task("writer"), await make_task("writer")
    pool = WorkerPool(settings, sessions, factory_bus(sessions), concurrency=2)
    claimed = await attempts.claim(sessions, settings, pool.worker_id, 2)
    pool._runner.close()
    finished = _finished(settings, claimed)
    cancelled = next(item for item in claimed if item.task_id == first.id)
    async with sessions() as session, session.begin():  # the user cancels one meanwhile
        await attempts.user_transition(session, attempts.CANCEL, cancelled.task_id, "Cancelled")
    outcomes = await attempts.complete_many(sessions, settings, finished)
    by_task = dict(zip([item.task_id for item in claimed], outcomes, strict=True))
    assert by_task == {first.id: False, second.id: True}
    assert (await reload(sessions, first.id)).status == "cancelled"
    assert (await reload(sessions, second.id)).status == "completed"
    assert not (settings.upload_dir / "tasks" / first.id / "results").exists()
    async with sessions() as session:
        logged = select(TaskLog.task_id).where(TaskLog.message == "Completed")
        assert (await session.execute(logged)).scalars().all() == [second.id]


async def test_files_that_will_not_move_fail_only_their_own_attempt(
    make_task: MakeTask, sessions: async_sessionmaker[AsyncSession], settings: Settings,
    monkeypatch: Any,
) -> None:  # fmt: skip
    sizes = batch_sizes(monkeypatch)
    settings.task_max_retries = 0  # the refusal fails the task at once
    tasks = [await make_task("writer", content=b"y" * n) for n in range(1, 5)]
    refused = tasks[2].id
    real_move = storage.move

    async def move(source: Path, target: Path) -> None:
        if refused in target.parts:
            raise OSError(28, "No space left on device")
        await real_move(source, target)

    monkeypatch.setattr(storage, "move", move)
    pool = WorkerPool(settings, sessions, factory_bus(sessions), concurrency=4)
    try:
        async with asyncio.timeout(60):
            await pool.run_until_idle()
    finally:
        pool._runner.close()
    assert max(sizes) > 1  # the refusal met a batch, which was then written one by one
    statuses = {task.id: (await reload(sessions, task.id)).status for task in tasks}
    assert statuses[refused] == "failed"
    assert [status for task_id, status in statuses.items() if task_id != refused] == [
        "completed"
    ] * 3
    assert not (settings.upload_dir / "tasks" / refused / "results").exists()
    assert "full" in ((await reload(sessions, refused)).error_message or "").lower()


async def test_an_attempt_that_lost_its_lease_in_a_batch_writes_nothing_and_the_others_complete(
    make_task: MakeTask, sessions: async_sessionmaker[AsyncSession], settings: Settings,
) -> None:  # fmt: skip
    tasks = [await make_task("writer", content=b"z" * n) for n in range(1, 4)]
    pool = WorkerPool(settings, sessions, factory_bus(sessions), concurrency=3)
    pool._runner.close()
    claimed = await attempts.claim(sessions, settings, pool.worker_id, 3)
    stale = next(item for item in claimed if item.task_id == tasks[1].id)
    async with sessions() as session, session.begin():  # its lease ran out (a long pause)
        await session.execute(
            update(TaskQueue)
            .where(TaskQueue.task_id == stale.task_id)
            .values(locked_until=utcnow() - timedelta(seconds=1))
        )
        reclaimed, _ = await maintenance.reclaim_expired(session, settings)
    assert reclaimed == 1
    [again] = await attempts.claim(sessions, settings, "another-worker", 3)
    assert (again.task_id, again.attempt) == (stale.task_id, 2)  # processing, a newer attempt
    finished = _finished(settings, claimed)
    events: list[TaskEvent] = []
    pool.bus.subscribe(TaskEvent, events.append)
    outcomes = await attempts.complete_many(sessions, settings, finished)
    by_task = dict(zip([item.task_id for item in claimed], outcomes, strict=True))
    assert by_task == {tasks[0].id: True, stale.task_id: False, tasks[2].id: True}
    left = await reload(sessions, stale.task_id)
    assert (left.status, left.attempt, left.progress, left.result_url) == ("processing", 2, 0, None)
    for task in (tasks[0], tasks[2]):
        done = await reload(sessions, task.id)
        assert (done.status, done.attempt, done.progress) == ("completed", 1, 100)
        assert done.result_url == f"/api/v1/tasks/{task.id}/files/out.txt"
    assert not (settings.upload_dir / "tasks" / stale.task_id / "results").exists()
    async with sessions() as session:
        logged = select(TaskLog.task_id).where(TaskLog.message == "Completed")
        assert sorted((await session.execute(logged)).scalars()) == sorted(
            [tasks[0].id, tasks[2].id]
        )
        kept = (await session.execute(select(TaskResult.task_id))).scalars().all()
        assert sorted(kept) == sorted([tasks[0].id, tasks[2].id])
        queued = (await session.execute(select(TaskQueue.task_id))).scalars().all()
        assert queued == [stale.task_id]  # still the other worker's
    await asyncio.sleep(0.1)  # events are delivered after the commit
    completed = {e.task_id for e in events if e.status == "completed"}
    assert completed == {tasks[0].id, tasks[2].id}


async def _until(condition: Any) -> None:
    async with asyncio.timeout(30):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_slot_takes_the_next_task_while_its_outcome_is_written(
    make_task: MakeTask, sessions: async_sessionmaker[AsyncSession], settings: Settings,
    monkeypatch: Any,
) -> None:  # fmt: skip
    """Claiming overlaps completing: a slot whose processor returned runs the next task
    while the completion is still being written, and no more attempts are held than
    the bound (one finishing per slot) allows."""
    gate = asyncio.Event()
    real = attempts.complete_many

    async def held(*args: Any, **kwargs: Any) -> list[bool]:
        await gate.wait()
        return await real(*args, **kwargs)

    monkeypatch.setattr(attempts, "complete_many", held)
    tasks = [await make_task("writer") for _ in range(3)]
    pool = WorkerPool(settings, sessions, factory_bus(sessions), concurrency=1)
    try:
        assert await pool._claim_free_slots() == 1
        await _until(lambda: pool.free_slots() == 1)  # its processor returned
        assert await pool._claim_free_slots() == 1  # the next one, the first still writing
        await _until(lambda: len(pool._finished) == 1)  # both done: one writing, one queued
        assert pool.free_slots() == 0
        assert await pool._claim_free_slots() == 0
        statuses = [(await reload(sessions, task.id)).status for task in tasks]
        assert statuses == ["processing", "processing", "pending"]
        gate.set()
        async with asyncio.timeout(60):
            await pool.run_until_idle()
    finally:
        gate.set()
        pool._runner.close()
    for task in tasks:
        assert (await reload(sessions, task.id)).status == "completed"
    assert pool.running == {}
