"""Publishing task events, tied to the transaction that made the change.

``publish_event(session, event)`` delivers an event only if and when the
session's transaction commits. The event is numbered by the statement that
made the change (``event_seq = event_seq + 1`` in SQL, returned with the
event's columns), never in Python. Delivery goes:

- to this process's event bus (``app.events.bus``: the hub that feeds
  WebSocket and SSE clients, the worker pool), by the unit of work's
  ``on_commit`` (``app.database``);
- on PostgreSQL the event is also sent with ``pg_notify`` inside the same
  transaction, so other processes' listeners receive it exactly on commit
  (see ``app.events.listener``); a process ignores its own notifications.

A rolled-back change publishes nothing.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.database import bus_of, on_commit

EVENTS_CHANNEL = "ntm_task_events"
QUEUE_CHANNEL = "ntm_queue"
PROCESS_ID = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
MAX_ERROR_LENGTH = 1000  # keeps a NOTIFY payload far below PostgreSQL's 8000 bytes
OWN_PREFIX = json.dumps({"origin": PROCESS_ID}, separators=(",", ":"))[:-1] + ","
"""How every payload this process sends begins (``TaskEvent.to_json``): its listener
drops its own events by this prefix, before any parsing."""


class TaskState(Protocol):
    """What an event is made of: a ``Task``, or a row with the same columns."""

    @property
    def id(self) -> str: ...
    @property
    def owner_id(self) -> str: ...
    @property
    def event_seq(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def progress(self) -> int: ...
    @property
    def stage(self) -> str: ...
    @property
    def result_url(self) -> str | None: ...
    @property
    def error_message(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """A task's state after a change: the ``task_update`` payload plus routing."""

    task_id: str
    owner_id: str
    seq: int
    status: str
    progress: int
    stage: str
    result_url: str | None
    error_message: str | None

    @classmethod
    def from_task(cls, task: TaskState) -> TaskEvent:
        """The event for a task's current state (a loaded ``Task`` or a row of its columns)."""
        error = task.error_message
        if error is not None and len(error) > MAX_ERROR_LENGTH:
            error = error[: MAX_ERROR_LENGTH - 1] + "…"
        return cls(
            task_id=task.id,
            owner_id=task.owner_id,
            seq=task.event_seq,
            status=task.status,
            progress=task.progress,
            stage=task.stage,
            result_url=task.result_url,
            error_message=error,
        )

    def to_message(self) -> dict[str, Any]:
        """The WebSocket/SSE ``task_update`` message."""
        return {
            "type": "task_update",
            "task_id": self.task_id,
            "status": self.status,
            "progress": self.progress,
            "stage": self.stage,
            "result_url": self.result_url,
            "error_message": self.error_message,
        }

    def message_text(self) -> str:
        """``to_message()`` as JSON, computed once per event however many clients get it."""
        text = _MESSAGE_TEXT.get(self)
        if text is None:
            text = json.dumps(self.to_message(), separators=(",", ":"))
            if len(_MESSAGE_TEXT) >= 4096:
                _MESSAGE_TEXT.clear()
            _MESSAGE_TEXT[self] = text
        return text

    def to_json(self, origin: str = PROCESS_ID) -> str:
        return json.dumps({"origin": origin, **asdict(self)}, separators=(",", ":"))

    @classmethod
    def from_json(cls, payload: str) -> tuple[str, TaskEvent]:
        data = json.loads(payload)
        origin = data.pop("origin", "")
        return origin, cls(**data)


_MESSAGE_TEXT: dict[TaskEvent, str] = {}
"""Recent events' message texts (events are frozen and hashable; bounded)."""


_NOTIFY_ONE = text("SELECT pg_notify(:channel, :payload)")
_NOTIFY_MANY = text(
    "SELECT pg_notify(:channel, payload) FROM unnest(CAST(:payloads AS text[])) AS payload"
)


async def publish_event(session: AsyncSession, task_event: TaskEvent) -> None:
    """Deliver an already numbered event when ``session`` commits (see the module doc)."""
    await publish_events(session, [task_event])


def deliver_locally(session: AsyncSession, task_events: list[TaskEvent]) -> None:
    """Deliver events to this process's bus when ``session`` commits, and nowhere else:
    for a statement that sent their NOTIFY itself (``TaskEvent.to_json`` built in SQL)."""
    if task_events:
        on_commit(session, partial(bus_of(session).publish_all, task_events))


async def publish_events(session: AsyncSession, task_events: list[TaskEvent]) -> None:
    """:func:`publish_event` for several events, with one NOTIFY statement on PostgreSQL."""
    if not task_events:
        return
    deliver_locally(session, task_events)
    if session.get_bind().dialect.name != "postgresql":
        return
    if len(task_events) == 1:
        parameters = {"channel": EVENTS_CHANNEL, "payload": task_events[0].to_json()}
        await session.execute(_NOTIFY_ONE, parameters)
    else:
        payloads = [task_event.to_json() for task_event in task_events]
        await session.execute(_NOTIFY_MANY, {"channel": EVENTS_CHANNEL, "payloads": payloads})
