"""One action (retry, cancel, delete) on many tasks in one request and one transaction.

Each task goes through the same service call as its own PATCH or DELETE, so the
state machine's rules hold unchanged; a task the caller cannot see, or whose
status does not allow the action, is skipped with the reason, not an error for
the whole request.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import AppError
from app.models import Task, TaskStatus, User
from app.schemas.operations import BULK_MAX_TASKS
from app.services import tasks as task_service
from app.services.access import owner_filter


async def _ids_in_status(
    session: AsyncSession, user: User, status: TaskStatus
) -> tuple[list[str], int]:
    """The first BULK_MAX_TASKS of the caller's tasks in ``status`` (oldest first), and
    how many there are in all."""
    conditions = [Task.status == status]
    if (owner_id := owner_filter(user)) is not None:
        conditions.append(Task.owner_id == owner_id)
    total = (await session.execute(select(func.count()).where(*conditions))).scalar_one()
    ids = await session.execute(
        select(Task.id).where(*conditions).order_by(Task.uploaded_at, Task.id).limit(BULK_MAX_TASKS)
    )
    return list(ids.scalars()), int(total)


async def _apply(
    session: AsyncSession, settings: Settings, user: User, action: str, task_id: str
) -> None:
    if action == "delete":
        await task_service.delete_task(session, settings, user, task_id)
        return
    task = await task_service.get_task(session, user, task_id)
    if action == "retry":
        await task_service.retry(session, task)
    else:
        await task_service.cancel(session, task)


async def run(
    session: AsyncSession,
    settings: Settings,
    user: User,
    *,
    action: str,
    task_ids: list[str] | None,
    status: TaskStatus | None,
) -> dict[str, Any]:
    """Apply ``action`` to ``task_ids``, or to the caller's tasks in ``status``."""
    remaining = 0
    if task_ids is None:
        assert status is not None  # the route asks for one of the two
        task_ids, total = await _ids_in_status(session, user, status)
        remaining = total - len(task_ids)
    done: list[str] = []
    skipped: list[dict[str, str]] = []
    for task_id in dict.fromkeys(task_ids):
        try:
            await _apply(session, settings, user, action, task_id)
        except AppError as error:  # nothing of this task was written: it is skipped
            skipped.append({"id": task_id, "code": error.code, "detail": error.detail})
        else:
            done.append(task_id)
    return {"action": action, "done": done, "skipped": skipped, "remaining": remaining}
