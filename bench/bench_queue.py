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
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alembic.config import Config  # noqa: E402

from alembic import command  # noqa: E402
from app.config import Settings  # noqa: E402
from app.database import create_engine_for, create_session_factory  # noqa: E402
from app.models import Task, TaskQueue, TaskStatus, User  # noqa: E402
from app.models.base import new_id, utcnow  # noqa: E402
from app.queue.enqueue import enqueue  # noqa: E402


async def admin(url: str, statement: str) -> None:
    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host, port=parsed.port or 5432, user=parsed.username, database=parsed.database
    )
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def task_row(owner: str) -> dict[str, object]:
    return {
        "id": new_id(), "owner_id": owner, "file_name": "bench.txt", "file_size": 1,
        "file_type": "text/plain", "checksum": "sha256:0", "status": TaskStatus.PENDING,
        "progress": 0, "stage": "queued", "priority": 5, "processor": "noop", "retry_count": 0,
        "max_retries": 3, "attempt": 0, "event_seq": 0, "uploaded_at": utcnow(),
        "updated_at": utcnow(),
    }  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--latency", type=int, default=200, help="tasks enqueued one by one")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    name = f"ntm_bench_{uuid.uuid4().hex[:8]}"
    await admin(args.admin_url, f'CREATE DATABASE "{name}"')
    url = make_url(args.admin_url).set(drivername="postgresql+asyncpg", database=name)
    database_url = url.render_as_string(hide_password=False)
    upload_dir = Path(tempfile.mkdtemp(prefix="ntm-bench-"))
    worker = None
    try:
        cfg = Config(str(ROOT / "alembic.ini"))
        cfg.attributes.update(database_url=database_url, configure_logger=False)
        await asyncio.to_thread(command.upgrade, cfg, "head")
        settings = Settings(_env_file=None, database_url=database_url, upload_dir=upload_dir)  # type: ignore[call-arg]
        engine = create_engine_for(settings)
        sessions = create_session_factory(engine)
        async with sessions() as session, session.begin():
            owner = User(email="bench@example.com", password_hash="unusable", role="user")  # noqa: S106
            session.add(owner)
            await session.flush()
            rows = [task_row(owner.id) for _ in range(args.tasks)]
            await session.execute(insert(Task), rows)
            now = utcnow()
            await session.execute(
                insert(TaskQueue),
                [
                    {
                        "task_id": r["id"],
                        "priority": 5,
                        "enqueued_at": now,
                        "available_at": now,
                        "attempt": 0,
                    }
                    for r in rows
                ],
            )
        env = {**os.environ, "DATABASE_URL": database_url, "UPLOAD_DIR": str(upload_dir),
               "WORKER_CONCURRENCY": str(args.concurrency), "LOG_LEVEL": "WARNING",
               "LOG_FORMAT": "json"}  # fmt: skip
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
        print(f"throughput: {args.tasks} noop tasks in {elapsed:.2f} s = "
              f"{args.tasks / elapsed:.0f} tasks/s (1 worker process, concurrency "
              f"{args.concurrency}, includes worker start-up)")  # fmt: skip

        latencies = []
        for _ in range(args.latency):
            async with sessions() as session, session.begin():
                task = Task(**task_row(owner.id))
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
        await engine.dispose()
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        await admin(args.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
