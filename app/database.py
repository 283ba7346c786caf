"""The async engine, the session factory and the request-scoped session.

The engine is built by the lifespan (``create_engine_for``), never at import,
so tests hand in their own settings. SQLite gets WAL, a busy timeout and
foreign keys on every connection; PostgreSQL gets a pool sized by settings.

On PostgreSQL neither engine pre-pings the connections it checks out: a ping
is a round trip more per checkout (three inside a transaction with asyncpg),
on every request and every step of a task. Both rely on the pool being
invalidated by the first error after a disconnect: in the API the request that
meets it answers 503 (``app.api.unavailable``) and the next checkouts get new
connections; the queue survives it (a failed claim is retried, an attempt
whose completion failed is retried after its lease). The worker pool's engine
(``for_workers=True``) also replaces a connection that sat idle for
``WORKER_IDLE_RECONNECT_SECONDS``.

Both engines hide statement parameters from their errors (``hide_parameters``):
an unexpected database error gets logged, and its parameters may be a password
hash, an API key's hash or a user's text.

Every session of the factory is a unit of work (``UnitOfWork``): what must
happen only once its transaction is durable (deliver an event, wake workers,
remove the files of a deleted row) is registered with :func:`on_commit`, and
what must undo work outside the database if it is not (remove files placed for
rows that were never kept) with :func:`on_rollback`. Plain hooks run inside
the commit or rollback; ``async`` ones right after it, before ``commit()``,
``rollback()`` or ``close()`` returns. A session closed without committing
counts as rolled back. A request has one such session, opened by the /api/v1
gate (or by :func:`get_db` on a route outside it) and committed by
:func:`get_db` when the endpoint succeeds.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import HTTPConnection

from app.config import Settings
from app.events.bus import EventBus

_ASYNCPG_UNAVAILABLE = (
    asyncpg.exceptions.PostgresConnectionError,  # class 08: connection exceptions
    asyncpg.exceptions.CannotConnectNowError,  # starting up, shutting down
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
)


def means_database_down(error: BaseException) -> bool:
    """True when ``error`` (one link of an exception chain) says the database cannot be
    reached right now (stopped, restarting, out of connections), not that a statement
    was wrong."""
    return isinstance(error, (ConnectionError, exc.TimeoutError, *_ASYNCPG_UNAVAILABLE)) or (
        isinstance(error, exc.DBAPIError) and error.connection_invalidated
    )


SQLITE_BUSY_TIMEOUT_MS = 30_000
WORKER_IDLE_RECONNECT_SECONDS = 10.0
_RETURNED_AT = "ntm_returned_at"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _stamp_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info[_RETURNED_AT] = time.monotonic()


def _refuse_idle(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    returned = record.info.get(_RETURNED_AT)
    if returned is not None and time.monotonic() - returned > WORKER_IDLE_RECONNECT_SECONDS:
        # the pool discards this connection and checks out a fresh one
        raise exc.DisconnectionError("idle connection replaced")


def create_engine_for(settings: Settings, *, for_workers: bool = False) -> AsyncEngine:
    """Build the engine for ``settings.database_url`` (see the module doc for ``for_workers``)."""
    if settings.is_sqlite:
        engine = create_async_engine(
            settings.database_url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            hide_parameters=True,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        pool_pre_ping=False,
        pool_recycle=1800,
        hide_parameters=True,
    )
    if for_workers:
        event.listen(engine.sync_engine.pool, "checkin", _stamp_checkin)
        event.listen(engine.sync_engine.pool, "checkout", _refuse_idle)
    return engine


Hook = Callable[[], object] | Callable[[], Awaitable[object]]


class _Work(Session):
    """The synchronous session under a ``UnitOfWork``: its hooks, settled by the factory's
    ``after_commit`` and ``after_rollback`` listeners."""

    def __init__(self, *args: Any, bus: EventBus, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bus = bus
        self.commit_hooks: list[Hook] = []
        self.rollback_hooks: list[Hook] = []
        self.due: list[Callable[[], Awaitable[None]]] = []

    def settle(self, *, committed: bool) -> None:
        """Run the plain hooks of the outcome now, keep its ``async`` ones for right after."""
        hooks = self.commit_hooks if committed else self.rollback_hooks
        self.commit_hooks, self.rollback_hooks = [], []
        for hook in hooks:
            if inspect.iscoroutinefunction(hook):
                self.due.append(hook)
            else:
                hook()


class UnitOfWork(AsyncSession):
    """An ``AsyncSession`` that runs the ``async`` hooks its transaction's outcome made due."""

    async def commit(self) -> None:
        await super().commit()
        await self._run_due()

    async def rollback(self) -> None:
        await super().rollback()
        await self._run_due()

    async def close(self) -> None:
        await super().close()
        work = _work(self)
        work.commit_hooks.clear()  # never committed
        work.settle(committed=False)
        await self._run_due()

    async def _run_due(self) -> None:
        work = _work(self)
        while work.due:
            await work.due.pop(0)()


def _work(session: AsyncSession) -> _Work:
    work = session.sync_session
    if not isinstance(work, _Work):
        raise TypeError("the session was not made by create_session_factory")
    return work


def bus_of(session: AsyncSession) -> EventBus:
    """The event bus that ``session``'s committed events go to (its factory's)."""
    return _work(session).bus


def factory_bus(sessions: async_sessionmaker[AsyncSession]) -> EventBus:
    """The event bus of a factory made by :func:`create_session_factory`."""
    bus: EventBus = sessions.kw["sync_session_class"].kw["bus"]
    return bus


def on_commit(session: AsyncSession, hook: Hook) -> None:
    """Run ``hook`` once ``session``'s transaction has committed (never if it rolls back)."""
    _work(session).commit_hooks.append(hook)


def on_rollback(session: AsyncSession, hook: Hook) -> None:
    """Run ``hook`` if ``session``'s transaction rolls back or is closed uncommitted."""
    _work(session).rollback_hooks.append(hook)


def _committed(session: Session) -> None:
    if isinstance(session, _Work) and not session.in_nested_transaction():
        session.settle(committed=True)


def _rolled_back(session: Session) -> None:
    if isinstance(session, _Work) and not session.in_nested_transaction():
        session.settle(committed=False)


def create_session_factory(engine: AsyncEngine, bus: EventBus) -> async_sessionmaker[AsyncSession]:
    """Sessions that are units of work (see the module doc) delivering events to ``bus``."""
    work = sessionmaker(class_=_Work, bus=bus)
    event.listen(work, "after_commit", _committed)
    event.listen(work, "after_rollback", _rolled_back)
    return async_sessionmaker(
        engine, class_=UnitOfWork, sync_session_class=work, expire_on_commit=False
    )


REQUEST_SESSION = "session"
"""Where the /api/v1 gate keeps the request's session in the ASGI scope's state."""


async def get_db(connection: HTTPConnection) -> AsyncIterator[AsyncSession]:
    """The request's session: committed when the endpoint succeeds, rolled back otherwise.

    Behind the /api/v1 gate it is the gate's (which authenticated the caller with it
    and closes it); elsewhere it is opened here.
    """
    gated: AsyncSession | None = connection.scope.get("state", {}).get(REQUEST_SESSION)
    if gated is not None:
        async with _committing(gated):
            yield gated
        return
    factory: async_sessionmaker[AsyncSession] = connection.app.state.session_factory
    async with factory() as session, _committing(session):
        yield session


@asynccontextmanager
async def _committing(session: AsyncSession) -> AsyncIterator[None]:
    try:
        yield
        await session.commit()
    except BaseException:
        await session.rollback()
        raise
