"""Helpers for the task API tests: users, tokens, uploads, finished tasks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.models import User
from tests.factories import app_sessions, bearer, make_user


@pytest.fixture
async def user(app: FastAPI) -> User:
    return await make_user(app_sessions(app))


@pytest.fixture
def headers(settings: Settings, user: User) -> dict[str, str]:
    return bearer(settings, user)


Upload = Callable[..., Awaitable[httpx.Response]]


@pytest.fixture
def upload(client: httpx.AsyncClient, headers: dict[str, str]) -> Upload:
    async def send(
        content: bytes = b"Chapter 1\n\nIt was a bright cold day in April.\n",
        name: str = "book.txt",
        *,
        data: dict[str, Any] | None = None,
        extra_headers: dict[str, str] | None = None,
        auth: dict[str, str] | None = None,
    ) -> httpx.Response:
        return await client.post(
            "/api/v1/tasks/upload",
            files={"file": (name, content, "text/plain")},
            data=data or {},
            headers={**(auth or headers), **(extra_headers or {})},
        )

    return send


def files_on_disk(upload_dir: Path) -> list[Path]:
    return sorted(p for p in upload_dir.rglob("*") if p.is_file())


async def finish_task(
    app: Any,
    settings: Settings,
    task_id: str,
    *,
    files: dict[str, bytes] | None = None,
    duration: float = 2.0,
) -> None:
    """Mark a task completed with result files, as a worker would (tests of reading routes)."""
    import hashlib
    from datetime import timedelta

    from sqlalchemy import delete

    from app.models import FileKind, FileStorage, Task, TaskQueue, TaskResult, TaskStatus
    from app.models.base import utcnow

    files = (
        {"report.json": b'{"schema_version": 1}', "summary.md": b"# Summary\n"}
        if files is None
        else files
    )
    results = settings.upload_dir / "tasks" / task_id / "results"
    results.mkdir(parents=True, exist_ok=True)
    async with app_sessions(app)() as session:
        task = await session.get(Task, task_id)
        assert task is not None
        now = utcnow()
        for name, content in files.items():
            (results / name).write_bytes(content)
            session.add(
                FileStorage(
                    task_id=task_id,
                    kind=FileKind.RESULT,
                    name=name,
                    storage_path=f"tasks/{task_id}/results/{name}",
                    size=len(content),
                    content_type="application/json" if name.endswith(".json") else "text/markdown",
                    checksum="sha256:" + hashlib.sha256(content).hexdigest(),
                    created_at=now,
                )
            )
        session.add(
            TaskResult(
                task_id=task_id,
                attempt=1,
                result_file_path=f"tasks/{task_id}/results/report.json" if files else None,
                summary="It was a bright cold day.",
                quality_score=0.9,
                confidence_score=0.99,
                metrics={"words": 9},
            )
        )
        task.status = TaskStatus.COMPLETED
        task.progress = 100
        task.stage = "done"
        task.attempt = 1
        task.started_at = now - timedelta(seconds=duration)
        task.completed_at = now
        first = next(iter(files), None)
        task.result_url = f"/api/v1/tasks/{task_id}/files/{first}" if first else None
        await session.execute(delete(TaskQueue).where(TaskQueue.task_id == task_id))
        await session.commit()


async def set_status(app: Any, task_id: str, status: str, **values: Any) -> None:
    from sqlalchemy import update

    from app.models import Task

    async with app_sessions(app)() as session:
        await session.execute(
            update(Task).where(Task.id == task_id).values(status=status, **values)
        )
        await session.commit()
