"""Batches: the tasks of one multi-file upload, their progress, and a zip of their results."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.models import Batch, FileKind, FileStorage, Task, TaskStatus, User
from app.services import storage
from app.services.access import get_owned

CHUNK = 64 * 1024


async def get_batch(session: AsyncSession, user: User, batch_id: str) -> dict[str, Any]:
    batch = await get_owned(session, Batch, batch_id, user)
    tasks = list(
        (
            await session.execute(
                select(Task).where(Task.batch_id == batch.id).order_by(Task.uploaded_at, Task.id)
            )
        ).scalars()
    )
    by_status = {status.value: 0 for status in TaskStatus}
    for task in tasks:
        by_status[task.status] += 1
    progress = round(sum(t.progress for t in tasks) / len(tasks), 2) if tasks else 0.0
    return {
        "id": batch.id,
        "total": len(tasks),
        "by_status": by_status,
        "progress": progress,
        "tasks": tasks,
    }


async def archive_entries(
    session: AsyncSession, settings: Settings, user: User, batch_id: str
) -> list[tuple[str, storage.Stored]]:
    """(name in the zip, stored file) for every result file of the batch's completed tasks."""
    batch = await get_owned(session, Batch, batch_id, user)
    rows = await session.execute(
        select(
            Task.id,
            Task.file_name,
            FileStorage.name,
            FileStorage.storage_type,
            FileStorage.storage_path,
            FileStorage.storage_bucket,
        )
        .join(FileStorage, FileStorage.task_id == Task.id)
        .where(
            Task.batch_id == batch.id,
            Task.status == TaskStatus.COMPLETED,
            FileStorage.kind == FileKind.RESULT,
            FileStorage.deleted_at.is_(None),
        )
        .order_by(Task.uploaded_at, Task.id, FileStorage.name)
    )
    entries = []
    for task_id, file_name, name, backend, key, bucket in rows.all():
        folder = f"{PurePosixPath(file_name).stem or 'task'}-{task_id[:8]}"
        entries.append((f"{folder}/{name}", storage.Stored.from_row(backend, key, bucket)))
    return entries


class _Sink(io.RawIOBase):
    """A write-only, unseekable buffer that the zip writer fills and the stream drains."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.data += b
        return len(b)

    def drain(self) -> bytes:
        out = bytes(self.data)
        self.data.clear()
        return out


def zip_stream(settings: Settings, entries: list[tuple[str, storage.Stored]]) -> Iterator[bytes]:
    """A zip of ``entries`` produced chunk by chunk, each file read from its own backend
    (blocking I/O: iterate it in a thread, as StreamingResponse does)."""
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        for arcname, stored in entries:
            with archive.open(arcname, mode="w") as target:
                for chunk in storage.open_stored(settings, stored):
                    target.write(chunk)
                    if len(sink.data) >= CHUNK:
                        yield sink.drain()
            yield sink.drain()
    yield sink.drain()
