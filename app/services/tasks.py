"""Tasks: creation from uploads, reading, user transitions, deletion, logs, results, files.

Ownership goes through ``app.services.access``. User transitions (cancel, retry,
reprioritise) are the guarded statements of ``app.queue.attempts`` run by
``user_transition``: one conditional UPDATE each, so two concurrent requests cannot
both win; cancelling bumps ``attempt`` (the fencing token) so a running attempt can
no longer write anything.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import Insert, Select, Table, bindparam, delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.database import bus_of, on_commit, on_rollback
from app.errors import InvalidTransition, NotFound, Unprocessable
from app.events.bus import TASK_PENDING
from app.events.publish import EVENTS_CHANNEL, TaskEvent
from app.models import (
    Batch,
    FileKind,
    FileStorage,
    LogLevel,
    Project,
    Task,
    TaskLog,
    TaskQueue,
    TaskResult,
    TaskStatus,
    User,
)
from app.models.base import new_id, table_of, utcnow
from app.processors.registry import processor_names
from app.queue import attempts
from app.queue.attempts import user_transition
from app.queue.enqueue import dequeue, enqueue, set_priority
from app.schemas.common import unsafe_text_reason
from app.services import storage
from app.services.access import get_owned, scope_to_owner
from app.services.uploads import ReceivedForm, receive_form, validate
from app.webhooks import service as webhook_service

SORTS = {
    "uploaded_at": (Task.uploaded_at.asc(), Task.id.asc()),
    "-uploaded_at": (Task.uploaded_at.desc(), Task.id.desc()),
    "priority": (Task.priority.asc(), Task.uploaded_at.desc(), Task.id.desc()),
    "-priority": (Task.priority.desc(), Task.uploaded_at.desc(), Task.id.desc()),
    "file_name": (Task.file_name.asc(), Task.id.asc()),
    "-file_name": (Task.file_name.desc(), Task.id.desc()),
}


_PRIORITY = re.compile(r"[0-9]{1,2}")


def _bound_insert(table: Table, prefix: str) -> Insert:
    """``INSERT INTO table`` of every column but a generated integer key, each value a
    bound parameter named ``prefix`` + the column (prebuilt: compiled once)."""
    columns = [c for c in table.columns if not (c.primary_key and c.autoincrement is True)]
    return insert(table).values({c.name: bindparam(prefix + c.name) for c in columns})


_NEW_TASK = _bound_insert(table_of(Task), "t_")
_NEW_FILE = _bound_insert(table_of(FileStorage), "f_")
_NEW_LOG = _bound_insert(table_of(TaskLog), "l_")
_NEW_QUEUE_ROW = _bound_insert(table_of(TaskQueue), "q_")
_NEW_ROWS = (_NEW_TASK, _NEW_FILE, _NEW_LOG, _NEW_QUEUE_ROW)
_PREFIXES = ("t_", "f_", "l_", "q_")
# PostgreSQL: the four rows and the task's event in one statement (one round trip): the
# INSERTs as data-modifying CTEs (each runs once, whether or not the SELECT reads it; the
# foreign keys are checked at the end of the statement), the NOTIFY as its SELECT.
_NEW_UPLOAD_PG = select(func.pg_notify(bindparam("channel"), bindparam("payload"))).add_cte(
    *(statement.cte(f"new_{n}") for n, statement in enumerate(_NEW_ROWS))
)


@dataclass(frozen=True, slots=True)
class UploadOptions:
    project_id: str | None
    priority: int
    processor: str
    callback_url: str | None = None


@dataclass(frozen=True, slots=True)
class TaskFilters:
    status: TaskStatus | None = None
    project_id: str | None = None
    batch_id: str | None = None
    q: str | None = None
    sort: str = "-uploaded_at"


def parse_upload_options(fields: dict[str, str]) -> UploadOptions:
    """The optional form fields of an upload, validated like a request body (422)."""
    errors: list[dict[str, Any]] = [
        {"loc": ["body", name], "msg": reason, "type": "unsafe_text"}
        for name, value in fields.items()
        if (reason := unsafe_text_reason(value)) is not None
    ]
    if errors:  # nothing else is looked at: these values must not reach a query
        raise Unprocessable(
            f"{errors[0]['loc'][-1]}: {errors[0]['msg']}",
            code="validation_error",
            extra={"errors": errors},
        )
    priority = 5
    raw_priority = fields.get("priority", "")
    if raw_priority:
        # ASCII digits only: str.isdigit() also accepts "²", which int() refuses
        if _PRIORITY.fullmatch(raw_priority) is None or not 0 <= int(raw_priority) <= 10:
            errors.append(
                {"loc": ["body", "priority"], "msg": "must be an integer from 0 to 10",
                 "type": "priority_range"}
            )  # fmt: skip
        else:
            priority = int(raw_priority)
    processor = fields.get("processor", "").strip() or "analyze"
    if processor not in processor_names():
        known = ", ".join(processor_names())
        errors.append(
            {"loc": ["body", "processor"], "msg": f"unknown processor (known: {known})",
             "type": "unknown_processor"}
        )  # fmt: skip
    if errors:
        first = errors[0]
        raise Unprocessable(
            f"{first['loc'][-1]}: {first['msg']}", code="validation_error", extra={"errors": errors}
        )
    project_id = fields.get("project_id", "").strip() or None
    return UploadOptions(project_id=project_id, priority=priority, processor=processor)


def request_fingerprint(form: ReceivedForm, options: UploadOptions) -> str:
    """What an upload asked for: each file's bytes (checksum) and name, and the options."""
    asked = {
        "files": [[received.checksum, received.filename] for received in form.files],
        "processor": options.processor,
        "priority": options.priority,
        "project_id": options.project_id,
    }
    if options.callback_url:  # only when given: earlier keys' fingerprints stay valid
        asked["callback_url"] = options.callback_url
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()


