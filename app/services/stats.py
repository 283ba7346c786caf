"""Aggregates over tasks, computed in SQL."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.events.connections import websocket_connections
from app.metrics import ACTIVE_WORKERS, QUEUE_DEPTH, TASKS_TOTAL
from app.models import Task, TaskStatus, User
from app.models.base import utcnow
from app.services.access import owner_filter
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


def _duration_seconds(dialect: str) -> Any:
    if dialect == "postgresql":
        return func.extract("epoch", Task.completed_at - Task.started_at)
    return (func.julianday(Task.completed_at) - func.julianday(Task.started_at)) * 86400.0


async def statistics(session: AsyncSession, settings: Settings, user: User) -> dict[str, Any]:
    """The caller's task statistics (every task for admins), aggregated in SQL."""
    owner_id = owner_filter(user)
    by_status = await count_by_status(session, owner_id)
    dialect = session.get_bind().dialect.name
    duration = _duration_seconds(dialect)
    finished = [Task.status == TaskStatus.COMPLETED, Task.started_at.is_not(None)]
    if owner_id is not None:
        finished.append(Task.owner_id == owner_id)

    average = (await session.execute(select(func.avg(duration)).where(*finished))).scalar()
    p95: float | None
    if dialect == "postgresql":
        p95 = (
            await session.execute(
                select(func.percentile_cont(0.95).within_group(duration)).where(*finished)
            )
        ).scalar()
    else:
        p95 = await _p95_by_offset(session, duration, finished, by_status[TaskStatus.COMPLETED])

    hour_ago = utcnow() - timedelta(hours=1)
    recent = (
        select(func.count())
        .select_from(Task)
        .where(Task.status == TaskStatus.COMPLETED, Task.completed_at >= hour_ago)
    )
    if owner_id is not None:
        recent = recent.where(Task.owner_id == owner_id)
    completed_last_hour = int((await session.execute(recent)).scalar_one())
    processes, _ = await count_active_workers(session, settings)

    completed, failed = by_status[TaskStatus.COMPLETED], by_status[TaskStatus.FAILED]
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "success_rate": round(completed / (completed + failed), 4) if completed + failed else 0.0,
        "avg_processing_seconds": None if average is None else round(float(average), 3),
        "p95_processing_seconds": None if p95 is None else round(float(p95), 3),
        "queue_depth": by_status[TaskStatus.PENDING],
        "active_workers": processes,
        "websocket_connections": websocket_connections(),
        "completed_last_hour": completed_last_hour,
    }


async def _p95_by_offset(
    session: AsyncSession, duration: Any, where: list[Any], completed: int
) -> float | None:
    """Nearest-rank 95th percentile where the database has no percentile function."""
    if completed == 0:
        return None
    count = int(
        (await session.execute(select(func.count()).select_from(Task).where(*where))).scalar_one()
    )
    if count == 0:
        return None
    rank = max(math.ceil(0.95 * count) - 1, 0)
    value = (
        await session.execute(
            select(duration).where(*where).order_by(duration).offset(rank).limit(1)
        )
    ).scalar()
    return None if value is None else float(value)
