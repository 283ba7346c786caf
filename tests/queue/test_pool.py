"""The worker pool in one process: run, order, progress, failures, retries, cancel, shutdown."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.database import factory_bus
from app.events.publish import MAX_ERROR_LENGTH, TaskEvent
from app.models import FileStorage, Task, TaskQueue, TaskResult, Worker
from app.queue import attempts, runner
from app.queue.pool import WorkerPool
from app.services import storage
from app.services import tasks as task_service
from tests.queue.conftest import MakeTask, log_messages, reload


async def run_collecting_events(pool: WorkerPool) -> list[TaskEvent]:
    """Run the pool until idle; the events published meanwhile, in order."""
    events: list[TaskEvent] = []
    pool.bus.subscribe(TaskEvent, events.append)
    try:
        async with asyncio.timeout(60):
            await pool.run_until_idle()
    finally:
        pool.bus.unsubscribe(TaskEvent, events.append)
    return events


async def _run_one(
    pool: WorkerPool,
    make_task: MakeTask,
    sessions: async_sessionmaker[AsyncSession],
    processor: str,
) -> Task:
    """One task of ``processor``, run by ``pool`` until it is idle; the task as it ended."""
    task = await make_task(processor)
    async with asyncio.timeout(30):
        await pool.run_until_idle()
    return await reload(sessions, task.id)


async def test_a_task_runs_to_completion_with_its_files_and_result(
    pool: WorkerPool, make_task: MakeTask, sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:  # fmt: skip
    task = await make_task("writer", content=b"0123456789")
    events = await run_collecting_events(pool)
    done = await reload(sessions, task.id)
    assert (done.status, done.progress, done.stage, done.attempt) == ("completed", 100, "done", 1)
    assert done.result_url == f"/api/v1/tasks/{task.id}/files/out.txt"
    assert done.started_at is not None
    assert done.completed_at is not None
    async with sessions() as session:
        result = (await session.execute(select(TaskResult))).scalar_one()
        assert (result.summary, result.metrics, result.attempt) == ("10 bytes", {"bytes": 10}, 1)
        names = (
            await session.execute(select(FileStorage.name).order_by(FileStorage.name))
        ).scalars()
        assert list(names) == ["original.txt", "out.txt"]
        assert (await session.execute(select(func.count()).select_from(TaskQueue))).scalar() == 0
    assert (settings.upload_dir / "tasks" / task.id / "results" / "out.txt").exists()
    assert not (settings.upload_dir / "tasks" / task.id / "attempt-1.tmp").exists()
    mine = [e for e in events if e.task_id == task.id]
    assert next(e.status for e in mine) == "processing"
    assert mine[-1].status == "completed"
    assert mine[-1].progress == 100
    progress = [e.progress for e in mine]
    assert progress == sorted(progress)
    assert [e.seq for e in mine] == sorted({e.seq for e in mine})
    assert await log_messages(sessions, task.id) == [
        "Uploaded and queued",
        "Started attempt 1",
        "Completed",
    ]


async def test_noop_writes_no_files(
    pool: WorkerPool, make_task: MakeTask, sessions: async_sessionmaker[AsyncSession]
) -> None:
    done = await _run_one(pool, make_task, sessions, "noop")
    assert (done.status, done.progress, done.result_url) == ("completed", 100, None)
    async with sessions() as session:
        names = (await session.execute(select(FileStorage.name))).scalars().all()
    assert names == ["original.txt"]


async def test_a_processor_that_writes_no_files_gets_no_attempt_directory(
    pool: WorkerPool, make_task: MakeTask, sessions: async_sessionmaker[AsyncSession],
    settings: Settings, monkeypatch: Any,
) -> None:  # fmt: skip
    made: list[str] = []
    real = storage.empty_dir

    async def empty_dir(path: Path) -> None:
        made.append(path.parent.name)
        await real(path)

    monkeypatch.setattr(storage, "empty_dir", empty_dir)
    fileless, noop, writer = (
        await make_task("fileless", content=b"12345"),
        await make_task("noop"),
        await make_task("writer"),
    )
    events = await run_collecting_events(pool)
    assert made == [writer.id]  # the writer's directory only
    done = await reload(sessions, fileless.id)
    assert (done.status, done.progress, done.result_url) == ("completed", 100, None)
    progress = [e.progress for e in events if e.task_id == fileless.id]
    assert (progress[0], progress[-1]) == (0, 100)  # 50 too, unless the completion overtook it
    async with sessions() as session:
        summaries = (await session.execute(select(TaskResult.summary))).scalars().all()
    assert "5 bytes" in summaries
    for task in (fileless, noop, writer):
        assert (await reload(sessions, task.id)).status == "completed"
        assert not (settings.upload_dir / "tasks" / task.id / "attempt-1.tmp").exists()
    assert not pool._leftovers  # nothing for the sweep either


async def test_a_processor_that_returns_files_it_said_it_would_not_write_fails(
    pool: WorkerPool, make_task: MakeTask, sessions: async_sessionmaker[AsyncSession]
) -> None:
    done = await _run_one(pool, make_task, sessions, "liar")
    assert done.status == "failed"
    assert done.error_message == (
        "The processor returned result files although it declares it writes none."
    )
    async with sessions() as session:
        assert (await session.execute(select(func.count()).select_from(TaskResult))).scalar() == 0


async def test_a_processor_that_returns_at_once_runs_on_the_event_loop_thread(
    pool: WorkerPool, make_task: MakeTask, sessions: async_sessionmaker[AsyncSession]
) -> None:
    instant, writer = await make_task("instant"), await make_task("writer")
    events = await run_collecting_events(pool)
    async with sessions() as session:
        rows = await session.execute(select(TaskResult.task_id, TaskResult.summary))
        summaries = {row.task_id: row.summary for row in rows}
    assert summaries[instant.id] == threading.current_thread().name  # the loop's thread
    assert summaries[writer.id] == "10 bytes"  # the writer ran in a thread, as before
    done = await reload(sessions, instant.id)
    assert (done.status, done.progress) == ("completed", 100)
    progress = [e.progress for e in events if e.task_id == instant.id]
    assert (progress[0], progress[-1]) == (0, 100)


async def test_cpu_bound_processors_run_in_another_process(
    pool: WorkerPool, make_task: MakeTask, sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:  # fmt: skip
    import os

    task = await make_task("cpu-writer")
    async with asyncio.timeout(60):
        await pool.run_until_idle()
    assert (await reload(sessions, task.id)).status == "completed"
    text = (settings.upload_dir / "tasks" / task.id / "results" / "out.txt").read_text()
    assert f"pid {os.getpid()}" not in text
    # at a lower priority than the event loop's process
    assert text.endswith(f"at nice {min(19, os.nice(0) + runner.CHILD_NICENESS)}\n")


async def test_claims_follow_priority_then_age(
    make_task: MakeTask, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    low = await make_task(priority=1)
    high_old = await make_task(priority=9)
    mid = await make_task(priority=5)
    high_new = await make_task(priority=9)
    order = []
    for _ in range(4):
        claimed = await attempts.claim(sessions, settings, "w", 1)
        order.extend(c.task_id for c in claimed)
    assert order == [high_old.id, high_new.id, mid.id, low.id]
    assert await attempts.claim(sessions, settings, "w", 1) == []


async def test_concurrent_claimers_never_share_a_task(
    make_task: MakeTask, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    ids = {(await make_task()).id for _ in range(30)}

    async def claimer(name: str) -> list[str]:
        got: list[str] = []
        while True:
            claimed = await attempts.claim(sessions, settings, name, 3)
            if not claimed:
                return got
            got.extend(c.task_id for c in claimed)

    results = await asyncio.gather(*(claimer(f"w{i}") for i in range(6)))
    flat = [task_id for result in results for task_id in result]
    assert sorted(flat) == sorted(ids)
    assert len(set(flat)) == len(flat)


async def test_retryable_failures_back_off_then_fail(
    pool: WorkerPool, make_task: MakeTask, sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:  # fmt: skip
    failed = await _run_one(pool, make_task, sessions, "flaky")
    assert failed.status == "failed"
    assert failed.retry_count == settings.task_max_retries
    assert failed.attempt == settings.task_max_retries + 1
    attempts_made = settings.task_max_retries + 1
    assert failed.error_message == (
        f"The service it needs is unavailable. (gave up after {attempts_made} attempts)"
    )
    messages = await log_messages(sessions, failed.id)
    assert sum("Retrying in" in m for m in messages) == settings.task_max_retries
    assert messages[-1].startswith("Failed: ")


async def test_backoff_grows_exponentially_with_jitter(settings: Settings) -> None:
    settings.task_retry_backoff_seconds = 2
    for retry, ceiling in [(0, 2), (1, 4), (2, 8), (10, 300)]:
        delays = [attempts.RetryPolicy.of(settings).backoff(retry) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1


async def test_backoff_delays_the_next_claim(
    make_task: MakeTask, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    settings.task_retry_backoff_seconds = 60
    task = await make_task("flaky")
    [claimed] = await attempts.claim(sessions, settings, "w", 1)
    status = await attempts.fail(sessions, settings, claimed, "boom.", retryable=True)
    assert status == "pending"
    assert (await reload(sessions, task.id)).retry_count == 1
    assert await attempts.claim(sessions, settings, "w", 1) == []  # not before its backoff


async def test_permanent_failures_fail_at_once(
    pool: WorkerPool, make_task: MakeTask, sessions: async_sessionmaker[AsyncSession]
) -> None:
    task = await make_task("broken")
    async with asyncio.timeout(60):
        await pool.run_until_idle()
    failed = await reload(sessions, task.id)
    assert (failed.status, failed.retry_count, failed.attempt) == ("failed", 0, 1)
    assert failed.error_message == "The file cannot be decoded."


async def test_a_long_failure_message_is_kept_whole_and_sent_shortened(
    pool: WorkerPool, make_task: MakeTask, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # on PostgreSQL a NOTIFY payload over 8000 bytes would abort the failing transaction
    task = await make_task("rambling")
    events = await run_collecting_events(pool)
    failed = await reload(sessions, task.id)
    assert failed.status == "failed"
    assert failed.error_message is not None
    assert len(failed.error_message) > 20_000
    last = [e for e in events if e.task_id == task.id][-1]
    assert last.status == "failed"
    assert last.error_message is not None
    assert len(last.error_message) == MAX_ERROR_LENGTH
    assert failed.error_message.startswith(last.error_message[:-1])


async def test_timeouts_are_retried_then_fail(
    make_task: MakeTask, sessions: async_sessionmaker[AsyncSession], settings: Settings,
    monkeypatch: Any,
) -> None:  # fmt: skip
    monkeypatch.setenv("NTM_TEST_SLOW_SECONDS", "5")
    settings.task_timeout_seconds = 0.3
    settings.task_max_retries = 1
    pool = WorkerPool(settings, sessions, factory_bus(sessions), concurrency=1)
    failed = await _run_one(pool, make_task, sessions, "slow")
    assert failed.status == "failed"
    assert failed.error_message == "The attempt took longer than 0.3 s. (gave up after 2 attempts)"


async def test_cancelling_a_running_task_stops_its_attempt(
    make_task: MakeTask, sessions: async_sessionmaker[AsyncSession], settings: Settings,
    monkeypatch: Any,
) -> None:  # fmt: skip
    monkeypatch.setenv("NTM_TEST_SLOW_SECONDS", "20")
    pool = WorkerPool(settings, sessions, factory_bus(sessions), concurrency=1)
    await pool.start()
    try:
        task = await make_task("slow")
        async with asyncio.timeout(10):
            while (await reload(sessions, task.id)).progress < 5:
                await asyncio.sleep(0.05)
        async with sessions() as session:
            row = await session.get(type(task), task.id)
            assert row is not None
            await task_service.cancel(session, row)
            await session.commit()
        async with asyncio.timeout(5):
            while pool.running:
                await asyncio.sleep(0.02)
    finally:
        await pool.stop()
    cancelled = await reload(sessions, task.id)
    assert cancelled.status == "cancelled"
    assert not (settings.upload_dir / "tasks" / task.id / "attempt-1.tmp").exists()
    assert not (settings.upload_dir / "tasks" / task.id / "results").exists()


async def test_stopping_hands_running_tasks_back_without_a_retry(
    make_task: MakeTask, sessions: async_sessionmaker[AsyncSession], settings: Settings,
    monkeypatch: Any,
) -> None:  # fmt: skip
    monkeypatch.setenv("NTM_TEST_SLOW_SECONDS", "20")
    pool = WorkerPool(settings, sessions, factory_bus(sessions), concurrency=1)
    await pool.start()
    task = await make_task("slow")
    async with asyncio.timeout(10):
        while (await reload(sessions, task.id)).status != "processing":
            await asyncio.sleep(0.05)
    await pool.stop(grace=0.1)
    back = await reload(sessions, task.id)
    assert (back.status, back.retry_count, back.stage, back.progress) == ("pending", 0, "queued", 0)
    async with sessions() as session:
        queued = (await session.execute(select(TaskQueue))).scalar_one()
        assert (queued.worker_id, queued.locked_until) == (None, None)
        assert (await session.execute(select(func.count()).select_from(Worker))).scalar() == 0
    assert (await log_messages(sessions, task.id))[
        -1
    ] == "Handed back to the queue: the worker stopped"


async def test_stopping_during_a_committed_claim_hands_its_tasks_back(
    make_task: MakeTask, sessions: async_sessionmaker[AsyncSession], settings: Settings,
    monkeypatch: Any,
) -> None:  # fmt: skip
    """A stop that lands after a claim committed but before the claim call returned
    (the session still closing) must not strand the claimed task in ``processing``."""
    monkeypatch.setenv("NTM_TEST_SLOW_SECONDS", "20")
    committed = asyncio.Event()
    real_claim = attempts.claim

    async def claim_then_linger(*args: Any, **kwargs: Any) -> list[attempts.Claimed]:
        claimed = await real_claim(*args, **kwargs)
        if claimed:
            committed.set()
            await asyncio.sleep(0.3)  # committed, not yet returned to the pool
        return claimed

    monkeypatch.setattr(attempts, "claim", claim_then_linger)
    pool = WorkerPool(settings, sessions, factory_bus(sessions), concurrency=1)
    await pool.start()
    task = await make_task("slow")
    async with asyncio.timeout(10):
        await committed.wait()
    assert (await reload(sessions, task.id)).status == "processing"
    await pool.stop(grace=0.1)
    back = await reload(sessions, task.id)
    assert (back.status, back.retry_count, back.stage) == ("pending", 0, "queued")
    async with sessions() as session:
        queued = (await session.execute(select(TaskQueue))).scalar_one()
        assert (queued.worker_id, queued.locked_until) == (None, None)


async def test_workers_register_and_heartbeat(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    pool = WorkerPool(settings, sessions, factory_bus(sessions), concurrency=3)
    await pool.start()
    try:
        async with sessions() as session:
            worker = (await session.execute(select(Worker))).scalar_one()
            assert (worker.id, worker.concurrency) == (pool.worker_id, 3)
            first = worker.heartbeat_at
        await asyncio.sleep(settings.task_lease_seconds / 3 + 0.3)
        async with sessions() as session:
            assert (await session.execute(select(Worker.heartbeat_at))).scalar_one() > first
    finally:
        await pool.stop()