def _replayed(existing: Task, fingerprint: str) -> tuple[list[Task], str | None, bool]:
    """The earlier upload of an Idempotency-Key, if this request is the same one again."""
    if existing.idempotency_fingerprint not in (None, fingerprint):  # None: older than the check
        raise Unprocessable(
            "This Idempotency-Key was already used for a different upload (another file, "
            "file name, processor or options); use a new key for a new upload",
            code="idempotency_key_reused",
            loc=("header", "idempotency-key"),
        )
    return [existing], existing.batch_id, False


async def _existing_by_key(session: AsyncSession, user: User, key: str) -> Task | None:
    result = await session.execute(
        select(Task).where(Task.owner_id == user.id, Task.idempotency_key == key)
    )
    return result.scalar_one_or_none()


async def create_tasks(
    session: AsyncSession,
    settings: Settings,
    user: User,
    form: ReceivedForm,
    options: UploadOptions,
    *,
    idempotency_key: str | None = None,
    batch: bool = False,
) -> tuple[list[Task], str | None, bool]:
    """Create one task per received (already validated) file, all or nothing.

    Everything is checked before anything is kept (the project, an earlier
    upload with the same key); files are then moved into place (``form.keep``)
    and the tasks, their file rows, queue rows and first log entries written in
    ``session``'s transaction; the placed files are removed again if it does
    not commit. Temp files not kept are the form's to remove (``async with
    form``). Returns (tasks, batch id, created) where ``created`` is False when
    ``idempotency_key`` matched an earlier upload (found here, or by the
    insert's conflict with an upload committed meanwhile: the transaction is
    then rolled back and the earlier upload read in a new one).
    """
    fingerprint = request_fingerprint(form, options)
    if options.project_id is not None:
        await get_owned(session, Project, options.project_id, user)
    if idempotency_key:
        existing = await _existing_by_key(session, user, idempotency_key)
        if existing is not None:
            return _replayed(existing, fingerprint)

    placed: list[tuple[str, storage.Stored]] = []
    for received in form.files:
        task_id = new_id()
        target = storage.new_upload_location(settings, task_id, received.extension)
        await form.keep(received, target, settings)
        on_rollback(session, partial(storage.remove_placed_upload, settings, target))
        placed.append((task_id, target))
    try:
        tasks, batch_id = await _insert_tasks(
            session, settings, user, form, options, placed, idempotency_key, batch
        )
    except IntegrityError:
        await session.rollback()
        if idempotency_key:
            existing = await _existing_by_key(session, user, idempotency_key)
            if existing is not None:
                return _replayed(existing, fingerprint)
        raise
    return tasks, batch_id, True


