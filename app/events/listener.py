"""One LISTEN connection per process on PostgreSQL, for the queue and task events.

- ``ntm_queue``: a task was enqueued somewhere: ``on_task_pending()``;
- ``ntm_task_events``: a task changed in another process:
  ``on_task_event(event)``; an event of a ``pending`` task also means it can be
  claimed: ``on_task_pending()`` (an upload sends only its event, not a
  ``ntm_queue`` notification as well). Events this process published itself
  were already delivered locally and are skipped.

The process's runtime (``app.runtime``) injects both handlers: they publish
on its event bus.

The connection is dedicated (outside the pool) and comes back by itself with
backoff when it drops (database restart, terminated backend); after a
reconnect ``on_task_pending()`` and the ``on_reconnect`` callbacks run,
because notifications sent meanwhile were lost: workers look for work, live
clients re-read state.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from app.events.publish import EVENTS_CHANNEL, OWN_PREFIX, PROCESS_ID, QUEUE_CHANNEL, TaskEvent
from app.log import get_logger

log = get_logger(__name__)

ReconnectHook = Callable[[], Awaitable[None]]


class PgListener:
    def __init__(
        self,
        database_url: str,
        *,
        on_task_event: Callable[[TaskEvent], None],
        on_task_pending: Callable[[], None],
        max_backoff: float = 5.0,
    ) -> None:
        self._on_task_event = on_task_event
        self._on_task_pending = on_task_pending
        url = make_url(database_url)
        self._connect_args: dict[str, Any] = {
            "host": url.host,
            "port": url.port or 5432,
            "user": url.username,
            "password": url.password,
            "database": url.database,
        }
        self._max_backoff = max_backoff
        self._connection: asyncpg.Connection | None = None
        self._runner: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._stopping = False
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.lost_at: datetime | None = None
        """When the connection last dropped (notifications after it were missed)."""
        self.on_reconnect: list[ReconnectHook] = []

    async def start(self) -> None:
        """Connect (waiting for the first connection) and keep the connection up."""
        self._runner = asyncio.create_task(self._run(), name="pg-listener")
        await asyncio.wait_for(self.connected.wait(), timeout=30)

    async def stop(self) -> None:
        self._stopping = True
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        await self._close()

    @property
    def backend_pid(self) -> int | None:
        return None if self._connection is None else self._connection.get_server_pid()

    async def _run(self) -> None:
        backoff = 0.1
        first = True
        while not self._stopping:
            try:
                await self._connect()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("listener_connect_failed", error=str(exc), retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            backoff = 0.1
            if not first:
                self.reconnects += 1
                log.info("listener_reconnected", reconnects=self.reconnects)
                await self._after_reconnect()
            first = False
            self.connected.set()
            await self._lost.wait()
            self.connected.clear()
            await self._close()

    async def _connect(self) -> None:
        self._lost.clear()
        connection = await asyncpg.connect(**self._connect_args)
        connection.add_termination_listener(self._on_terminated)
        await connection.add_listener(QUEUE_CHANNEL, self._on_queue)
        await connection.add_listener(EVENTS_CHANNEL, self._on_event)
        self._connection = connection

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            with contextlib.suppress(Exception):
                await connection.close(timeout=2)

    async def _after_reconnect(self) -> None:
        self._on_task_pending()
        for hook in list(self.on_reconnect):
            try:
                await hook()
            except Exception:
                log.exception("listener_reconnect_hook_failed")

    def _on_terminated(self, _connection: Any) -> None:
        self.lost_at = datetime.now(UTC)
        if not self._stopping:
            log.warning("listener_connection_lost")
        self._lost.set()

    def _on_queue(self, *_: Any) -> None:
        self._on_task_pending()

    def _on_event(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload.startswith(OWN_PREFIX):  # this process's own event: it has it already
            return
        try:
            origin, task_event = TaskEvent.from_json(payload)
        except (ValueError, TypeError):
            log.warning("listener_bad_payload", payload=payload[:200])
            return
        if origin != PROCESS_ID:
            self._on_task_event(task_event)
            if task_event.status == "pending":
                self._on_task_pending()
