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
from sqlalchemy import Row, Table, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.events.publish import TaskEvent, publish_event, publish_events
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
    await publish_event(session, TaskEvent.from_task(row))


def _table(model: Any) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


# The statements of the hot path (claim, progress, completion), built once with
# bound parameters: building an ORM statement costs more than running it.
_TASKS = _table(Task)
_QUEUE = _table(TaskQueue)
_FILES = _table(FileStorage)
_RESULTS = _table(TaskResult)
_LOGS = _table(TaskLog)
_EVENT_COLUMNS_CORE = tuple(_TASKS.c[column.key] for column in _EVENT_COLUMNS)
_OWNED = (
    (_TASKS.c.id == bindparam("b_task_id"))
    & (_TASKS.c.attempt == bindparam("b_attempt"))
    & (_TASKS.c.status == TaskStatus.PROCESSING)
)
_CLAIM_QUEUE = (
    update(_QUEUE)
    .where(
        _QUEUE.c.id.in_(
            select(_QUEUE.c.id)
            .where(_QUEUE.c.worker_id.is_(None), _QUEUE.c.available_at <= bindparam("now"))
            .order_by(_QUEUE.c.priority.desc(), _QUEUE.c.enqueued_at, _QUEUE.c.id)
            .limit(bindparam("limit"))
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
    )
    .values(
        worker_id=bindparam("b_worker_id"),
        locked_until=bindparam("b_locked_until"),
        attempt=_QUEUE.c.attempt + 1,
    )
    .returning(_QUEUE.c.task_id)
)
_CLAIM_TASKS = (
    update(_TASKS)
    .where(
        _TASKS.c.id.in_(bindparam("ids", expanding=True)),
        _TASKS.c.status == TaskStatus.PENDING,
    )
    .values(
        status=TaskStatus.PROCESSING,
        attempt=_TASKS.c.attempt + 1,
        progress=0,
        stage="starting",
        started_at=bindparam("now"),
        completed_at=None,
        event_seq=_TASKS.c.event_seq + 1,
        updated_at=bindparam("now"),
    )
    .returning(
        *_EVENT_COLUMNS_CORE,
        _TASKS.c.attempt,
        _TASKS.c.processor,
        _TASKS.c.retry_count,
        _TASKS.c.max_retries,
    )
)
_UPLOAD_PATHS = select(_FILES.c.task_id, _FILES.c.storage_path).where(
    _FILES.c.task_id.in_(bindparam("ids", expanding=True)),
    _FILES.c.kind == FileKind.UPLOAD,
)
_PROGRESS = (
    update(_TASKS)
    .where(_OWNED, _TASKS.c.progress <= bindparam("b_progress"))
    .values(
        progress=bindparam("b_progress"),
        stage=bindparam("b_stage"),
        event_seq=_TASKS.c.event_seq + 1,
        updated_at=bindparam("now"),
    )
    .returning(*_EVENT_COLUMNS_CORE)
)
_STILL_OWNED = select(_TASKS.c.id).where(_OWNED)
_COMPLETE = (
    update(_TASKS)
    .where(_OWNED)
    .values(
        status=TaskStatus.COMPLETED,
        progress=100,
        stage="done",
        completed_at=bindparam("now"),
        error_message=None,
        result_url=bindparam("b_result_url"),
        event_seq=_TASKS.c.event_seq + 1,
        updated_at=bindparam("now"),
    )
    .returning(*_EVENT_COLUMNS_CORE)
)
_KEEP_UPLOAD_UNTIL = (
    update(_FILES)
    .where(_FILES.c.task_id == bindparam("b_task_id"), _FILES.c.kind == FileKind.UPLOAD)
    .values(expires_at=bindparam("expires"))
)
_DEQUEUE = delete(_QUEUE).where(_QUEUE.c.task_id == bindparam("b_task_id"))
_INSERT_LOG = insert(_LOGS)
_INSERT_FILE = insert(_FILES)
_INSERT_RESULT = insert(_RESULTS)


def _log_row(task_id: str, attempt: int, message: str, level: LogLevel = LogLevel.INFO,
             **details: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "task_id": task_id,
        "attempt": attempt,
        "log_level": level,
        "message": message,
        "details": details or None,
        "created_at": utcnow(),
    }


def _log(task_id: str, attempt: int, message: str, level: LogLevel = LogLevel.INFO,
         **details: Any) -> Any:  # fmt: skip
    """The INSERT of one ``task_logs`` row."""
    return insert(_LOGS).values(**_log_row(task_id, attempt, message, level, **details))


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
        queued = (
            (
                await session.execute(
                    _CLAIM_QUEUE,
                    {
                        "now": now,
                        "limit": limit,
                        "b_worker_id": worker_id,
                        "b_locked_until": now + timedelta(seconds=settings.task_lease_seconds),
                    },
                )
            )
            .scalars()
            .all()
        )
        if not queued:
            return []
        started = (await session.execute(_CLAIM_TASKS, {"ids": queued, "now": now})).all()
        stale = set(queued) - {row.id for row in started}
        if stale:  # the task left "pending" meanwhile: its queue row is obsolete
            await session.execute(delete(TaskQueue).where(TaskQueue.task_id.in_(stale)))
        if not started:
            return []
        ids = [row.id for row in started]
        uploads: dict[str, str] = {
            row.task_id: row.storage_path
            for row in await session.execute(_UPLOAD_PATHS, {"ids": ids})
        }
        await session.execute(
            _INSERT_LOG,
            [
                _log_row(row.id, row.attempt, f"Started attempt {row.attempt}", worker_id=worker_id)
                for row in started
            ],
        )
        await publish_events(session, [TaskEvent.from_task(row) for row in started])
        return [
            Claimed(
                task_id=row.id,
                attempt=row.attempt,
                processor=row.processor,
                upload_path=uploads.get(row.id, ""),
                retry_count=row.retry_count,
                max_retries=row.max_retries,
            )
            for row in started
        ]


async def report_progress(
    sessions: async_sessionmaker[AsyncSession], claimed: Claimed, percent: int, stage: str
) -> bool:
    """Write progress (never lower than what is stored). False if the attempt was fenced out."""
    owned = {"b_task_id": claimed.task_id, "b_attempt": claimed.attempt}
    async with sessions() as session, session.begin():
        result = await session.execute(
            _PROGRESS, {**owned, "b_progress": percent, "b_stage": stage[:64], "now": utcnow()}
        )
        row = result.first()
        if row is not None:
            await _publish(session, row)
            return True
        return (await session.execute(_STILL_OWNED, owned)).first() is not None


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
    task_id = claimed.task_id
    async with sessions() as session, session.begin():
        row = (
            await session.execute(
                _COMPLETE,
                {
                    "b_task_id": task_id,
                    "b_attempt": claimed.attempt,
                    "now": now,
                    "b_result_url": f"/api/v1/tasks/{task_id}/files/{first}" if first else None,
                },
            )
        ).first()
        if row is None:
            return False
        try:
            files = []
            for produced in output.files:
                target = result_dir / produced.name
                await storage.move(attempt_dir / produced.name, target)
                size, checksum = await anyio.to_thread.run_sync(_file_facts, target)
                files.append(
                    {
                        "task_id": task_id,
                        "kind": FileKind.RESULT,
                        "name": produced.name,
                        "storage_path": storage.relative(settings.upload_dir, target),
                        "size": size,
                        "content_type": produced.content_type,
                        "checksum": checksum,
                        "created_at": now,
                        "expires_at": expires,
                    }
                )
            if files:
                await session.execute(_INSERT_FILE, files)
            await session.execute(
                _INSERT_RESULT,
                {
                    "task_id": task_id,
                    "attempt": claimed.attempt,
                    "result_file_path": (
                        storage.relative(settings.upload_dir, result_dir / first) if first else None
                    ),
                    "summary": output.summary,
                    "quality_score": output.quality_score,
                    "confidence_score": output.confidence_score,
                    "metrics": output.metrics,
                    "created_at": now,
                },
            )
            await session.execute(_KEEP_UPLOAD_UNTIL, {"b_task_id": task_id, "expires": expires})
            await session.execute(_DEQUEUE, {"b_task_id": task_id})
            await session.execute(_INSERT_LOG, _log_row(task_id, claimed.attempt, "Completed"))
            await _publish(session, row)
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
            else f"{message} (gave up after {_attempts(claimed.retry_count + 1)})"
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


def _attempts(count: int) -> str:
    return "1 attempt" if count == 1 else f"{count} attempts"


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
