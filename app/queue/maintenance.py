"""Worker registration and heartbeats, and the periodic upkeep of the queue.

Upkeep (``run_maintenance``) runs in every pool; on PostgreSQL one process at
a time wins it through a transaction-level advisory lock. It reclaims tasks
whose lease ran out (their worker died), deletes files past their
``expires_at`` (rows keep their metadata) and forgets dead workers.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import anyio
from sqlalchemy import delete, exists, func, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.log import get_logger
from app.models import FileStorage, TaskStatus, Worker
from app.models.base import utcnow
from app.queue.attempts import (
    DEQUEUE,
    QUEUE,
    TASKS,
    RetryPolicy,
    fail_for_good,
    retry_later,
)
from app.services import storage

log = get_logger(__name__)
MAINTENANCE_LOCK = 0x6E746D01  # any constant shared by every process of the service


@dataclass(frozen=True, slots=True)
class UpkeepReport:
    reclaimed: int = 0
    failed: int = 0
    files_deleted: int = 0
    workers_removed: int = 0
    ran: bool = True


async def register_worker(
    sessions: async_sessionmaker[AsyncSession], worker_id: str, concurrency: int
) -> None:
    async with sessions() as session, session.begin():
        session.add(
            Worker(
                id=worker_id,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                concurrency=concurrency,
                heartbeat_at=utcnow(),
            )
        )


async def unregister_worker(sessions: async_sessionmaker[AsyncSession], worker_id: str) -> None:
    async with sessions() as session, session.begin():
        await session.execute(delete(Worker).where(Worker.id == worker_id))


async def heartbeat(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    worker_id: str,
    concurrency: int,
    running: list[tuple[str, int]],
) -> set[tuple[str, int]]:
    """Renew this worker's leases; the running ``(task id, attempt)`` pairs it no longer owns.

    The renewal is one fenced UPDATE: a lease is renewed only while the task is
    still ``processing`` under that very attempt and claimed by this worker, and
    the rows it returns are the attempts still owned. Any other attempt was fenced
    out (cancelled, reclaimed, finished meanwhile): the caller decides what that
    means for an attempt that is finishing on its own.
    """
    now = utcnow()
    async with sessions() as session, session.begin():
        alive = await session.execute(
            update(Worker).where(Worker.id == worker_id).values(heartbeat_at=now)
        )
        if alive.rowcount == 0:  # type: ignore[attr-defined]  # cleaned up as dead: come back
            session.add(
                Worker(
                    id=worker_id,
                    hostname=socket.gethostname(),
                    pid=os.getpid(),
                    concurrency=concurrency,
                    heartbeat_at=now,
                )
            )
        if not running:
            return set()
        renewed = await session.execute(
            update(QUEUE)
            .where(
                QUEUE.c.worker_id == worker_id,
                QUEUE.c.task_id.in_({task_id for task_id, _ in running}),
                exists(
                    select(TASKS.c.id).where(
                        TASKS.c.id == QUEUE.c.task_id,
                        TASKS.c.status == TaskStatus.PROCESSING,
                        tuple_(TASKS.c.id, TASKS.c.attempt).in_(running),
                    )
                ),
            )
            .values(locked_until=now + timedelta(seconds=settings.task_lease_seconds))
            .returning(QUEUE.c.task_id)
        )
        owned = set(renewed.scalars())
    latest: dict[str, int] = {}
    for task_id, attempt in running:
        latest[task_id] = max(attempt, latest.get(task_id, attempt))
    return {
        (task_id, attempt)
        for task_id, attempt in running
        if task_id not in owned or attempt < latest[task_id]
    }


async def _won_lock(session: AsyncSession) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True
    result = await session.execute(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": MAINTENANCE_LOCK}
    )
    return bool(result.scalar())


async def reclaim_expired(
    session: AsyncSession, settings: Settings, abandoned: list[Path] | None = None
) -> tuple[int, int]:
    """Take back tasks whose lease ran out: retry with backoff, or fail past max_retries.

    The directories of the attempts taken back are appended to ``abandoned``: their
    worker is gone or fenced out, and nobody else will remove them.
    """
    now = utcnow()
    expired = (
        (
            await session.execute(
                select(QUEUE.c.task_id)
                .where(QUEUE.c.worker_id.is_not(None), QUEUE.c.locked_until < now)
                .with_for_update(skip_locked=True)
            )
        )
        .scalars()
        .all()
    )
    reclaimed = failed = 0
    policy = RetryPolicy.of(settings)
    for task_id in expired:
        task = (
            await session.execute(
                select(TASKS.c.status, TASKS.c.attempt, TASKS.c.retry_count, TASKS.c.max_retries)
                .where(TASKS.c.id == task_id)
                .with_for_update()
            )
        ).first()
        if task is None or task.status != TaskStatus.PROCESSING:
            await session.execute(DEQUEUE, {"b_task_id": task_id})
            continue
        retry_count, max_retries, attempt = task.retry_count, task.max_retries, task.attempt
        if abandoned is not None:
            abandoned.append(storage.attempt_dir(settings.upload_dir, task_id, attempt))
        # Leaving "processing" fences out the worker that stopped responding: its
        # writes require that status, and the next claim starts a new attempt.
        delay = policy.retry_in(retry_count, max_retries)
        if delay is not None:
            await retry_later(
                session, task_id, attempt, delay, stage="queued",
                message="The worker running this task stopped responding (its lease expired); "
                f"retry {retry_count + 1} of {max_retries} in {delay:.1f} s.",
            )  # fmt: skip
            reclaimed += 1
        else:
            message = (
                f"The worker running this task stopped responding {retry_count + 1} times "
                "(its lease expired); giving up."
            )
            await fail_for_good(session, settings, task_id, attempt, message)
            failed += 1
    return reclaimed, failed


async def delete_expired_files(session: AsyncSession, settings: Settings) -> int:
    now = utcnow()
    rows = (
        (
            await session.execute(
                select(FileStorage).where(
                    FileStorage.expires_at < now, FileStorage.deleted_at.is_(None)
                )
            )
        )
        .scalars()
        .all()
    )
    for row in rows:
        stored = storage.Stored.from_row(row.storage_type, row.storage_path, row.storage_bucket)
        if await storage.remove_stored(settings, stored):  # else the next pass tries again
            row.deleted_at = now
    return len(rows)


async def remove_dead_workers(session: AsyncSession, settings: Settings) -> int:
    cutoff = utcnow() - timedelta(seconds=3 * settings.task_lease_seconds)
    result = await session.execute(delete(Worker).where(Worker.heartbeat_at < cutoff))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def run_maintenance(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> UpkeepReport:
    abandoned: list[Path] = []
    async with sessions() as session, session.begin():
        if not await _won_lock(session):
            return UpkeepReport(ran=False)
        reclaimed, failed = await reclaim_expired(session, settings, abandoned)
        files = await delete_expired_files(session, settings)
        workers = await remove_dead_workers(session, settings)
    if abandoned:
        await storage.remove(*abandoned)
    if reclaimed or failed or files or workers:
        log.info("maintenance", reclaimed=reclaimed, failed=failed, files_deleted=files,
                 workers_removed=workers)  # fmt: skip
    return UpkeepReport(reclaimed, failed, files, workers)


SWEEP_CHUNK = 500


def _attempt_dirs(upload_dir: Path) -> list[tuple[str, int, Path]]:
    """Every ``tasks/<id>/attempt-N.tmp`` directory under ``upload_dir``."""
    found = []
    root = storage.tasks_root(upload_dir)
    if not root.is_dir():
        return []
    for task_path in root.iterdir():
        if not task_path.is_dir():
            continue
        for entry in task_path.iterdir():
            match = storage.ATTEMPT_DIR_NAME.fullmatch(entry.name)
            if match:
                found.append((task_path.name, int(match[1]), entry))
    return found


async def sweep_attempt_dirs(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> tuple[int, int]:
    """Remove attempt directories of attempts that are no longer current: how many were
    removed, and how many the storage refused to remove (read-only, say).

    An attempt is current while its task is ``processing`` under that attempt
    number (on this worker or another); any other directory was left by a
    worker that died (or by a process that outlived it) and nobody will use it.
    Attempt numbers only grow, so a directory seen here can never become current.
    """
    found = await anyio.to_thread.run_sync(_attempt_dirs, settings.upload_dir)
    removed = refused = 0
    for start in range(0, len(found), SWEEP_CHUNK):
        chunk = found[start : start + SWEEP_CHUNK]
        async with sessions() as session:
            rows = await session.execute(
                select(TASKS.c.id, TASKS.c.attempt).where(
                    TASKS.c.id.in_({task_id for task_id, _, _ in chunk}),
                    TASKS.c.status == TaskStatus.PROCESSING,
                )
            )
            current = {(task_id, attempt) for task_id, attempt in rows.all()}
        stale = [path for task_id, attempt, path in chunk if (task_id, attempt) not in current]
        if stale:
            left = await storage.remove(*stale)
            removed += len(stale) - len(left)
            refused += len(left)
    if removed or refused:
        log.info("attempt_dirs_swept", removed=removed, refused=refused)
    return removed, refused


async def oldest_due_at(session: AsyncSession) -> datetime | None:
    """When the longest-waiting claimable task became due (unclaimed, ``available_at`` past)."""
    query = select(func.min(QUEUE.c.available_at)).where(
        QUEUE.c.worker_id.is_(None), QUEUE.c.available_at <= utcnow()
    )
    value: datetime | None = (await session.execute(query)).scalar_one()
    return value