async def _insert_tasks(
    session: AsyncSession,
    settings: Settings,
    user: User,
    form: ReceivedForm,
    options: UploadOptions,
    placed: list[tuple[str, storage.Stored]],
    idempotency_key: str | None,
    batch: bool,
) -> tuple[list[Task], str | None]:
    """Each task's row, upload file row, first log row and queue row, by prebuilt Core
    INSERTs (no ORM flush): on PostgreSQL one statement per task that also sends its
    event, on SQLite one per table. The returned tasks are built from the inserted values
    (not attached to ``session``). Workers and live clients hear of them on commit: the
    process's bus gets ``TaskPending`` and the events; other processes get the event's
    NOTIFY, whose ``pending`` status also wakes their workers (``app.events.listener``)."""
    batch_id: str | None = None
    if batch:
        batch_row = Batch(
            owner_id=user.id, project_id=options.project_id, callback_url=options.callback_url
        )
        session.add(batch_row)
        await session.flush()
        batch_id = batch_row.id
    fingerprint = request_fingerprint(form, options) if idempotency_key and not batch else None
    now = utcnow()
    tasks: list[Task] = []
    rows: list[list[dict[str, Any]]] = [[], [], [], []]  # per statement of _NEW_ROWS
    for received, (task_id, stored) in zip(form.files, placed, strict=True):
        task_row: dict[str, Any] = {
            "id": task_id,
            "owner_id": user.id,
            "project_id": options.project_id,
            "batch_id": batch_id,
            "file_name": received.filename,
            "file_size": received.size,
            "file_type": received.content_type,
            "checksum": received.checksum,
            "status": TaskStatus.PENDING,
            "progress": 0,
            "stage": "queued",
            "priority": options.priority,
            "processor": options.processor,
            "callback_url": options.callback_url,
            "retry_count": 0,
            "max_retries": settings.task_max_retries,
            "attempt": 0,
            "event_seq": 1,  # the "Uploaded and queued" event below
            "error_message": None,
            "result_url": None,
            "idempotency_key": idempotency_key if not batch else None,
            "idempotency_fingerprint": fingerprint,
            "uploaded_at": now,
            "started_at": None,
            "completed_at": None,
            "updated_at": now,
        }
        file_row: dict[str, Any] = {
            "id": new_id(),
            "task_id": task_id,
            "kind": FileKind.UPLOAD,
            "name": f"original{received.extension}",
            "storage_type": stored.backend,
            "storage_bucket": stored.bucket,
            "storage_path": stored.key,
            "size": received.size,
            "content_type": received.content_type,
            "checksum": received.checksum,
            "created_at": now,
            "expires_at": None,
            "deleted_at": None,
        }
        log_row: dict[str, Any] = {
            "task_id": task_id,
            "attempt": 0,
            "log_level": LogLevel.INFO,
            "message": "Uploaded and queued",
            "details": {"file_name": received.filename, "size": received.size},
            "created_at": now,
        }
        queue_row: dict[str, Any] = {
            "task_id": task_id,
            "priority": options.priority,
            "enqueued_at": now,
            "available_at": now,
            "worker_id": None,
            "locked_until": None,
            "attempt": 0,
        }
        for table_rows, prefix, row in zip(
            rows, _PREFIXES, (task_row, file_row, log_row, queue_row), strict=True
        ):
            table_rows.append({prefix + name: value for name, value in row.items()})
        tasks.append(Task(**task_row))
    events = [TaskEvent.from_task(task) for task in tasks]
    bus = bus_of(session)
    on_commit(session, partial(bus.publish, TASK_PENDING))
    on_commit(session, partial(bus.publish_all, events))
    if session.get_bind().dialect.name == "postgresql":
        for task_rows, task_event in zip(zip(*rows, strict=True), events, strict=True):
            parameters = {"channel": EVENTS_CHANNEL, "payload": task_event.to_json()}
            for row in task_rows:
                parameters.update(row)
            await session.execute(_NEW_UPLOAD_PG, parameters)
    else:
        for statement, table_rows in zip(_NEW_ROWS, rows, strict=True):
            await session.execute(statement, table_rows[0] if len(table_rows) == 1 else table_rows)
    return tasks, batch_id


