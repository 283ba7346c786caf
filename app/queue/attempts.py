"""The queue's SQL for workers: claim, progress, complete, fail or retry, hand back.

Every claim starts a new attempt: ``tasks.attempt`` grows by one and is the
attempt's fencing token. Every later write of that attempt is an UPDATE
conditioned on ``attempt = :mine AND status = 'processing'``; when it matches
no row the attempt was fenced out (cancelled, reclaimed after its lease ran
out, handed to another worker) and must stop without writing anything.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import (
    JSON,
    Float,
    Integer,
    Row,
    String,
    Text,
    any_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    null,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.events.publish import (
    EVENTS_CHANNEL,
    MAX_ERROR_LENGTH,
    PROCESS_ID,
    TaskEvent,
    deliver_locally,
    publish_event,
    publish_events,
)
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
from app.models.base import new_id, table_of, utcnow
from app.processors.base import ProcessorOutput
from app.services import storage
from app.webhooks import outbox

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


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Whether a failed or abandoned attempt is tried again, and after how long.

    The one place that decides it, for an attempt that failed (``fail``) and for
    one whose worker stopped responding (``maintenance.reclaim_expired``).
    """

    base_seconds: float
    max_backoff_seconds: float = MAX_BACKOFF_SECONDS

    @classmethod
    def of(cls, settings: Settings) -> RetryPolicy:
        return cls(settings.task_retry_backoff_seconds)

    def backoff(self, retry_count: int) -> float:
        """Exponential backoff with jitter: base·2^n, capped, scaled by a random 0.5-1.0."""
        delay = min(self.base_seconds * 2**retry_count, self.max_backoff_seconds)
        return float(delay * random.uniform(0.5, 1.0))

    def retry_in(
        self, retry_count: int, max_retries: int, *, retryable: bool = True
    ) -> float | None:
        """Seconds until the next attempt, or None when the task has to fail for good."""
        if not retryable or retry_count >= max_retries:
            return None
        return self.backoff(retry_count)


# The statements of the hot path (claim, progress, completion), built once with
# bound parameters: building an ORM statement costs more than running it.
TASKS = table_of(Task)
QUEUE = table_of(TaskQueue)
_FILES = table_of(FileStorage)
_RESULTS = table_of(TaskResult)
_LOGS = table_of(TaskLog)
_EVENT_COLUMNS_CORE = tuple(TASKS.c[column.key] for column in _EVENT_COLUMNS)
_OWNED = (
    (TASKS.c.id == bindparam("b_task_id"))
    & (TASKS.c.attempt == bindparam("b_attempt"))
    & (TASKS.c.status == TaskStatus.PROCESSING)
)


