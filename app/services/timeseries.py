"""The last hour minute by minute: queue depth, completions, failures, latency (read-only).

Reconstructed from the tasks' own timestamps, so every process of the service
answers the same whatever ran the work, and nothing is sampled or stored:

- a task *waits* from its arrival (its upload; for a task pending now, the time
  it was queued, so a retried task is counted from its retry) until it leaves
  the queue (its latest start; for a task cancelled while waiting, its
  cancellation). The depth at the end of a minute is the number waiting then;
  the last point is exactly the number pending now. A task retried after a
  failure is counted as waiting from its upload to its latest start, its earlier
  attempts included: the row does not keep when those ran.
- *completed* and *failed* count the tasks that reached that status in that
  minute (``completed_at``); a failure retried since is no longer one.
- latency is upload → completion of the tasks completed in that minute, as
  nearest-rank percentiles (the same rule on SQLite and PostgreSQL: the value at
  rank ⌈p·n⌉ of the n sorted durations).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, case, cast, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Task, TaskQueue, TaskStatus, User
from app.models.base import utcnow
from app.services.access import owner_filter

STEP_SECONDS = 60
PERCENTILES = (50, 95)


def _epoch(column: Any, dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.extract("epoch", column)
    return cast(func.strftime("%s", column), Integer)


def _minute(column: Any, start: datetime, dialect: str) -> ColumnElement[int]:
    """The index of the minute of ``column`` counted from ``start`` (0 = the first)."""
    offset = _epoch(column, dialect) - literal(int(start.timestamp()))
    if dialect == "postgresql":
        return cast(func.floor(offset / STEP_SECONDS), Integer)
    return offset // STEP_SECONDS


def _seconds_between(earlier: Any, later: Any, dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _rank(count: ColumnElement[int], percent: int) -> ColumnElement[int]:
    """⌈percent/100 · count⌉ in integer arithmetic (SQLite has no ceil by default)."""
    return (count * percent + 99) // 100


async def _waiting_changes(
    session: AsyncSession, owner_id: str | None, start: datetime, dialect: str
) -> tuple[int, dict[int, int]]:
    """(tasks waiting at ``start``, the change in waiting tasks per minute after it)."""
    pending = Task.status == TaskStatus.PENDING
    arrival = case(
        (pending, func.coalesce(TaskQueue.enqueued_at, Task.uploaded_at)), else_=Task.uploaded_at
    )
    leave = case(
        (pending, None), else_=func.coalesce(Task.started_at, Task.completed_at, Task.updated_at)
    )
    query = select(arrival.label("arrival"), leave.label("leave")).outerjoin(
        TaskQueue, TaskQueue.task_id == Task.id
    )
    if owner_id is not None:
        query = query.where(Task.owner_id == owner_id)
    times = query.subquery()
    before = (
        await session.execute(
            select(func.count()).where(
                times.c.arrival < start, or_(times.c.leave.is_(None), times.c.leave >= start)
            )
        )
    ).scalar_one()
    changes: dict[int, int] = {}
    for column, sign in ((times.c.arrival, 1), (times.c.leave, -1)):
        minute = _minute(column, start, dialect)
        rows = await session.execute(
            select(minute, func.count()).where(column >= start).group_by(minute)
        )
        for index, count in rows.all():
            changes[int(index)] = changes.get(int(index), 0) + sign * int(count)
    return int(before), changes


async def _finished_per_minute(
    session: AsyncSession, owner_id: str | None, start: datetime, dialect: str
) -> dict[tuple[int, str], int]:
    minute = _minute(Task.completed_at, start, dialect)
    query = (
        select(minute, Task.status, func.count())
        .where(
            Task.status.in_((TaskStatus.COMPLETED, TaskStatus.FAILED)),
            Task.completed_at >= start,
        )
        .group_by(minute, Task.status)
    )
    if owner_id is not None:
        query = query.where(Task.owner_id == owner_id)
    return {
        (int(index), str(status)): int(count)
        for index, status, count in (await session.execute(query)).all()
    }


async def _latency_percentiles(
    session: AsyncSession, owner_id: str | None, start: datetime, dialect: str, *, per_minute: bool
) -> dict[int, dict[int, float]]:
    """{minute (or -1 for the whole window): {percent: seconds}} of upload → completion."""
    duration = _seconds_between(Task.uploaded_at, Task.completed_at, dialect)
    minute = _minute(Task.completed_at, start, dialect) if per_minute else literal(-1)
    partition = minute if per_minute else None
    conditions = [Task.status == TaskStatus.COMPLETED, Task.completed_at >= start]
    if owner_id is not None:
        conditions.append(Task.owner_id == owner_id)
    ranked = (
        select(
            minute.label("minute"),
            duration.label("seconds"),
            func.row_number().over(partition_by=partition, order_by=duration).label("rank"),
            func.count().over(partition_by=partition).label("n"),
        )
        .where(*conditions)
        .subquery()
    )
    wanted = [ranked.c.rank == _rank(ranked.c.n, p) for p in PERCENTILES]
    rows = await session.execute(
        select(ranked.c.minute, ranked.c.rank, ranked.c.n, ranked.c.seconds).where(or_(*wanted))
    )
    found: dict[int, dict[int, float]] = {}
    for index, rank, n, seconds in rows.all():
        for percent in PERCENTILES:
            if rank == (n * percent + 99) // 100:
                found.setdefault(int(index), {})[percent] = round(float(seconds), 3)
    return found


async def series(session: AsyncSession, user: User, *, minutes: int) -> dict[str, Any]:
    """The caller's last ``minutes`` (every user's for an admin), one point per minute.

    The last point is the minute under way, stamped now.
    """
    now = utcnow()
    current = now.replace(second=0, microsecond=0)
    start = current - timedelta(minutes=minutes - 1)
    owner_id = owner_filter(user)
    dialect = session.get_bind().dialect.name

    waiting, changes = await _waiting_changes(session, owner_id, start, dialect)
    finished = await _finished_per_minute(session, owner_id, start, dialect)
    latency = await _latency_percentiles(session, owner_id, start, dialect, per_minute=True)
    overall = await _latency_percentiles(session, owner_id, start, dialect, per_minute=False)

    points = []
    for index in range(minutes):
        waiting += changes.get(index, 0)
        at = min(start + timedelta(seconds=STEP_SECONDS * (index + 1)), now)
        percentiles = latency.get(index, {})
        points.append(
            {
                "at": at,
                "queue_depth": max(waiting, 0),
                "completed": finished.get((index, TaskStatus.COMPLETED.value), 0),
                "failed": finished.get((index, TaskStatus.FAILED.value), 0),
                "p50_seconds": percentiles.get(50),
                "p95_seconds": percentiles.get(95),
            }
        )
    whole = overall.get(-1, {})
    return {
        "start": start,
        "end": now,
        "step_seconds": STEP_SECONDS,
        "scope": "all" if owner_id is None else "own",
        "points": points,
        "p50_seconds": whole.get(50),
        "p95_seconds": whole.get(95),
    }