def _filtered(query: Select[Any], filters: TaskFilters) -> Select[Any]:
    if filters.status is not None:
        query = query.where(Task.status == filters.status)
    if filters.project_id is not None:
        query = query.where(Task.project_id == filters.project_id)
    if filters.batch_id is not None:
        query = query.where(Task.batch_id == filters.batch_id)
    if filters.q:
        escaped = filters.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Task.file_name.ilike(f"%{escaped}%", escape="\\"))
    return query


def task_query(user: User, filters: TaskFilters) -> Select[Any]:
    """The caller's tasks matching ``filters``, in the requested order."""
    query = _filtered(scope_to_owner(select(Task), Task, user), filters)
    return query.order_by(*SORTS[filters.sort])


async def list_tasks(
    session: AsyncSession, user: User, filters: TaskFilters, *, offset: int, limit: int
) -> tuple[list[Task], int]:
    count_query = _filtered(
        scope_to_owner(select(func.count()).select_from(Task), Task, user), filters
    )
    total = int((await session.execute(count_query)).scalar_one())
    rows = await session.execute(task_query(user, filters).offset(offset).limit(limit))
    return list(rows.scalars()), total


async def get_task(session: AsyncSession, user: User, task_id: str) -> Task:
    return await get_owned(session, Task, task_id, user)


async def cancel(session: AsyncSession, task: Task, *, reason: str = "Cancelled by user") -> None:
    """pending|processing → cancelled, fencing out any running attempt; else 409."""
    if await user_transition(session, attempts.CANCEL, task.id, reason) is None:
        await session.refresh(task)
        raise InvalidTransition(
            f"Task {task.id} is {task.status} and cannot be cancelled", code="invalid_transition"
        )
    await dequeue(session, task.id)
    await session.refresh(task)


async def retry(session: AsyncSession, task: Task) -> None:
    """failed|cancelled → pending with a fresh retry budget; else 409."""
    message = "Retry requested by user"
    if await user_transition(session, attempts.RETRY_BY_USER, task.id, message) is None:
        await session.refresh(task)
        raise InvalidTransition(
            f"Task {task.id} is {task.status}; only failed or cancelled tasks can be retried"
        )
    await session.refresh(task)
    await enqueue(session, task)


async def change_priority(session: AsyncSession, task: Task, priority: int) -> None:
    """The priority of a pending task (no event: its status did not change); else 409."""
    changed = await user_transition(
        session, attempts.REPRIORITISE, task.id, event=False, b_priority=priority
    )
    if changed is None:
        await session.refresh(task)
        raise InvalidTransition(
            f"Task {task.id} is {task.status}; priority can change only while pending"
        )
    await set_priority(session, task.id, priority)
    await session.refresh(task)


async def update_task(
    session: AsyncSession, user: User, task_id: str, changes: dict[str, Any]
) -> Task:
    """Apply a PATCH: status (cancelled | pending), priority, project_id.

    A status a user cannot ask for (processing, completed, failed) is an
    impossible transition: 409, before anything else changes.
    """
    task = await get_owned(session, Task, task_id, user)
    status = changes.get("status")
    if status is not None and status not in (TaskStatus.CANCELLED, TaskStatus.PENDING):
        raise InvalidTransition(
            f"Task {task.id} is {task.status} and cannot be set to {status}: ask for "
            "cancelled (to cancel) or pending (to retry a failed or cancelled task)"
        )
    if "project_id" in changes:
        project_id = changes["project_id"]
        if project_id is not None:
            await get_owned(session, Project, project_id, user)
        task.project_id = project_id
        await session.flush()
    if status == TaskStatus.CANCELLED:
        await cancel(session, task)
    elif status == TaskStatus.PENDING:
        await retry(session, task)
    if changes.get("priority") is not None:
        await change_priority(session, task, changes["priority"])
    await session.flush()
    await session.refresh(task)
    return task


async def delete_task(session: AsyncSession, settings: Settings, user: User, task_id: str) -> None:
    """Cancel a running attempt, delete the task with its rows; its files on disk go once
    that has committed."""
    task = await get_owned(session, Task, task_id, user)
    if task.status in (TaskStatus.PENDING, TaskStatus.PROCESSING):
        await cancel(session, task, reason="Cancelled: the task is being deleted")
    await session.execute(delete(Task).where(Task.id == task.id))
    on_commit(session, partial(storage.remove_task_files, settings, task_id))


