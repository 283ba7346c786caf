"""Aggregates over tasks, computed in SQL."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.metrics import ACTIVE_WORKERS, QUEUE_DEPTH, TASKS_TOTAL
from app.models import Task, TaskStatus
from app.services.health import count_active_workers


async def count_by_status(session: AsyncSession, owner_id: str | None = None) -> dict[str, int]:
    """Tasks per status, zeros included; every owner's when ``owner_id`` is None."""
    query = select(Task.status, func.count()).group_by(Task.status)
    if owner_id is not None:
        query = query.where(Task.owner_id == owner_id)
    counts = {status.value: 0 for status in TaskStatus}
    for status, count in (await session.execute(query)).all():
        counts[status] = int(count)
    return counts


async def refresh_gauges(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    """Set the database-derived gauges before a scrape."""
    async with sessions() as session:
        counts = await count_by_status(session)
        processes, _ = await count_active_workers(session, settings)
    for status, count in counts.items():
        TASKS_TOTAL.labels(status=status).set(count)
    QUEUE_DEPTH.set(counts[TaskStatus.PENDING])
    ACTIVE_WORKERS.set(processes)
