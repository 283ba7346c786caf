"""What a process runs on: one event bus, the engine and session factory, the listener.

``open_runtime`` is called once per process, by the API's lifespan
(``app.main``) and by the worker process (``app.worker``), so both wire the
same way::

    unit of work (app.database) --on_commit--> EventBus --TaskEvent--> EventHub, WorkerPool
    PgListener (other processes) ----------->          --TaskPending--> WorkerPool

Whatever needs the bus is handed it here or by its builder; nothing finds it
through a module global.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.database import create_engine_for, create_session_factory
from app.events.bus import TASK_PENDING, EventBus
from app.events.listener import PgListener


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    bus: EventBus
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    listener: PgListener | None
    """On PostgreSQL: other processes' events onto ``bus`` (not started yet)."""

    async def start_listener(self, stack: AsyncExitStack) -> None:
        if self.listener is not None:
            await self.listener.start()
            stack.push_async_callback(self.listener.stop)

    def worker_sessions(self, stack: AsyncExitStack) -> async_sessionmaker[AsyncSession]:
        """Sessions for a worker pool beside the API: on PostgreSQL its own connections,
        without pre-ping (``app.database``); the same bus."""
        if self.settings.is_sqlite:
            return self.sessions
        engine = create_engine_for(self.settings, for_workers=True)
        stack.push_async_callback(engine.dispose)
        return create_session_factory(engine, self.bus)


def open_runtime(settings: Settings, stack: AsyncExitStack, *, for_workers: bool) -> Runtime:
    """Build the process's bus, engine, session factory and (PostgreSQL) listener."""
    bus = EventBus()
    engine = create_engine_for(settings, for_workers=for_workers)
    stack.push_async_callback(engine.dispose)
    listener = None
    if not settings.is_sqlite:
        listener = PgListener(
            settings.database_url,
            on_task_event=bus.publish,
            on_task_pending=partial(bus.publish, TASK_PENDING),
        )
    return Runtime(settings, bus, engine, create_session_factory(engine, bus), listener)
