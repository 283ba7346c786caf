"""Projects: a user's named groups of tasks (names unique per user)."""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.database import on_commit
from app.errors import Conflict
from app.models import Project, Task, User
from app.services import storage
from app.services.access import get_owned, scope_to_owner


def _read(project: Project, task_count: int) -> dict[str, Any]:
    return {
        "id": project.id,
        "name": project.name,
        "description": project.description,
        "task_count": task_count,
        "created_at": project.created_at,
        "updated_at": project.updated_at,
    }


async def _task_count(session: AsyncSession, project_id: str) -> int:
    query = select(func.count()).select_from(Task).where(Task.project_id == project_id)
    return int((await session.execute(query)).scalar_one())


async def _flush_unique(session: AsyncSession, name: str) -> None:
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(
            f"You already have a project named {name!r}", code="project_exists"
        ) from None


async def create_project(
    session: AsyncSession, user: User, name: str, description: str
) -> dict[str, Any]:
    project = Project(owner_id=user.id, name=name.strip(), description=description)
    session.add(project)
    await _flush_unique(session, project.name)
    await session.refresh(project)
    return _read(project, 0)


async def list_projects(
    session: AsyncSession, user: User, *, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    counts = (
        select(Task.project_id, func.count().label("n"))
        .where(Task.project_id.is_not(None))
        .group_by(Task.project_id)
        .subquery()
    )
    query = scope_to_owner(
        select(Project, func.coalesce(counts.c.n, 0)).outerjoin(
            counts, counts.c.project_id == Project.id
        ),
        Project,
        user,
    ).order_by(Project.created_at.desc(), Project.id)
    total_query = scope_to_owner(select(func.count()).select_from(Project), Project, user)
    total = int((await session.execute(total_query)).scalar_one())
    rows = (await session.execute(query.offset(offset).limit(limit))).all()
    return [_read(project, int(count)) for project, count in rows], total


async def get_project(session: AsyncSession, user: User, project_id: str) -> dict[str, Any]:
    project = await get_owned(session, Project, project_id, user)
    return _read(project, await _task_count(session, project.id))


async def update_project(
    session: AsyncSession, user: User, project_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    project = await get_owned(session, Project, project_id, user)
    if changes.get("name") is not None:
        project.name = changes["name"].strip()
    if changes.get("description") is not None:
        project.description = changes["description"]
    await _flush_unique(session, project.name)
    await session.refresh(project)
    return _read(project, await _task_count(session, project.id))


async def delete_project(
    session: AsyncSession,
    settings: Settings,
    user: User,
    project_id: str,
    *,
    cascade: bool,
) -> None:
    """Delete a project; one that has tasks needs ``cascade`` (its tasks go too, and their
    files once that has committed)."""
    from app.services.tasks import cancel

    project = await get_owned(session, Project, project_id, user)
    task_rows = (await session.execute(select(Task).where(Task.project_id == project.id))).scalars()
    tasks = list(task_rows)
    if tasks and not cascade:
        raise Conflict(
            f"Project {project_id} has {len(tasks)} tasks; delete with ?cascade=true "
            "to delete them too",
            code="project_not_empty",
        )
    for task in tasks:
        if task.status in ("pending", "processing"):
            await cancel(session, task, reason="Cancelled: its project is being deleted")
    await session.delete(project)
    await session.flush()
    for task in tasks:
        on_commit(session, partial(storage.remove_task_files, settings, task.id))