def _claim_queue(limit: Any) -> Any:
    """Claim up to ``limit`` queue rows, in the claim index's order (most urgent first)."""
    return (
        update(QUEUE)
        .where(
            QUEUE.c.id.in_(
                select(QUEUE.c.id)
                .where(QUEUE.c.worker_id.is_(None), QUEUE.c.available_at <= bindparam("now"))
                .order_by(QUEUE.c.priority.desc(), QUEUE.c.enqueued_at, QUEUE.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
        )
        .values(
            worker_id=bindparam("b_worker_id", type_=String),
            locked_until=bindparam("b_locked_until"),
            attempt=QUEUE.c.attempt + 1,
        )
        .returning(QUEUE.c.task_id)
    )


_CLAIM_QUEUE = _claim_queue(bindparam("limit"))
_UPLOAD_PATHS = select(
    _FILES.c.task_id, _FILES.c.storage_type, _FILES.c.storage_path, _FILES.c.storage_bucket
).where(
    _FILES.c.task_id.in_(bindparam("ids", expanding=True)),
    _FILES.c.kind == FileKind.UPLOAD,
)


def _fenced(*conditions: Any, **values: Any) -> Any:
    """A transition of one attempt's task: the UPDATE runs only while the attempt owns
    the task (``_OWNED``), numbers the change (``event_seq + 1``, in SQL) and returns
    the new event's columns. Parameters: ``b_task_id``, ``b_attempt``, ``now``."""
    return (
        update(TASKS)
        .where(_OWNED, *conditions)
        .values(event_seq=TASKS.c.event_seq + 1, updated_at=bindparam("now"), **values)
        .returning(*_EVENT_COLUMNS_CORE)
    )


# The transitions of a claimed task (claim itself is _CLAIM_TASKS below, for many at once).
_PROGRESS = _fenced(
    TASKS.c.progress <= bindparam("b_progress"),
    progress=bindparam("b_progress"),
    stage=bindparam("b_stage"),
)
_COMPLETED = {
    "status": TaskStatus.COMPLETED,
    "progress": 100,
    "stage": "done",
    "completed_at": bindparam("now"),
    "error_message": None,
}
_COMPLETE = _fenced(result_url=bindparam("b_result_url"), **_COMPLETED)


def _completions(dialect: str) -> Any:
    """The attempts of a completion batch as a table ``v`` (``task_id``, ``attempt``,
    ``result_url``) from bound arrays: ``unnest`` of ``b_ids``, ``b_attempts`` and
    ``b_urls`` on PostgreSQL; on SQLite ``json_each`` of ``b_rows``, a JSON array of
    ``[task_id, attempt, result_url]``."""
    if dialect == "postgresql":
        return (
            func.unnest(
                bindparam("b_ids", type_=postgresql.ARRAY(String)),
                bindparam("b_attempts", type_=postgresql.ARRAY(Integer)),
                bindparam("b_urls", type_=postgresql.ARRAY(String)),
            )
            .table_valued("task_id", "attempt", "result_url")
            .render_derived(name="v")
        )
    each = func.json_each(bindparam("b_rows", type_=String)).table_valued("value")
    return select(
        func.json_extract(each.c.value, "$[0]").label("task_id"),
        func.json_extract(each.c.value, "$[1]").label("attempt"),
        func.json_extract(each.c.value, "$[2]").label("result_url"),
    ).subquery("v")


def _complete_many(dialect: str) -> Any:
    """``_COMPLETE`` for a whole batch in one statement: each task is completed only
    if the batch's attempt of it still owns it (``_OWNED``, joined on the batch)."""
    batch = _completions(dialect)
    return (
        update(TASKS)
        .where(
            TASKS.c.id == batch.c.task_id,
            TASKS.c.attempt == batch.c.attempt,
            TASKS.c.status == TaskStatus.PROCESSING,
        )
        .values(
            event_seq=TASKS.c.event_seq + 1,
            updated_at=bindparam("now"),
            result_url=batch.c.result_url,
            **_COMPLETED,
        )
        .returning(*_EVENT_COLUMNS_CORE, TASKS.c.attempt)
    )


_COMPLETE_MANY = {dialect: _complete_many(dialect) for dialect in ("postgresql", "sqlite")}
COMPLETED_MESSAGE = "Completed"
"""The log message of a completed attempt."""


def _logs_of(changed: Any, message: Any, details: Any) -> Any:
    """An INSERT of one info log row, at ``now``, per row of ``changed`` (a CTE that
    returns the ``id`` and ``attempt`` of the tasks a statement changed): ``message``
    and ``details`` are SQL expressions over its columns."""
    return insert(_LOGS).from_select(
        ["task_id", "attempt", "log_level", "message", "details", "created_at"],
        select(
            changed.c.id,
            changed.c.attempt,
            literal_column(f"'{LogLevel.INFO.value}'"),
            message,
            details,
            bindparam("now"),
        ),
    )


def _complete_many_pg() -> Any:
    """PostgreSQL: ``_COMPLETE_MANY``, the log rows of the attempts it completed and
    their events' ``pg_notify`` in one statement (the UPDATE and the INSERT as
    data-modifying CTEs). Parameters: those of ``_COMPLETE_MANY``, ``b_origin``."""
    done = _COMPLETE_MANY["postgresql"].cte("done")
    logged = _logs_of(done, literal_column(f"'{COMPLETED_MESSAGE}'"), null())
    notify = func.pg_notify(literal_column(f"'{EVENTS_CHANNEL}'"), _event_json(done.c))
    return select(*done.c, notify.label("notified")).add_cte(logged.cte("logged"))


_RESULT_ARRAYS = {
    "id": String, "task_id": String, "attempt": Integer, "result_file_path": String,
    "summary": Text, "quality_score": Float, "confidence_score": Float, "metrics": Text,
}  # fmt: skip
"""The ``task_results`` columns ``_FINISH_PG`` takes as arrays (``metrics``: JSON texts)."""


def _finish_pg() -> Any:
    """PostgreSQL: the completed attempts' results inserted (one array per column of
    ``_RESULT_ARRAYS``, parameters ``r_<column>``), their uploads kept until ``expires``
    (``_KEEP_UPLOAD_UNTIL``) and their queue rows deleted (``DEQUEUE``), in one
    statement. Parameters: those arrays, ``b_ids``, ``expires``, ``now``."""
    ids = any_(bindparam("b_ids", type_=postgresql.ARRAY(String)))
    rows = (
        func.unnest(
            *(bindparam(f"r_{name}", type_=postgresql.ARRAY(kind))
              for name, kind in _RESULT_ARRAYS.items())
        )
        .table_valued(*_RESULT_ARRAYS)
        .render_derived(name="r")
    )  # fmt: skip
    values = [cast(rows.c[n], JSON) if n == "metrics" else rows.c[n] for n in _RESULT_ARRAYS]
    resulted = insert(_RESULTS).from_select(
        [*_RESULT_ARRAYS, "created_at"],
        select(*values, bindparam("now", type_=_RESULTS.c.created_at.type)),
    )
    kept = (
        update(_FILES)
        .where(_FILES.c.task_id == ids, _FILES.c.kind == FileKind.UPLOAD)
        .values(expires_at=bindparam("expires"))
    )
    return (
        delete(QUEUE)
        .where(QUEUE.c.task_id == ids)
        .add_cte(resulted.cte("resulted"), kept.cte("kept"))
    )


_FINISH_PG = _finish_pg()
_RETRY = _fenced(  # after a failure, or a lease that ran out (``maintenance``)
    status=TaskStatus.PENDING,
    retry_count=TASKS.c.retry_count + 1,
    progress=0,
    stage=bindparam("b_stage"),
)
_FAIL = _fenced(
    status=TaskStatus.FAILED,
    stage="failed",
    completed_at=bindparam("now"),
    error_message=bindparam("b_error"),
)
_HAND_BACK = _fenced(status=TaskStatus.PENDING, progress=0, stage="queued", started_at=None)
_STILL_OWNED = select(TASKS.c.id).where(_OWNED)
_RELEASE = (
    update(QUEUE)
    .where(QUEUE.c.task_id == bindparam("b_task_id"))
    .values(worker_id=None, locked_until=None, available_at=bindparam("b_available_at"))
)
_EXPIRE_FILES = (
    update(_FILES)
    .where(_FILES.c.task_id == bindparam("b_task_id"))
    .values(expires_at=bindparam("expires"))
)
_KEEP_UPLOAD_UNTIL = (
    update(_FILES)
    .where(_FILES.c.task_id == bindparam("b_task_id"), _FILES.c.kind == FileKind.UPLOAD)
    .values(expires_at=bindparam("expires"))
)
# The one way out of the queue (completion, failure for good, cancel, a stale row).
DEQUEUE = delete(QUEUE).where(QUEUE.c.task_id == bindparam("b_task_id"))
_INSERT_LOG = insert(_LOGS)
_INSERT_FILE = insert(_FILES)
_INSERT_RESULT = insert(_RESULTS)


def _guarded(
    leaving: tuple[TaskStatus, ...],
    *,
    event: bool = True,
    which: Any = None,
    returning: tuple[Any, ...] = (),
    **values: Any,
) -> Any:
    """A transition not fenced by an attempt but by the statuses the task may leave,
    so of two concurrent requests (or claimers) only one matches: the user's, and the
    claim. With ``event`` it numbers the change (``event_seq + 1``, in SQL) like
    ``_fenced``. It returns the new event's columns, ``attempt`` and ``returning``.
    Parameters: ``now`` and ``b_task_id``, or what ``which`` (the tasks) binds."""
    if event:
        values["event_seq"] = TASKS.c.event_seq + 1
    status = TASKS.c.status
    return (
        update(TASKS)
        .where(
            TASKS.c.id == bindparam("b_task_id") if which is None else which,
            status == leaving[0] if len(leaving) == 1 else status.in_(leaving),
        )
        .values(updated_at=bindparam("now"), **values)
        .returning(*_EVENT_COLUMNS_CORE, TASKS.c.attempt, *returning)
    )


# The user's transitions (``app.services.tasks``).
CANCEL = _guarded(  # bumps the attempt: a running attempt is fenced out
    (TaskStatus.PENDING, TaskStatus.PROCESSING),
    status=TaskStatus.CANCELLED,
    attempt=TASKS.c.attempt + 1,
    stage="cancelled",
    completed_at=bindparam("now"),
)
RETRY_BY_USER = _guarded(
    (TaskStatus.FAILED, TaskStatus.CANCELLED),
    status=TaskStatus.PENDING,
    retry_count=0,
    progress=0,
    stage="queued",
    error_message=None,
    result_url=None,
    started_at=None,
    completed_at=None,
)
REPRIORITISE = _guarded((TaskStatus.PENDING,), event=False, priority=bindparam("b_priority"))
# The claim starts many tasks at once (their queue rows taken by _CLAIM_QUEUE).
_STARTED: dict[str, Any] = {
    "status": TaskStatus.PROCESSING,
    "attempt": TASKS.c.attempt + 1,
    "progress": 0,
    "stage": "starting",
    "started_at": bindparam("now"),
    "completed_at": None,
}
_CLAIM_RETURNS = (TASKS.c.processor, TASKS.c.retry_count, TASKS.c.max_retries)
_CLAIM_TASKS = _guarded(
    (TaskStatus.PENDING,),
    which=TASKS.c.id.in_(bindparam("ids", expanding=True)),
    returning=_CLAIM_RETURNS,
    **_STARTED,
)


def _event_json(row: Any) -> Any:
    """``TaskEvent.to_json`` of this process, built in SQL from a row of the event's
    columns (``_EVENT_COLUMNS``): the same keys and values, for a NOTIFY sent by the
    statement that made the change."""
    error = row.error_message
    shortened = func.left(error, MAX_ERROR_LENGTH - 1).op("||")(literal("\u2026"))
    return cast(
        func.json_build_object(
            literal_column("'origin'"), bindparam("b_origin", type_=String),
            literal_column("'task_id'"), row.id,
            literal_column("'owner_id'"), row.owner_id,
            literal_column("'seq'"), row.event_seq,
            literal_column("'status'"), row.status,
            literal_column("'progress'"), row.progress,
            literal_column("'stage'"), row.stage,
            literal_column("'result_url'"), row.result_url,
            literal_column("'error_message'"),
            case((func.length(error) > MAX_ERROR_LENGTH, shortened), else_=error),
        ),
        Text,
    )  # fmt: skip


def _any_of(column: Any) -> Any:
    """``= ANY`` of a CTE's column gathered into one array: an index lookup per value
    whatever the table's statistics say (``IN (SELECT …)`` of a CTE, whose size the
    planner cannot know, let stale statistics pick a scan of every pending task)."""
    gathered = select(func.array_agg(column)).scalar_subquery()
    return any_(cast(gathered, postgresql.ARRAY(String)))  # the array, not the subquery's rows


@functools.cache
def _claim_pg(limit: int) -> Any:
    """PostgreSQL: the whole claim of up to ``limit`` tasks in one statement (one round
    trip). The queue rows (``_CLAIM_QUEUE``), their tasks started (``_CLAIM_TASKS``)
    and the attempts' log rows are data-modifying CTEs; the SELECT returns one row per
    claimed queue row with its task's new state and upload (NULLs where the task had
    left ``pending``: a stale queue row) and sends each started task's event with
    ``pg_notify``. The LIMIT is written into the statement (one prepared statement
    per size, up to the pool's concurrency): PostgreSQL then plans it once and
    reuses the plan. Parameters: those of ``_CLAIM_QUEUE``, ``b_origin``."""
    queued = _claim_queue(literal_column(str(int(limit)), Integer)).cte("queued")
    started = (
        update(TASKS)
        .where(TASKS.c.id == _any_of(queued.c.task_id), TASKS.c.status == TaskStatus.PENDING)
        .values(updated_at=bindparam("now"), event_seq=TASKS.c.event_seq + 1, **_STARTED)
        .returning(*_EVENT_COLUMNS_CORE, TASKS.c.attempt, *_CLAIM_RETURNS)
        .cte("started")
    )
    logged = _logs_of(
        started,
        literal_column("'Started attempt '").op("||")(cast(started.c.attempt, String)),
        func.json_build_object(literal_column("'worker_id'"), bindparam("b_worker_id")),
    )
    upload = (
        select(_FILES.c.task_id, _FILES.c.storage_type, _FILES.c.storage_path,
               _FILES.c.storage_bucket)
        .where(_FILES.c.task_id == _any_of(started.c.id), _FILES.c.kind == FileKind.UPLOAD)
        .ext(postgresql.distinct_on(_FILES.c.task_id))
        .cte("upload")
    )  # fmt: skip
    channel: Any = literal_column(f"'{EVENTS_CHANNEL}'")
    notify = case((started.c.id.is_not(None), func.pg_notify(channel, _event_json(started.c))))
    return (
        select(
            queued.c.task_id.label("queued_id"),
            *started.c,
            upload.c.storage_type,
            upload.c.storage_path,
            upload.c.storage_bucket,
            notify.label("notified"),
        )
        .select_from(
            queued.outerjoin(started, started.c.id == queued.c.task_id).outerjoin(
                upload, upload.c.task_id == started.c.id
            )
        )
        .add_cte(logged.cte("logged"))
    )


_COMPLETE_PG = _complete_many_pg()


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


async def transition(
    session: AsyncSession,
    statement: Any,
    task_id: str,
    attempt: int,
    log: dict[str, Any] | None = None,
    **parameters: Any,
) -> Row[*tuple[Any, ...]] | None:
    """Run one fenced transition of ``attempt``'s task; None (nothing written) if the
    attempt no longer owns it. Otherwise its log row (``_log_row``) is written and its
    event queued for delivery on commit. Every change of a claimed task goes through
    here: progress, completion, retry, failure, hand-back and reclaim (the user's
    transitions go through ``user_transition``, the same way). ``now`` may be
    given among ``parameters`` (the transition's time); it defaults to the present."""
    [row] = await transitions(session, statement, [(task_id, attempt, log, parameters)])
    return row


async def user_transition(
    session: AsyncSession,
    statement: Any,
    task_id: str,
    message: str | None = None,
    *,
    event: bool = True,
    **parameters: Any,
) -> Row[*tuple[Any, ...]] | None:
    """Run one transition a user asked for (``CANCEL``, ``RETRY_BY_USER``,
    ``REPRIORITISE``); None (nothing written) if the task is in no status it may
    leave. Otherwise ``message`` is logged under the task's (new) attempt and, with
    ``event``, the change's event queued for delivery on commit."""
    bound = {"b_task_id": task_id, "now": utcnow(), **parameters}
    return await _apply(
        session, statement, bound,
        (lambda row: _log_row(task_id, row.attempt, message)) if message else None,
        event=event,
    )  # fmt: skip


Change = tuple[str, int, dict[str, Any] | None, dict[str, Any]]
"""One fenced transition: the task id, the attempt, its log row and its parameters."""


async def transitions(
    session: AsyncSession, statement: Any, changes: list[Change]
) -> list[Row[*tuple[Any, ...]] | None]:
    """``transition`` for several attempts in one transaction: ``changes`` holds each
    one's task id, attempt, log row and parameters. The fenced UPDATEs run one by one
    (each row stays locked until commit), then the log rows of those that matched are
    written in one INSERT and their events queued with one NOTIFY. The rows, in order,
    None where the attempt no longer owned its task."""
    now = utcnow()
    rows: list[Row[*tuple[Any, ...]] | None] = []
    for task_id, attempt, _log, parameters in changes:
        bound = {"b_task_id": task_id, "b_attempt": attempt, "now": now, **parameters}
        rows.append((await session.execute(statement, bound)).first())
    return await _transitioned(session, changes, rows)


async def complete_transitions(
    session: AsyncSession, changes: list[Change]
) -> list[Row[*tuple[Any, ...]] | None]:
    """``transitions`` with ``_COMPLETE`` (parameter ``b_result_url``), its fenced
    UPDATEs as one statement for the whole batch (``_COMPLETE_MANY``); on PostgreSQL
    that statement also writes the log rows (``COMPLETED_MESSAGE``) and sends the
    events (``_COMPLETE_PG``)."""
    dialect = session.get_bind().dialect.name
    urls = [change[3]["b_result_url"] for change in changes]
    if dialect == "postgresql":
        bound: dict[str, Any] = {
            "b_ids": [change[0] for change in changes],
            "b_attempts": [change[1] for change in changes],
            "b_urls": urls,
            "b_origin": PROCESS_ID,
        }
        statement = _COMPLETE_PG
    else:
        triples = [[change[0], change[1], url] for change, url in zip(changes, urls, strict=True)]
        bound = {"b_rows": json.dumps(triples)}
        statement = _COMPLETE_MANY[dialect]
    result = await session.execute(statement, {"now": utcnow(), **bound})
    updated = {(row.id, row.attempt): row for row in result}
    rows = [updated.get((change[0], change[1])) for change in changes]
    if dialect != "postgresql":
        return await _transitioned(session, changes, rows)
    deliver_locally(session, [TaskEvent.from_task(row) for row in rows if row is not None])
    await outbox.record(session, rows)  # the webhooks of those now final, if any
    return rows


async def _transitioned(
    session: AsyncSession, changes: list[Change], rows: list[Row[*tuple[Any, ...]] | None]
) -> list[Row[*tuple[Any, ...]] | None]:
    """Write the log rows and queue the events of the ``changes`` whose UPDATE matched
    (their ``rows``, in order; None where it did not)."""
    kept = [(row, change[2]) for row, change in zip(rows, changes, strict=True) if row is not None]
    logs = [log for _row, log in kept if log is not None]
    if logs:
        await session.execute(_INSERT_LOG, logs)
    await publish_events(session, [TaskEvent.from_task(row) for row, _log in kept])
    await outbox.record(session, rows)  # the webhooks of those now final, if any
    return rows


async def _apply(
    session: AsyncSession,
    statement: Any,
    parameters: dict[str, Any],
    log: dict[str, Any] | Callable[[Row[*tuple[Any, ...]]], dict[str, Any]] | None,
    *,
    event: bool = True,
) -> Row[*tuple[Any, ...]] | None:
    row = (await session.execute(statement, parameters)).first()
    if row is None:
        return None
    if log is not None:
        await session.execute(_INSERT_LOG, log(row) if callable(log) else log)
    if event:
        await publish_event(session, TaskEvent.from_task(row))
    await outbox.record(session, [row])  # the webhooks of a cancel, if any
    return row


async def claim(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, worker_id: str, limit: int
) -> list[Claimed]:
    """Take up to ``limit`` tasks, highest priority first then oldest, in one transaction:
    their queue rows claimed, their tasks started, their upload paths read, their log
    rows written and their events sent. On PostgreSQL that is one statement
    (``_claim_pg``); on SQLite one UPDATE claims the queue rows, one starts their
    tasks, then their upload paths are read and their log rows written in one INSERT.

    PostgreSQL skips rows other claimers hold (FOR UPDATE SKIP LOCKED); SQLite
    runs the same statements under its single writer.
    """
    now = utcnow()
    parameters = {
        "now": now,
        "b_worker_id": worker_id,
        "b_locked_until": now + timedelta(seconds=settings.task_lease_seconds),
    }
    async with sessions() as session, session.begin():
        if session.get_bind().dialect.name == "postgresql":
            found = await session.execute(_claim_pg(limit), {**parameters, "b_origin": PROCESS_ID})
            started: list[Any] = []
            stale: set[str] = set()
            for row in found:
                if row.id is None:
                    stale.add(row.queued_id)
                else:
                    started.append(row)
            uploads = {row.id: _upload_locator(row) for row in started}
            deliver_locally(session, [TaskEvent.from_task(row) for row in started])
        else:
            queued = (
                (await session.execute(_CLAIM_QUEUE, {**parameters, "limit": limit}))
                .scalars()
                .all()
            )
            if not queued:
                return []
            started = list(await session.execute(_CLAIM_TASKS, {"ids": queued, "now": now}))
            stale = set(queued) - {row.id for row in started}
            ids = [row.id for row in started]
            uploads = {
                row.task_id: _upload_locator(row)
                for row in (await session.execute(_UPLOAD_PATHS, {"ids": ids}) if ids else ())
            }
            if started:
                await session.execute(
                    _INSERT_LOG,
                    [
                        _log_row(row.id, row.attempt, f"Started attempt {row.attempt}",
                                 worker_id=worker_id)
                        for row in started
                    ],
                )  # fmt: skip
                await publish_events(session, [TaskEvent.from_task(row) for row in started])
        if stale:  # the task left "pending" meanwhile: its queue row is obsolete
            await session.execute(DEQUEUE, [{"b_task_id": task_id} for task_id in stale])
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


def _upload_locator(row: Any) -> str:
    """Where a claimed task's upload is (``storage.Stored.locator``); "" without one."""
    if row.storage_type is None:
        return ""
    return storage.Stored.from_row(row.storage_type, row.storage_path, row.storage_bucket).locator


def clamp_progress(percent: int) -> int:
    """The one clamp of what a processor reports: 0-100 (the column's CHECK)."""
    return max(0, min(100, percent))


async def report_progress(
    sessions: async_sessionmaker[AsyncSession], claimed: Claimed, percent: int, stage: str
) -> bool:
    """Write progress, clamped to 0-100 and never lower than what is stored. False if the
    attempt was fenced out."""
    async with sessions() as session, session.begin():
        row = await transition(
            session, _PROGRESS, claimed.task_id, claimed.attempt,
            b_progress=clamp_progress(percent), b_stage=stage[:64],
        )  # fmt: skip
        if row is not None:
            return True
        owned = {"b_task_id": claimed.task_id, "b_attempt": claimed.attempt}
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
    """Publish one attempt's files and result: ``complete_many`` of one."""
    [done] = await complete_many(sessions, settings, [(claimed, output, attempt_dir)])
    return done


async def complete_many(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    finished: list[tuple[Claimed, ProcessorOutput, Path]],
) -> list[bool]:
    """Publish the files and results of several finished attempts in one transaction,
    each fenced: False (and nothing written for it) where an attempt was fenced out.

    The fenced UPDATEs come first, so the rows stay locked (PostgreSQL) or the
    database write-locked (SQLite) while files move into ``results/``. If a move
    fails (``OSError``), the whole transaction rolls back, the files already moved
    go back to their attempt directories (so each attempt can be completed again
    on its own) and the error is raised: nothing of any attempt was kept.
    """
    now = utcnow()
    expires = now + timedelta(days=settings.result_ttl_days)
    changes: list[Change] = []
    for claimed, output, _ in finished:
        first = output.files[0].name if output.files else None
        url = storage.file_url(claimed.task_id, first) if first else None
        log = _log_row(claimed.task_id, claimed.attempt, COMPLETED_MESSAGE)
        changes.append((claimed.task_id, claimed.attempt, log, {"b_result_url": url}))
    moved: list[tuple[Path, Path]] = []
    uploaded: list[storage.Stored] = []  # STORAGE_BACKEND=s3: put in the bucket
    async with sessions() as session, session.begin():
        rows = await complete_transitions(session, changes)
        owned = [item for item, row in zip(finished, rows, strict=True) if row is not None]
        if not owned:
            return [False] * len(finished)
        files: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        try:
            for claimed, output, attempt_dir in owned:
                published: list[storage.Stored] = []
                for produced in output.files:
                    source = attempt_dir / produced.name
                    size, checksum = await anyio.to_thread.run_sync(_file_facts, source)
                    stored = await storage.publish_result(
                        settings, claimed.task_id, source, produced.name
                    )
                    published.append(stored)
                    if stored.backend == storage.LOCAL:
                        moved.append((source, storage.local_path(settings, stored)))
                    else:
                        uploaded.append(stored)
                    files.append(
                        {
                            "task_id": claimed.task_id,
                            "kind": FileKind.RESULT,
                            "name": produced.name,
                            "storage_type": stored.backend,
                            "storage_bucket": stored.bucket,
                            "storage_path": stored.key,
                            "size": size,
                            "content_type": produced.content_type,
                            "checksum": checksum,
                            "created_at": now,
                            "expires_at": expires,
                        }
                    )
                results.append(
                    {
                        "task_id": claimed.task_id,
                        "attempt": claimed.attempt,
                        "result_file_path": published[0].key if published else None,
                        "summary": output.summary,
                        "quality_score": output.quality_score,
                        "confidence_score": output.confidence_score,
                        "metrics": output.metrics,
                        "created_at": now,
                    }
                )
            if files:
                await session.execute(_INSERT_FILE, files)
            ids = [claimed.task_id for claimed, _, _ in owned]
            if session.get_bind().dialect.name == "postgresql":
                await session.execute(
                    _FINISH_PG, {"b_ids": ids, "expires": expires, "now": now, **_arrays(results)}
                )
            else:
                await session.execute(_INSERT_RESULT, results)
                done = [{"b_task_id": task_id, "expires": expires} for task_id in ids]
                await session.execute(_KEEP_UPLOAD_UNTIL, done)
                await session.execute(DEQUEUE, [{"b_task_id": task_id} for task_id in ids])
        except BaseException:
            await _put_back(moved)
            await storage.remove_uploaded(settings, uploaded)  # their sources stay in place
            raise
    return [row is not None for row in rows]


def _arrays(results: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The result rows as ``_FINISH_PG``'s arrays, a new id for each."""
    arrays: dict[str, list[Any]] = {f"r_{name}": [] for name in _RESULT_ARRAYS}
    for row in results:
        arrays["r_id"].append(new_id())
        for name in _RESULT_ARRAYS:
            if name == "metrics":
                arrays["r_metrics"].append(json.dumps(row["metrics"]))
            elif name != "id":
                arrays[f"r_{name}"].append(row[name])
    return arrays


async def _put_back(moved: list[tuple[Path, Path]]) -> None:
    """Undo the moves of a completion that was not kept: each file back to its attempt
    directory (or, if that fails too, removed), then the emptied results directories."""
    for source, target in reversed(moved):
        try:
            await storage.move(target, source)
        except OSError:
            await storage.remove(target)
    await storage.remove(*{target.parent for _, target in moved})


async def fail(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    claimed: Claimed,
    message: str,
    *,
    retryable: bool,
) -> str | None:
    """Retry later (with backoff) or fail for good. The new status, or None if fenced out."""
    delay = RetryPolicy.of(settings).retry_in(
        claimed.retry_count, claimed.max_retries, retryable=retryable
    )
    async with sessions() as session, session.begin():
        if delay is not None:
            retried = await retry_later(
                session, claimed.task_id, claimed.attempt, delay, stage="retrying",
                message=f"Attempt {claimed.attempt} failed: {message} Retrying in {delay:.1f} s "
                f"(retry {claimed.retry_count + 1} of {claimed.max_retries}).",
            )  # fmt: skip
            return TaskStatus.PENDING if retried else None
        final = (
            message
            if not retryable
            else f"{message} (gave up after {_attempts(claimed.retry_count + 1)})"
        )
        failed = await fail_for_good(session, settings, claimed.task_id, claimed.attempt, final)
        return TaskStatus.FAILED if failed else None


def _attempts(count: int) -> str:
    return "1 attempt" if count == 1 else f"{count} attempts"


async def retry_later(
    session: AsyncSession, task_id: str, attempt: int, delay: float, *, stage: str, message: str
) -> bool:
    """Back to ``pending`` with one retry more, claimable after ``delay`` seconds."""
    row = await transition(
        session, _RETRY, task_id, attempt,
        _log_row(task_id, attempt, message, LogLevel.WARNING), b_stage=stage,
    )  # fmt: skip
    if row is None:
        return False
    available_at = utcnow() + timedelta(seconds=delay)
    await session.execute(_RELEASE, {"b_task_id": task_id, "b_available_at": available_at})
    return True


async def fail_for_good(
    session: AsyncSession, settings: Settings, task_id: str, attempt: int, message: str
) -> bool:
    """``failed``: out of the queue, its files kept for ``RESULT_TTL_DAYS``."""
    row = await transition(
        session, _FAIL, task_id, attempt,
        _log_row(task_id, attempt, f"Failed: {message}", LogLevel.ERROR), b_error=message,
    )  # fmt: skip
    if row is None:
        return False
    await session.execute(DEQUEUE, {"b_task_id": task_id})
    expires = utcnow() + timedelta(days=settings.result_ttl_days)
    await session.execute(_EXPIRE_FILES, {"b_task_id": task_id, "expires": expires})
    return True


async def hand_back(sessions: async_sessionmaker[AsyncSession], claimed: Claimed) -> bool:
    """Return an unfinished attempt to the queue at once, without counting a retry."""
    message = "Handed back to the queue: the worker stopped"
    async with sessions() as session, session.begin():
        row = await transition(
            session, _HAND_BACK, claimed.task_id, claimed.attempt,
            _log_row(claimed.task_id, claimed.attempt, message),
        )  # fmt: skip
        if row is None:
            return False
        await session.execute(_RELEASE, {"b_task_id": claimed.task_id, "b_available_at": utcnow()})
        return True
