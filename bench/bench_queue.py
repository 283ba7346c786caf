"""Queue benchmark: drain N noop tasks with one worker process, and enqueue→start latency.

    .venv/bin/python bench/bench_queue.py            # 5,000 tasks, concurrency 10, PostgreSQL
    .venv/bin/python bench/bench_queue.py --tasks 500 --latency 50   # the quick smoke run

It creates a scratch PostgreSQL database (``--admin-url``), migrates it, bulk-
inserts the tasks, starts ``python -m app.worker`` and measures:
- throughput: tasks completed per second from worker start to an empty queue;
- latency: tasks enqueued one at a time on an idle pool, ``started_at - uploaded_at``
  (the task row is stamped just before the enqueueing transaction commits; both
  stamps come from this machine's clock), p50/p95/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, create_owner, scratch_postgres, task_row
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.database import create_engine_for, create_session_factory
from app.events.bus import EventBus
from app.models import Task, TaskQueue
from app.models.base import utcnow
from app.queue.enqueue import enqueue


async def enqueue_bulk(sessions: async_sessionmaker[AsyncSession], owner: str, count: int) -> None:
    async with sessions() as session, session.begin():
        rows = [task_row(owner) for _ in range(count)]
        await session.execute(insert(Task), rows)
        now = utcnow()
        queue_rows = [
            {"task_id": r["id"], "priority": 5, "enqueued_at": now, "available_at": now,
             "attempt": 0}
            for r in rows
        ]  # fmt: skip
        await session.execute(insert(TaskQueue), queue_rows)


async def drain(
    sessions: async_sessionmaker[AsyncSession], env: dict[str, str], count: int, concurrency: int
) -> subprocess.Popen[bytes]:
    """Start the worker process; print the drain rate once the queue is empty."""
    started = time.perf_counter()
    worker = subprocess.Popen(  # noqa: ASYNC220 - the benchmark drives a child process
        [sys.executable, "-m", "app.worker"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    while True:
        async with sessions() as session:
            left = (await session.execute(select(func.count()).select_from(TaskQueue))).scalar()
        if left == 0:
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    print(f"throughput: {count} noop tasks in {elapsed:.2f} s = "
          f"{count / elapsed:.0f} tasks/s (1 worker process, concurrency "
          f"{concurrency}, includes worker start-up)")  # fmt: skip
    return worker


async def latency(sessions: async_sessionmaker[AsyncSession], owner: str, count: int) -> None:
    """Enqueue tasks one at a time on the idle pool; print enqueue->start percentiles."""
    latencies = []
    for _ in range(count):
        async with sessions() as session, session.begin():
            task = Task(**task_row(owner))
            session.add(task)
            await session.flush()
            await enqueue(session, task)
        task_id = task.id
        while True:
            async with sessions() as session:
                row = (
                    await session.execute(
                        select(Task.started_at, Task.uploaded_at).where(Task.id == task_id)
                    )
                ).one()
            if row.started_at is not None:
                latencies.append((row.started_at - row.uploaded_at).total_seconds() * 1000)
                break
            await asyncio.sleep(0.002)
        await asyncio.sleep(0.02)
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    print(f"enqueue->start latency over {len(latencies)} tasks: p50 {q[49]:.1f} ms, "
          f"p95 {q[94]:.1f} ms, p99 {q[98]:.1f} ms")  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--latency", type=int, default=200, help="tasks enqueued one by one")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    upload_dir = Path(tempfile.mkdtemp(prefix="ntm-bench-"))
    async with scratch_postgres(args.admin_url) as database_url:
        settings = Settings(_env_file=None, database_url=database_url, upload_dir=upload_dir)  # type: ignore[call-arg]
        owner = (await create_owner(settings)).id
        engine = create_engine_for(settings)
        sessions = create_session_factory(engine, EventBus())
        worker = None
        try:
            await enqueue_bulk(sessions, owner, args.tasks)
            env = {**os.environ, "DATABASE_URL": database_url, "UPLOAD_DIR": str(upload_dir),
                   "WORKER_CONCURRENCY": str(args.concurrency), "LOG_LEVEL": "WARNING",
                   "LOG_FORMAT": "json"}  # fmt: skip
            worker = await drain(sessions, env, args.tasks, args.concurrency)
            await latency(sessions, owner, args.latency)
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(timeout=30)
            await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
