"""Stop means stop: timeouts, cancels and lost leases kill an uncooperative processor's
process, and processors that crash, exit or allocate without end fail only their task."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.database import factory_bus
from app.models import TaskQueue
from app.models.base import utcnow
from app.queue import attempts, maintenance, runner
from app.queue.pool import WorkerPool
from app.services import tasks as task_service
from tests.queue.conftest import MakeTask, log_messages, reload


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def wait_gone(pid: int, within: float) -> float:
    """Seconds until ``pid`` is gone; fails after ``within``."""
    started = time.monotonic()
    async with asyncio.timeout(within):
        while alive(pid):
            await asyncio.sleep(0.02)
    return time.monotonic() - started


async def spin_pid(settings: Settings, task_id: str, attempt: int = 1) -> int:
    """The PID the spinning processor wrote into its attempt directory."""
    path = settings.upload_dir / "tasks" / task_id / f"attempt-{attempt}.tmp" / "spin.pid"
    async with asyncio.timeout(30):
        while not path.exists():
            await asyncio.sleep(0.02)
    return int(path.read_text())


async def wait_status(
    sessions: async_sessionmaker[AsyncSession], task_id: str, status: str, within: float = 30
) -> Any:
    async with asyncio.timeout(within):
        while (task := await reload(sessions, task_id)).status != status:
            await asyncio.sleep(0.02)
    return task


async def test_a_timed_out_spinning_processor_is_killed_and_its_slot_serves_the_next_task(
    make_task: MakeTask, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    await asyncio.wrap_future(runner.start_forkserver())  # its first start is slow
    settings.task_timeout_seconds = 1.0
    settings.task_max_retries = 0
    pool = WorkerPool(settings, sessions, factory_bus(sessions), concurrency=1)
    await pool.start()
    try:
        spinning = await make_task("spin")
        pid = await spin_pid(settings, spinning.id)
        waiting = await make_task("cpu-writer")
        failed = await wait_status(sessions, spinning.id, "failed")
        await wait_gone(pid, within=2.5)
        await wait_status(sessions, waiting.id, "completed")
    finally:
        await pool.stop()
    assert failed.error_message == "The attempt took longer than 1 s. (gave up after 1 attempt)"
    assert not (settings.upload_dir / "tasks" / spinning.id / "attempt-1.tmp").exists()


async def test_cancelling_a_spinning_processor_kills_its_process(
    make_task: MakeTask, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    pool = WorkerPool(settings, sessions, factory_bus(sessions), concurrency=1)
    await pool.start()
    try:
        spinning = await make_task("spin")
        pid = await spin_pid(settings, spinning.id)
        async with sessions() as session:
            row = await session.get(type(spinning), spinning.id)
            assert row is not None
            await task_service.cancel(session, row)
            await session.commit()
        await wait_gone(pid, within=2.5)
        after = await make_task("cpu-writer")
        await wait_status(sessions, after.id, "completed")
    finally:
        await pool.stop()
    assert (await reload(sessions, spinning.id)).status == "cancelled"
    assert not (settings.upload_dir / "tasks" / spinning.id / "attempt-1.tmp").exists()


async def test_an_attempt_that_lost_its_lease_is_killed_by_the_next_heartbeat(
    make_task: MakeTask, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    settings.task_retry_backoff_seconds = 60  # the task waits; the attempt must not run on
    pool = WorkerPool(settings, sessions, factory_bus(sessions), concurrency=1)
    try:
        spinning = await make_task("spin")
        await pool._claim_free_slots()
        pid = await spin_pid(settings, spinning.id)
        async with sessions() as session, session.begin():  # the lease ran out (a long pause)
            await session.execute(
                update(TaskQueue).values(locked_until=utcnow() - timedelta(seconds=1))
            )
            reclaimed, _ = await maintenance.reclaim_expired(session, settings)
        assert reclaimed == 1
        await pool.heartbeat()
        await wait_gone(pid, within=2.5)
        async with asyncio.timeout(5):
            while pool.running:
                await asyncio.sleep(0.02)
    finally:
        await pool.stop(grace=0)
    back = await reload(sessions, spinning.id)
    assert (back.status, back.retry_count) == ("pending", 1)
    messages = await log_messages(sessions, spinning.id)
    assert "retry 1 of 3 in" in messages[-1]  # retry_count became 1


async def test_stopping_the_pool_kills_a_spinning_processor(
    make_task: MakeTask, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    pool = WorkerPool(settings, sessions, factory_bus(sessions), concurrency=1)
    await pool.start()
    spinning = await make_task("spin")
    pid = await spin_pid(settings, spinning.id)
    started = time.monotonic()
    await pool.stop(grace=0.2)
    assert time.monotonic() - started < 10
    await wait_gone(pid, within=2.5)
    back = await reload(sessions, spinning.id)
    assert (back.status, back.retry_count) == ("pending", 0)


async def test_threads_that_ignore_their_stop_hold_neither_a_slot_nor_a_shared_thread(
    make_task: MakeTask, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    settings.task_timeout_seconds = 0.3
    settings.task_max_retries = 0
    pool = WorkerPool(settings, sessions, factory_bus(sessions), concurrency=1)
    hanging = [await make_task("hang", priority=9) for _ in range(3)]
    after = await make_task("writer", priority=1)
    try:
        async with asyncio.timeout(30):
            await pool.run_until_idle()
    finally:
        pool._runner.close()
    for task in hanging:
        assert (await reload(sessions, task.id)).status == "failed"
    assert (await reload(sessions, after.id)).status == "completed"
    # the abandoned threads are the processors' own, not anyio's shared ones (file I/O)
    assert anyio.to_thread.current_default_thread_limiter().borrowed_tokens == 0


async def test_a_processor_that_allocates_without_bound_fails_with_a_reason(
    make_task: MakeTask, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    settings.processor_memory_limit_mb = 400
    pool = WorkerPool(settings, sessions, factory_bus(sessions), concurrency=1)
    hog = await make_task("hog")
    after = await make_task("cpu-writer", priority=1)
    try:
        async with asyncio.timeout(60):
            await pool.run_until_idle()
    finally:
        pool._runner.close()
    failed = await reload(sessions, hog.id)
    assert (failed.status, failed.retry_count) == ("failed", 0)  # the same input would again
    assert failed.error_message == (
        "The processor needed more memory than a worker allows it "
        "(PROCESSOR_MEMORY_LIMIT_MB = 400)."
    )
    assert (await reload(sessions, after.id)).status == "completed"


async def test_a_processor_that_exits_its_process_is_retried_then_fails(
    make_task: MakeTask, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    settings.task_max_retries = 1
    pool = WorkerPool(settings, sessions, factory_bus(sessions), concurrency=1)
    exiting = await make_task("exiter")
    after = await make_task("cpu-writer", priority=1)
    try:
        async with asyncio.timeout(60):
            await pool.run_until_idle()
    finally:
        pool._runner.close()
    failed = await reload(sessions, exiting.id)
    assert (failed.status, failed.retry_count) == ("failed", 1)
    assert failed.error_message == (
        "The processor's process exited unexpectedly (exit status 3). (gave up after 2 attempts)"
    )
    assert (await reload(sessions, after.id)).status == "completed"


async def test_a_processor_that_raises_fails_with_a_reason_and_no_internals(
    make_task: MakeTask, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    settings.task_max_retries = 0
    pool = WorkerPool(settings, sessions, factory_bus(sessions), concurrency=1)
    crashing = await make_task("crasher")
    try:
        async with asyncio.timeout(60):
            await pool.run_until_idle()
    finally:
        pool._runner.close()
    failed = await reload(sessions, crashing.id)
    assert failed.status == "failed"
    assert failed.error_message == (
        "The processor stopped with an unexpected error (ValueError). (gave up after 1 attempt)"
    )


async def test_start_up_sweeps_attempt_directories_that_are_no_longer_current(
    make_task: MakeTask, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    finished = await make_task("writer")
    running = await make_task("writer")
    # ``finished`` ran attempt 1 on a worker that died before cleaning up, then was
    # completed by attempt 2; ``running`` is processing attempt 1 on another worker now
    [first] = await attempts.claim(sessions, settings, "gone", 1)
    assert first.task_id == finished.id
    await attempts.hand_back(sessions, first)
    [second] = await attempts.claim(sessions, settings, "gone", 1)
    [current] = await attempts.claim(sessions, settings, "elsewhere", 1)
    assert (second.task_id, second.attempt, current.task_id) == (finished.id, 2, running.id)
    await attempts.fail(sessions, settings, second, "stopped.", retryable=False)
    tasks_dir = settings.upload_dir / "tasks"
    stale = [tasks_dir / finished.id / "attempt-1.tmp", tasks_dir / finished.id / "attempt-2.tmp"]
    live = tasks_dir / running.id / "attempt-1.tmp"
    unknown = tasks_dir / "no-such-task" / "attempt-4.tmp"
    for directory in [*stale, live, unknown]:
        directory.mkdir(parents=True)
        (directory / "partial.json").write_text("{")
    pool = WorkerPool(settings, sessions, factory_bus(sessions), concurrency=1)
    await pool.start()
    try:
        async with asyncio.timeout(10):
            while any(d.exists() for d in [*stale, unknown]):
                await asyncio.sleep(0.02)
    finally:
        await pool.stop()
    assert live.exists()
    [upload] = (tasks_dir / finished.id).iterdir()  # the upload itself stays
    assert upload.name.startswith("upload-")
