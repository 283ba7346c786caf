"""The worker processes sharing the queue, and what each is running (read-only)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.models import Task, TaskQueue, TaskStatus, User, Worker
from app.models.base import utcnow


async def list_workers(session: AsyncSession, settings: Settings) -> list[dict[str, Any]]:
    """Every registered worker process, newest heartbeat first, with its running tasks.

    A worker is ``alive`` while its heartbeat is younger than two leases (the rule
    of ``/health`` and the statistics); maintenance forgets it after three. Its
    tasks are the queue rows it holds whose task is still processing.
    """
    workers = (
        (await session.execute(select(Worker).order_by(Worker.heartbeat_at.desc(), Worker.id)))
        .scalars()
        .all()
    )
    running = await session.execute(
        select(
            TaskQueue.worker_id,
            Task.id,
            Task.file_name,
            User.email,
            Task.processor,
            Task.progress,
            Task.stage,
            Task.started_at,
        )
        .join(Task, Task.id == TaskQueue.task_id)
        .join(User, User.id == Task.owner_id)
        .where(TaskQueue.worker_id.is_not(None), Task.status == TaskStatus.PROCESSING)
        .order_by(Task.started_at, Task.id)
    )
    by_worker: dict[str, list[dict[str, Any]]] = {}
    for worker_id, task_id, name, email, processor, progress, stage, started in running:
        by_worker.setdefault(str(worker_id), []).append(
            {
                "id": task_id,
                "file_name": name,
                "owner_email": email,
                "processor": processor,
                "progress": progress,
                "stage": stage,
                "started_at": started,
            }
        )
    alive_since = utcnow() - timedelta(seconds=2 * settings.task_lease_seconds)
    return [
        {
            "id": worker.id,
            "hostname": worker.hostname,
            "pid": worker.pid,
            "concurrency": worker.concurrency,
            "started_at": worker.started_at,
            "heartbeat_at": worker.heartbeat_at,
            "alive": worker.heartbeat_at >= alive_since,
            "running": by_worker.get(worker.id, []),
        }
        for worker in workers
    ]
