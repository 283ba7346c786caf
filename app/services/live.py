"""Current task states for live clients (the first message of a subscription, resyncs)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.events.publish import TaskEvent
from app.models import Task, TaskStatus, User
from app.services.access import get_owned, scope_to_owner

WILDCARD_INITIAL_LIMIT = 500
"""A ``*`` subscription starts with the state of at most this many active tasks."""

_ACTIVE = (TaskStatus.PENDING, TaskStatus.PROCESSING)


async def task_state(session: AsyncSession, user: User, task_id: str) -> TaskEvent:
    """The current state of a task ``user`` may see (NotFound otherwise)."""
    return TaskEvent.from_task(await get_owned(session, Task, task_id, user))


async def active_task_states(
    session: AsyncSession, user: User, limit: int = WILDCARD_INITIAL_LIMIT
) -> list[TaskEvent]:
    """The states of ``user``'s pending and processing tasks, oldest first."""
    query = scope_to_owner(select(Task).where(Task.status.in_(_ACTIVE)), Task, user)
    rows = await session.scalars(query.order_by(Task.uploaded_at, Task.id).limit(limit))
    return [TaskEvent.from_task(task) for task in rows]


async def states_to_resync(
    session: AsyncSession, task_ids: Collection[str], changed_since: datetime | None
) -> list[TaskEvent]:
    """States to re-send after missed notifications: followed tasks, and tasks changed since.

    Routing (who may see what) is left to the hub.
    """
    conditions: list[ColumnElement[bool]] = []
    if task_ids:
        conditions.append(Task.id.in_(list(task_ids)))
    if changed_since is not None:
        conditions.append(Task.updated_at >= changed_since)
    if not conditions:
        return []
    rows = await session.scalars(select(Task).where(or_(*conditions)))
    return [TaskEvent.from_task(task) for task in rows]
