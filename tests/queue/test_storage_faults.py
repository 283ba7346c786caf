"""A full or read-only UPLOAD_DIR fails the attempt cleanly (retried, a human reason)
and never kills the attempt's task or leaks its slot; what could not be removed is
swept once the storage is back."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.queue.pool import WorkerPool
from app.services import storage
from tests.queue.conftest import MakeTask, log_messages, reload

READ_ONLY = "The server's storage is read-only, so the results could not be written."
FULL = "The server's storage is full, so the results could not be written."


async def test_a_read_only_storage_fails_each_attempt_with_a_reason_and_frees_its_slot(
    make_task: MakeTask, pool: WorkerPool, sessions: async_sessionmaker[AsyncSession],
    monkeypatch: Any,
) -> None:  # fmt: skip
    async def read_only(path: Path) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(storage, "empty_dir", read_only)
    task = await make_task("writer")
    async with asyncio.timeout(30):
        await pool.run_until_idle()
    done = await reload(sessions, task.id)
    assert done.status == "failed"
    assert done.error_message == f"{READ_ONLY} (gave up after 4 attempts)"
    assert pool.running == {}
    assert sum(READ_ONLY in m for m in await log_messages(sessions, task.id)) == 4


async def test_results_that_cannot_be_moved_into_place_are_retried_and_then_complete(
    make_task: MakeTask, pool: WorkerPool, sessions: async_sessionmaker[AsyncSession],
    settings: Settings, monkeypatch: Any,
) -> None:  # fmt: skip
    real_move = storage.move
    full = [True]

    async def move_once_full(source: Path, target: Path) -> None:
        if target.parent.name == "results" and full and full.pop():
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        await real_move(source, target)

    task = await make_task("writer")
    monkeypatch.setattr(storage, "move", move_once_full)
    async with asyncio.timeout(30):
        await pool.run_until_idle()
    done = await reload(sessions, task.id)
    assert (done.status, done.attempt) == ("completed", 2)
    assert any(FULL in m for m in await log_messages(sessions, task.id))
    results = settings.upload_dir / "tasks" / task.id / "results"
    assert sorted(p.name for p in results.iterdir()) == ["out.txt"]
    assert pool.running == {}


async def test_an_attempt_directory_that_cannot_be_removed_is_swept_later(
    make_task: MakeTask, pool: WorkerPool, sessions: async_sessionmaker[AsyncSession],
    settings: Settings, monkeypatch: Any,
) -> None:  # fmt: skip
    real_remove = storage.remove

    async def read_only_for_attempts(*paths: Path) -> None:
        if any(p.name.startswith("attempt-") for p in paths):
            raise OSError(errno.EROFS, "Read-only file system")
        await real_remove(*paths)

    monkeypatch.setattr(storage, "remove", read_only_for_attempts)
    task = await make_task("writer")
    async with asyncio.timeout(30):
        await pool.run_until_idle()
        await asyncio.sleep(0)  # the release's own clean-up try
    left = settings.upload_dir / "tasks" / task.id / "attempt-1.tmp"
    assert (await reload(sessions, task.id)).status == "completed"
    assert pool.running == {}
    assert left.exists()  # the storage refused; nothing crashed
    monkeypatch.setattr(storage, "remove", real_remove)  # the storage is back
    await pool.start()
    try:
        async with asyncio.timeout(20):
            while left.exists():
                await asyncio.sleep(0.1)
    finally:
        await pool.stop()
