"""Putting tasks into the queue and taking them out, inside the caller's transaction.

Workers are woken when the transaction commits: in this process by a
``TaskPending`` event on the event bus (``app.events.bus``), and on
PostgreSQL through ``NOTIFY ntm_queue`` sent in the same transaction, so
worker processes elsewhere wake at once (their listener publishes the same
event on their bus).
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.database import bus_of, on_commit
from app.events.bus import TASK_PENDING
from app.events.publish import QUEUE_CHANNEL
from app.models import Task, TaskQueue
from app.models.base import utcnow
from app.queue.attempts import DEQUEUE


async def enqueue(
    session: AsyncSession, task: Task, *, available_at: datetime | None = None
) -> TaskQueue:
    """Add ``task`` to the queue (the caller commits). Workers wake on commit."""
    now = utcnow()
    row = TaskQueue(
        task_id=task.id,
        priority=task.priority,
        enqueued_at=now,
        available_at=available_at or now,
    )
    session.add(row)
    await _notify_on_commit(session)
    return row


async def _notify_on_commit(session: AsyncSession) -> None:
    on_commit(session, partial(bus_of(session).publish, TASK_PENDING))
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": QUEUE_CHANNEL})


async def dequeue(session: AsyncSession, task_id: str) -> None:
    """Remove a task's queue row (cancelled or deleted while pending)."""
    await session.execute(DEQUEUE, {"b_task_id": task_id})


async def set_priority(session: AsyncSession, task_id: str, priority: int) -> None:
    await session.execute(
        update(TaskQueue).where(TaskQueue.task_id == task_id).values(priority=priority)
    )
