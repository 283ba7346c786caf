"""The outbox: deliveries written in the transaction of the task's final transition.

``record`` is the one call the state machine makes (``app.queue.attempts``): a
delivery exists exactly when the final status it announces was committed, and
sending it is left to the delivery loop, so the completion never waits for a
receiver. When nobody listens it costs one SELECT and wakes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Row, bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.database import bus_of, on_commit
from app.models import Batch, Task, TaskStatus, WebhookDelivery, WebhookEndpoint
from app.models.base import table_of, utcnow
from app.schemas.task import TaskRead
from app.webhooks import signing

TASK_EVENTS = {
    TaskStatus.COMPLETED: "task.completed",
    TaskStatus.FAILED: "task.failed",
    TaskStatus.CANCELLED: "task.cancelled",
}
BATCH_COMPLETED = "batch.completed"


@dataclass(frozen=True, slots=True)
class DeliveriesRecorded:
    """On the process's bus once a transaction that wrote deliveries has committed: the
    delivery loop wakes (other processes' loops find them at their next poll)."""


DELIVERIES_RECORDED = DeliveriesRecorded()
EVENTS = (*TASK_EVENTS.values(), BATCH_COMPLETED)


TASKS = table_of(Task)
_BATCHES = table_of(Batch)
_ENDPOINTS = table_of(WebhookEndpoint)
_DELIVERIES = table_of(WebhookDelivery)
# Each finished task with its callback URLs and every endpoint of its owner (or none).
_RECEIVERS = (
    select(
        TASKS.c.id,
        TASKS.c.owner_id,
        TASKS.c.batch_id,
        TASKS.c.callback_url,
        _BATCHES.c.callback_url.label("batch_callback_url"),
        _ENDPOINTS.c.id.label("endpoint_id"),
        _ENDPOINTS.c.url.label("endpoint_url"),
        _ENDPOINTS.c.events,
    )
    .select_from(
        TASKS.outerjoin(_BATCHES, _BATCHES.c.id == TASKS.c.batch_id).outerjoin(
            _ENDPOINTS, _ENDPOINTS.c.owner_id == TASKS.c.owner_id
        )
    )
    .where(TASKS.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(TASKS.c.id, _ENDPOINTS.c.created_at, _ENDPOINTS.c.id)
)
_TASK_ROWS = select(TASKS).where(TASKS.c.id.in_(bindparam("ids", expanding=True)))
_LOCK_BATCH = (
    select(_BATCHES.c.id).where(_BATCHES.c.id == bindparam("b_batch_id")).with_for_update()
)
_BATCH_TASKS = (
    select(TASKS)
    .where(TASKS.c.batch_id == bindparam("b_batch_id"))
    .order_by(TASKS.c.uploaded_at, TASKS.c.id)
)
_INSERT = insert(_DELIVERIES)


def body(event: str, data: dict[str, Any], at: datetime) -> str:
    """The JSON sent: ``{"type", "timestamp", "data"}`` (the Standard Webhooks shape)."""
    document = {"type": event, "timestamp": at.isoformat().replace("+00:00", "Z"), "data": data}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def task_data(row: Any) -> dict[str, Any]:
    """The task as ``GET /api/v1/tasks/{id}`` returns it."""
    return TaskRead.model_validate(row).model_dump(mode="json")


def batch_data(batch_id: str, tasks: Sequence[Any]) -> dict[str, Any]:
    """The batch as ``GET /api/v1/batches/{id}`` returns it."""
    by_status = {status.value: 0 for status in TaskStatus}
    for task in tasks:
        by_status[task.status] += 1
    progress = round(sum(t.progress for t in tasks) / len(tasks), 2) if tasks else 0.0
    return {
        "id": batch_id,
        "total": len(tasks),
        "by_status": by_status,
        "progress": progress,
        "tasks": [task_data(task) for task in tasks],
    }


def _delivery(
    owner_id: str, endpoint_id: str | None, url: str, event: str, subject_id: str, payload: str,
    now: datetime,
) -> dict[str, Any]:  # fmt: skip
    return {
        "owner_id": owner_id,
        "endpoint_id": endpoint_id,
        "url": url,
        "message_id": signing.new_message_id(),
        "event": event,
        "subject_id": subject_id,
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "deadline_at": None,  # WEBHOOK_RETRY_WINDOW_SECONDS after created_at
        "created_at": now,
    }


Receiver = tuple[str | None, str]
"""An endpoint's id and URL, or None and a callback URL."""


def _receivers(
    found: Sequence[Any], finals: dict[str, str]
) -> tuple[dict[str, list[Receiver]], dict[str, tuple[str, list[Receiver]]]]:
    """Who gets each task's event, and each batch's ``batch.completed`` (with its owner),
    from ``_RECEIVERS``' rows (a task once per endpoint of its owner)."""
    wanted: dict[str, list[Receiver]] = {}
    batches: dict[str, tuple[str, list[Receiver]]] = {}
    for row in found:
        receivers = wanted.setdefault(row.id, [])
        if row.callback_url and (None, row.callback_url) not in receivers:
            receivers.append((None, row.callback_url))
        endpoint = (row.endpoint_id, row.endpoint_url)
        if row.endpoint_id is not None and finals[row.id] in row.events:
            receivers.append(endpoint)
        if row.batch_id is None:
            continue
        _owner, for_batch = batches.setdefault(row.batch_id, (row.owner_id, []))
        if row.batch_callback_url and (None, row.batch_callback_url) not in for_batch:
            for_batch.append((None, row.batch_callback_url))
        subscribed = row.endpoint_id is not None and BATCH_COMPLETED in row.events
        if subscribed and endpoint not in for_batch:
            for_batch.append(endpoint)
    return wanted, batches


async def record(session: AsyncSession, rows: Sequence[Row[Any] | None]) -> int:
    """Write the deliveries of the tasks among ``rows`` (the state machine's RETURNING
    rows: ``id``, ``status``) whose new status is final, in ``session``'s transaction:
    one per endpoint of the owner that wants the event and one to the task's
    ``callback_url``; and ``batch.completed`` when the batch's last task finished.
    The number of deliveries written.

    On PostgreSQL a batch row is locked (FOR UPDATE, in id order) before its tasks are
    counted, so of two transactions finishing a batch's last tasks the second sees the
    first's commit and exactly one writes ``batch.completed``.
    """
    finals = {
        row.id: TASK_EVENTS[row.status]
        for row in rows
        if row is not None and row.status in TASK_EVENTS
    }
    if not finals:
        return 0
    found = (await session.execute(_RECEIVERS, {"ids": list(finals)})).all()
    wanted, batches = _receivers(found, finals)
    owners = {row.id: row.owner_id for row in found}
    now = utcnow()
    deliveries: list[dict[str, Any]] = []
    ids = [task_id for task_id, receivers in wanted.items() if receivers]
    if ids:
        for task in await session.execute(_TASK_ROWS, {"ids": ids}):
            payload = body(finals[task.id], task_data(task), now)
            deliveries.extend(
                _delivery(owners[task.id], endpoint_id, url, finals[task.id], task.id, payload, now)
                for endpoint_id, url in wanted[task.id]
            )
    for batch_id in sorted(batches):
        owner_id, receivers = batches[batch_id]
        if not receivers:
            continue
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(_LOCK_BATCH, {"b_batch_id": batch_id})
        tasks = (await session.execute(_BATCH_TASKS, {"b_batch_id": batch_id})).all()
        if not all(TaskStatus(task.status).is_terminal for task in tasks):
            continue
        payload = body(BATCH_COMPLETED, batch_data(batch_id, tasks), now)
        deliveries.extend(
            _delivery(owner_id, endpoint_id, url, BATCH_COMPLETED, batch_id, payload, now)
            for endpoint_id, url in receivers
        )
    if deliveries:
        await session.execute(_INSERT, deliveries)
        on_commit(session, partial(bus_of(session).publish, DELIVERIES_RECORDED))
    return len(deliveries)
