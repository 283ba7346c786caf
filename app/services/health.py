"""Health of this process's dependencies: database, storage, workers."""

from __future__ import annotations

import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import __version__
from app.config import Settings
from app.models import Worker
from app.models.base import utcnow
from app.queue import maintenance
from app.queue.pool import live_pools
from app.services import storage as file_storage


def _probe_storage(upload_dir: Path) -> None:
    upload_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".health-", dir=upload_dir)
    try:
        os.write(fd, b"ok")
    finally:
        os.close(fd)
        os.unlink(name)


async def count_active_workers(session: AsyncSession, settings: Settings) -> tuple[int, int]:
    """(worker processes, asyncio workers) whose heartbeat is younger than two leases."""
    since = utcnow() - timedelta(seconds=2 * settings.task_lease_seconds)
    row = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(Worker.concurrency), 0)).where(
                Worker.heartbeat_at >= since
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def _stalled_pools(session: AsyncSession, settings: Settings) -> list[str]:
    """Why each worker pool of this process (on this database) is stalled; none: []."""
    pools = [p for p in live_pools() if p.settings.database_url == settings.database_url]
    if not pools:
        return []
    oldest = await maintenance.oldest_due_at(session)
    if oldest is None:
        return []
    due_for = (utcnow() - oldest).total_seconds()
    return [reason for pool in pools if (reason := pool.stall(due_for)) is not None]


async def check_health(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> dict[str, Any]:
    """The /health body. ``status`` is unhealthy when the database or storage fails or
    a worker pool of this process is stalled (free slots and due work, but no claim
    for ``WORKER_STALL_SECONDS``), degraded when they work but no worker is alive to
    drain the queue."""
    backend = "sqlite" if settings.is_sqlite else "postgresql"
    database: dict[str, Any] = {"status": "ok", "backend": backend}
    workers: dict[str, Any] = {"status": "unknown", "processes": 0, "concurrency": 0}
    started = time.perf_counter()
    try:
        async with sessions() as session:
            await session.execute(text("SELECT 1"))
            database["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
            processes, concurrency = await count_active_workers(session, settings)
            stalls = await _stalled_pools(session, settings)
        workers = {
            "status": "ok" if processes else "none",
            "processes": processes,
            "concurrency": concurrency,
        }
        if stalls:
            workers |= {"status": "stalled", "reason": "; ".join(stalls)}
    except Exception as exc:
        database = {"status": "error", "backend": backend, "error": type(exc).__name__}

    storage: dict[str, Any] = {"status": "ok", "path": str(settings.upload_dir)}
    if settings.storage_backend == file_storage.S3:
        storage["bucket"] = f"s3://{settings.s3_bucket}/{settings.s3_prefix}"
    try:
        await anyio.to_thread.run_sync(_probe_storage, settings.upload_dir)
        if settings.storage_backend == file_storage.S3:
            await file_storage.probe_bucket(settings)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        storage |= {"status": "error", "error": reason}

    if database["status"] != "ok" or storage["status"] != "ok" or workers["status"] == "stalled":
        status = "unhealthy"
    elif workers["processes"] == 0:
        status = "degraded"
    else:
        status = "healthy"
    return {
        "status": status,
        "database": database,
        "storage": storage,
        "workers": workers,
        "version": __version__,
    }
