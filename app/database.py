"""The async engine, the session factory and the request-scoped session.

The engine is built by the lifespan (``create_engine_for``), never at import,
so tests hand in their own settings. SQLite gets WAL, a busy timeout and
foreign keys on every connection; PostgreSQL gets a pool sized by settings.

On PostgreSQL the API's engine pre-pings every connection it checks out, so a
request never meets a connection that a database restart broke. The worker
pool's engine (``for_workers=True``) does not: its few statements per task
would pay three more round trips each (asyncpg pings inside a transaction).
It replaces a connection that sat idle for ``WORKER_IDLE_RECONNECT_SECONDS``
instead, and otherwise relies on the pool being invalidated by the first
error after a disconnect; the queue survives that error (a failed claim is
retried, an attempt whose completion failed is retried after its lease).

Both engines hide statement parameters from their errors (``hide_parameters``):
an unexpected database error gets logged, and its parameters may be a password
hash, an API key's hash or a user's text.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from starlette.requests import HTTPConnection

from app.config import Settings

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
        pool_pre_ping=not for_workers,
        pool_recycle=1800,
        hide_parameters=True,
    )
    if for_workers:
        event.listen(engine.sync_engine.pool, "checkin", _stamp_checkin)
        event.listen(engine.sync_engine.pool, "checkout", _refuse_idle)
    return engine


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def get_db(connection: HTTPConnection) -> AsyncIterator[AsyncSession]:
    """One session per request: committed when the endpoint succeeds, rolled back otherwise."""
    factory: async_sessionmaker[AsyncSession] = connection.app.state.session_factory
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
