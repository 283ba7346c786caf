"""A full or read-only UPLOAD_DIR fails the attempt cleanly (retried, a human reason)
and never kills the attempt's task or leaks its slot; what could not be removed is
swept once the storage is back."""

from __future__ import annotations

import asyncio
import errno
import shutil
from pathlib import Path
from typing import Any

import pytest
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


@pytest.mark.parametrize("refusal", ["raises", "leaves it"])
async def test_an_attempt_directory_that_cannot_be_removed_is_swept_later(
    make_task: MakeTask, pool: WorkerPool, sessions: async_sessionmaker[AsyncSession],
    settings: Settings, monkeypatch: Any, refusal: str,
) -> None:  # fmt: skip
    real_remove = storage.remove

    async def read_only_for_attempts(*paths: Path) -> list[Path]:
        if any(p.name.startswith("attempt-") for p in paths):
            if refusal == "raises":
                raise OSError(errno.EROFS, "Read-only file system")
            return list(paths)  # a read-only directory tree: rmtree removes nothing
        return await real_remove(*paths)

    monkeypatch.setattr(storage, "remove", read_only_for_attempts)
    task = await make_task("writer")
    async with asyncio.timeout(30):
        await pool.run_until_idle()
        await asyncio.sleep(0)  # the release's own clean-up try
    left = settings.upload_dir / "tasks" / task.id / "attempt-1.tmp"
    assert (await reload(sessions, task.id)).status == "completed"
    assert pool.running == {}
    assert left.exists()  # the storage refused; nothing crashed
    await pool.start()  # the sweeps find the storage still refusing...
    await asyncio.sleep(1.5)
    assert left.exists()
    monkeypatch.setattr(storage, "remove", real_remove)  # ...until it is back
    try:
        async with asyncio.timeout(20):
            while left.exists():
                await asyncio.sleep(0.1)
    finally:
        await pool.stop()


async def test_remove_says_what_the_storage_refused_to_remove(
    tmp_path: Path, monkeypatch: Any
) -> None:
    kept, gone, missing = tmp_path / "kept", tmp_path / "gone", tmp_path / "missing"
    kept.mkdir()
    (kept / "report.json").write_text("{}")
    gone.mkdir()
    real_rmtree = shutil.rmtree

    def rmtree_refusing_kept(path: Path, ignore_errors: bool = False) -> None:
        if Path(path) != kept:  # rmtree(ignore_errors=True) on a read-only tree is silent
            real_rmtree(path, ignore_errors=ignore_errors)

    monkeypatch.setattr(shutil, "rmtree", rmtree_refusing_kept)
    assert await storage.remove(kept, gone, missing) == [kept]
    assert not gone.exists()
