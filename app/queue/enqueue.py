"""Putting tasks into the queue and taking them out, inside the caller's transaction.

Workers are woken when the transaction commits: in this process through
``wakeup`` (an asyncio event per pool), and on PostgreSQL through
``NOTIFY ntm_queue`` sent in the same transaction, so worker processes
elsewhere wake at once.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import delete, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.database import on_commit
from app.models import Task, TaskQueue
from app.models.base import utcnow

QUEUE_CHANNEL = "ntm_queue"
_waiters: set[asyncio.Event] = set()


def register_waiter(wake: asyncio.Event) -> None:
    """A pool's wake-up event, set whenever a transaction that enqueued commits."""
    _waiters.add(wake)


def unregister_waiter(wake: asyncio.Event) -> None:
    _waiters.discard(wake)


def wake_local_workers() -> None:
    for wake in list(_waiters):
        wake.set()


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
    on_commit(session, wake_local_workers)
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": QUEUE_CHANNEL})


async def dequeue(session: AsyncSession, task_id: str) -> None:
    """Remove a task's queue row (cancelled or deleted while pending)."""
    await session.execute(delete(TaskQueue).where(TaskQueue.task_id == task_id))


async def set_priority(session: AsyncSession, task_id: str, priority: int) -> None:
    await session.execute(
        update(TaskQueue).where(TaskQueue.task_id == task_id).values(priority=priority)
    )