async def list_logs(
    session: AsyncSession,
    user: User,
    task_id: str,
    *,
    level: LogLevel | None,
    offset: int,
    limit: int,
) -> tuple[list[TaskLog], int]:
    await get_owned(session, Task, task_id, user)
    query = select(TaskLog).where(TaskLog.task_id == task_id)
    count = select(func.count()).select_from(TaskLog).where(TaskLog.task_id == task_id)
    if level is not None:
        query = query.where(TaskLog.log_level == level)
        count = count.where(TaskLog.log_level == level)
    total = int((await session.execute(count)).scalar_one())
    rows = await session.execute(query.order_by(TaskLog.id).offset(offset).limit(limit))
    return list(rows.scalars()), total


async def list_files(session: AsyncSession, user: User, task_id: str) -> list[FileStorage]:
    """Result files (in the processor's order) then the upload; deleted files excluded."""
    await get_owned(session, Task, task_id, user)
    rows = await session.execute(
        select(FileStorage)
        .where(FileStorage.task_id == task_id, FileStorage.deleted_at.is_(None))
        .order_by(FileStorage.kind, FileStorage.created_at, FileStorage.name)  # "result" < "upload"
    )
    return list(rows.scalars())


async def get_result(
    session: AsyncSession, user: User, task_id: str
) -> tuple[TaskResult, list[FileStorage]]:
    task = await get_owned(session, Task, task_id, user)
    result = (
        await session.execute(select(TaskResult).where(TaskResult.task_id == task_id))
    ).scalar_one_or_none()
    if result is None or task.status != TaskStatus.COMPLETED:
        raise NotFound(
            f"Task {task_id} has no result yet (it is {task.status})", code="result_not_ready"
        )
    files = await list_files(session, user, task_id)
    return result, [f for f in files if f.kind == FileKind.RESULT]


@dataclass(frozen=True, slots=True)
class Download:
    stored: storage.Stored
    filename: str
    content_type: str
    checksum: str
    size: int


def result_download_name(task: Task, row: FileStorage) -> str:
    """The ``report.json`` of ``pride_and_prejudice.txt`` is ``pride_and_prejudice.report.json``."""
    stem = PurePosixPath(task.file_name).stem.strip() or "manuscript"
    return f"{stem}.{row.name}"


async def get_download(
    session: AsyncSession, settings: Settings, user: User, task_id: str, name: str
) -> Download:
    """A listed file of the task, by its listed name; anything else is 404 file_not_found."""
    task = await get_owned(session, Task, task_id, user)
    row = (
        await session.execute(
            select(FileStorage).where(
                FileStorage.task_id == task_id,
                FileStorage.name == name,
                FileStorage.deleted_at.is_(None),
            )
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"Task {task_id} has no file named {name!r}", code="file_not_found")
    stored = storage.Stored.from_row(row.storage_type, row.storage_path, row.storage_bucket)
    # named after the manuscript, so downloads of several books never overwrite each other
    filename = task.file_name if row.kind == FileKind.UPLOAD else result_download_name(task, row)
    return Download(
        stored=stored,
        filename=filename,
        content_type=row.content_type,
        checksum=row.checksum,
        size=row.size,
    )


async def upload(
    session: AsyncSession,
    settings: Settings,
    user: User,
    chunks: AsyncIterator[bytes],
    *,
    content_type: str | None,
    idempotency_key: str | None,
    batch: bool,
) -> tuple[list[Task], str | None, bool]:
    """Receive a multipart upload (one ``file`` or up to MAX_BATCH_FILES ``files``),
    validate every file, then create the tasks; nothing is created if any file is refused,
    and no temp file outlives the request whatever refused it."""
    max_files = settings.max_batch_files if batch else 1
    async with receive_form(
        chunks,
        content_type,
        settings,
        file_field="files" if batch else "file",
        max_files=max_files,
    ) as form:
        await validate(form, settings)
        options = parse_upload_options(form.fields)
        callback = await webhook_service.callback_url(
            session, settings, user, form.fields.get("callback_url")
        )
        options = dataclasses.replace(options, callback_url=callback)
        return await create_tasks(
            session, settings, user, form, options, idempotency_key=idempotency_key, batch=batch
        )
