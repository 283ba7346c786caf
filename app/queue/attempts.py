"""The queue's SQL for workers: claim, progress, complete, fail or retry, hand back.

Every claim starts a new attempt: ``tasks.attempt`` grows by one and is the
attempt's fencing token. Every later write of that attempt is an UPDATE
conditioned on ``attempt = :mine AND status = 'processing'``; when it matches
no row the attempt was fenced out (cancelled, reclaimed after its lease ran
out, handed to another worker) and must stop without writing anything.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.events.publish import TaskEvent, publish_event
from app.models import (
    FileKind,
    FileStorage,
    LogLevel,
    Task,
    TaskLog,
    TaskQueue,
    TaskResult,
    TaskStatus,
)
from app.models.base import utcnow
from app.processors.base import ProcessorOutput
from app.services import storage

MAX_BACKOFF_SECONDS = 300.0
_EVENT_COLUMNS = (
    Task.id,
    Task.owner_id,
    Task.event_seq,
    Task.status,
    Task.progress,
    Task.stage,
    Task.result_url,
    Task.error_message,
)


@dataclass(frozen=True, slots=True)
class Claimed:
    """One attempt this worker now owns."""

    task_id: str
    attempt: int
    processor: str
    upload_path: str
    retry_count: int
    max_retries: int


def backoff_seconds(settings: Settings, retry_count: int) -> float:
    """Exponential backoff with jitter: base·2^n, capped, scaled by a random 0.5-1.0."""
    delay = min(settings.task_retry_backoff_seconds * 2**retry_count, MAX_BACKOFF_SECONDS)
    return float(delay * random.uniform(0.5, 1.0))


async def _publish(session: AsyncSession, row: Row[*tuple[Any, ...]]) -> None:
    await publish_event(
        session,
        TaskEvent(
            task_id=row.id,
            owner_id=row.owner_id,
            seq=row.event_seq,
            status=row.status,
            progress=row.progress,
            stage=row.stage,
            result_url=row.result_url,
            error_message=row.error_message,
        ),
    )


def _log(task_id: str, attempt: int, message: str, level: LogLevel = LogLevel.INFO,
         **details: Any) -> Any:  # fmt: skip
    return insert(TaskLog).values(
        task_id=task_id,
        attempt=attempt,
        log_level=level,
        message=message,
        details=details or None,
        created_at=utcnow(),
    )


async def _fenced(
    session: AsyncSession, task_id: str, attempt: int, **values: Any
) -> Row[*tuple[Any, ...]] | None:
    """Update the task only if ``attempt`` still owns it; the new event row, or None."""
    result = await session.execute(
        update(Task)
        .where(
            Task.id == task_id,
            Task.attempt == attempt,
            Task.status == TaskStatus.PROCESSING,
        )
        .values(event_seq=Task.event_seq + 1, updated_at=utcnow(), **values)
        .returning(*_EVENT_COLUMNS)
    )
    return result.first()


async def claim(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, worker_id: str, limit: int
) -> list[Claimed]:
    """Take up to ``limit`` tasks, highest priority first then oldest, in one statement.

    PostgreSQL skips rows other claimers hold (FOR UPDATE SKIP LOCKED); SQLite
    runs the same statement under its single writer.
    """
    now = utcnow()
    async with sessions() as session, session.begin():
        pick = (
            select(TaskQueue.id)
            .where(TaskQueue.worker_id.is_(None), TaskQueue.available_at <= now)
            .order_by(TaskQueue.priority.desc(), TaskQueue.enqueued_at, TaskQueue.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        queued = (
            (
                await session.execute(
                    update(TaskQueue)
                    .where(TaskQueue.id.in_(pick.scalar_subquery()))
                    .values(
                        worker_id=worker_id,
                        locked_until=now + timedelta(seconds=settings.task_lease_seconds),
                        attempt=TaskQueue.attempt + 1,
                    )
                    .returning(TaskQueue.task_id)
                )
            )
            .scalars()
            .all()
        )
        if not queued:
            return []
        started = (
            await session.execute(
                update(Task)
                .where(Task.id.in_(queued), Task.status == TaskStatus.PENDING)
                .values(
                    status=TaskStatus.PROCESSING,
                    attempt=Task.attempt + 1,
                    progress=0,
                    stage="starting",
                    started_at=now,
                    completed_at=None,
                    event_seq=Task.event_seq + 1,
                    updated_at=now,
                )
                .returning(
                    *_EVENT_COLUMNS,
                    Task.attempt,
                    Task.processor,
                    Task.retry_count,
                    Task.max_retries,
                )
            )
        ).all()
        stale = set(queued) - {row.id for row in started}
        if stale:  # the task left "pending" meanwhile: its queue row is obsolete
            await session.execute(delete(TaskQueue).where(TaskQueue.task_id.in_(stale)))
        uploads = dict(
            (
                await session.execute(
                    select(FileStorage.task_id, FileStorage.storage_path).where(
                        FileStorage.task_id.in_([row.id for row in started]),
                        FileStorage.kind == FileKind.UPLOAD,
                    )
                )
            ).all()
        )
        claimed = []
        for row in started:
            await session.execute(
                _log(row.id, row.attempt, f"Started attempt {row.attempt}", worker_id=worker_id)
            )
            await _publish(session, row)
            claimed.append(
                Claimed(
                    task_id=row.id,
                    attempt=row.attempt,
                    processor=row.processor,
                    upload_path=uploads.get(row.id, ""),
                    retry_count=row.retry_count,
                    max_retries=row.max_retries,
                )
            )
        return claimed


async def report_progress(
    sessions: async_sessionmaker[AsyncSession], claimed: Claimed, percent: int, stage: str
) -> bool:
    """Write progress (never lower than what is stored). False if the attempt was fenced out."""
    async with sessions() as session, session.begin():
        result = await session.execute(
            update(Task)
            .where(
                Task.id == claimed.task_id,
                Task.attempt == claimed.attempt,
                Task.status == TaskStatus.PROCESSING,
                Task.progress <= percent,
            )
            .values(
                progress=percent,
                stage=stage[:64],
                event_seq=Task.event_seq + 1,
                updated_at=utcnow(),
            )
            .returning(*_EVENT_COLUMNS)
        )
        row = result.first()
        if row is not None:
            await _publish(session, row)
            return True
        owner = await session.execute(
            select(Task.id).where(
                Task.id == claimed.task_id,
                Task.attempt == claimed.attempt,
                Task.status == TaskStatus.PROCESSING,
            )
        )
        return owner.first() is not None


def _file_facts(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return path.stat().st_size, "sha256:" + digest.hexdigest()


async def complete(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    claimed: Claimed,
    output: ProcessorOutput,
    attempt_dir: Path,
) -> bool:
    """Publish the attempt's files and result, fenced: False (and nothing written) if fenced out.

    The fenced UPDATE comes first, so the row stays locked (PostgreSQL) or the
    database write-locked (SQLite) while files move into ``results/``.
    """
    now = utcnow()
    expires = now + timedelta(days=settings.result_ttl_days)
    result_dir = storage.task_dir(settings.upload_dir, claimed.task_id) / "results"
    first = output.files[0].name if output.files else None
    async with sessions() as session, session.begin():
        row = await _fenced(
            session,
            claimed.task_id,
            claimed.attempt,
            status=TaskStatus.COMPLETED,
            progress=100,
            stage="done",
            completed_at=now,
            error_message=None,
            result_url=f"/api/v1/tasks/{claimed.task_id}/files/{first}" if first else None,
        )
        if row is None:
            return False
        try:
            for produced in output.files:
                target = result_dir / produced.name
                await storage.move(attempt_dir / produced.name, target)
                size, checksum = await anyio.to_thread.run_sync(_file_facts, target)
                session.add(
                    FileStorage(
                        task_id=claimed.task_id,
                        kind=FileKind.RESULT,
                        name=produced.name,
                        storage_path=storage.relative(settings.upload_dir, target),
                        size=size,
                        content_type=produced.content_type,
                        checksum=checksum,
                        created_at=now,
                        expires_at=expires,
                    )
                )
            session.add(
                TaskResult(
                    task_id=claimed.task_id,
                    attempt=claimed.attempt,
                    result_file_path=(
                        storage.relative(settings.upload_dir, result_dir / first) if first else None
                    ),
                    summary=output.summary,
                    quality_score=output.quality_score,
                    confidence_score=output.confidence_score,
                    metrics=output.metrics,
                    created_at=now,
                )
            )
            await session.execute(
                update(FileStorage)
                .where(FileStorage.task_id == claimed.task_id, FileStorage.kind == FileKind.UPLOAD)
                .values(expires_at=expires)
            )
            await session.execute(delete(TaskQueue).where(TaskQueue.task_id == claimed.task_id))
            await session.execute(_log(claimed.task_id, claimed.attempt, "Completed"))
            await _publish(session, row)
            await session.flush()
        except BaseException:
            await storage.remove(result_dir)
            raise
    return True


async def fail(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    claimed: Claimed,
    message: str,
    *,
    retryable: bool,
) -> str | None:
    """Retry later (with backoff) or fail for good. The new status, or None if fenced out."""
    now = utcnow()
    async with sessions() as session, session.begin():
        if retryable and claimed.retry_count < claimed.max_retries:
            delay = backoff_seconds(settings, claimed.retry_count)
            row = await _fenced(
                session,
                claimed.task_id,
                claimed.attempt,
                status=TaskStatus.PENDING,
                retry_count=Task.retry_count + 1,
                progress=0,
                stage="retrying",
            )
            if row is None:
                return None
            await _release(session, claimed.task_id, available_at=now + timedelta(seconds=delay))
            await session.execute(
                _log(
                    claimed.task_id,
                    claimed.attempt,
                    f"Attempt {claimed.attempt} failed: {message} Retrying in {delay:.1f} s "
                    f"(retry {claimed.retry_count + 1} of {claimed.max_retries}).",
                    LogLevel.WARNING,
                )
            )
            await _publish(session, row)
            return TaskStatus.PENDING
        final = (
            message
            if not retryable
            else f"{message} (gave up after {claimed.retry_count + 1} attempts)"
        )
        row = await _fenced(
            session,
            claimed.task_id,
            claimed.attempt,
            status=TaskStatus.FAILED,
            stage="failed",
            completed_at=now,
            error_message=final,
        )
        if row is None:
            return None
        await _finish_failed(session, settings, claimed.task_id, claimed.attempt, final, row)
        return TaskStatus.FAILED


async def _finish_failed(
    session: AsyncSession,
    settings: Settings,
    task_id: str,
    attempt: int,
    message: str,
    row: Row[*tuple[Any, ...]],
) -> None:
    await session.execute(delete(TaskQueue).where(TaskQueue.task_id == task_id))
    await session.execute(
        update(FileStorage)
        .where(FileStorage.task_id == task_id)
        .values(expires_at=utcnow() + timedelta(days=settings.result_ttl_days))
    )
    await session.execute(_log(task_id, attempt, f"Failed: {message}", LogLevel.ERROR))
    await _publish(session, row)


async def _release(session: AsyncSession, task_id: str, *, available_at: Any) -> None:
    await session.execute(
        update(TaskQueue)
        .where(TaskQueue.task_id == task_id)
        .values(worker_id=None, locked_until=None, available_at=available_at)
    )


async def hand_back(sessions: async_sessionmaker[AsyncSession], claimed: Claimed) -> bool:
    """Return an unfinished attempt to the queue at once, without counting a retry."""
    async with sessions() as session, session.begin():
        row = await _fenced(
            session,
            claimed.task_id,
            claimed.attempt,
            status=TaskStatus.PENDING,
            progress=0,
            stage="queued",
            started_at=None,
        )
        if row is None:
            return False
        await _release(session, claimed.task_id, available_at=utcnow())
        await session.execute(
            _log(claimed.task_id, claimed.attempt, "Handed back to the queue: the worker stopped")
        )
        await _publish(session, row)
        return True
