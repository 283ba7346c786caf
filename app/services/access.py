"""Ownership, in one place: a user reaches only their own rows; admins reach all.

Every service that reads a task, batch or project by id or lists them goes
through these helpers. Another user's row is reported as not found (404), so
ids do not leak.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.models import Batch, Project, Task, User

Owned = TypeVar("Owned", Task, Batch, Project)
Query = TypeVar("Query", bound=Select[*tuple[Any, ...]])

_NOT_FOUND = {
    Task: ("task_not_found", "Task"),
    Batch: ("batch_not_found", "Batch"),
    Project: ("project_not_found", "Project"),
}


def scope_to_owner(query: Query, model: type[Task | Batch | Project], user: User) -> Query:
    """Restrict ``query`` to ``user``'s rows of ``model`` (no restriction for admins)."""
    if user.is_admin:
        return query
    return query.where(model.owner_id == user.id)


def owner_filter(user: User) -> str | None:
    """The owner id to filter aggregates by, or None for an admin (everything)."""
    return None if user.is_admin else user.id


async def get_owned(
    session: AsyncSession,
    model: type[Owned],
    object_id: str,
    user: User,
    *,
    for_update: bool = False,
) -> Owned:
    """The row with ``object_id`` if ``user`` may see it, else NotFound."""
    row = await session.get(model, object_id, with_for_update=for_update)
    if row is None or not (user.is_admin or row.owner_id == user.id):
        code, label = _NOT_FOUND[model]
        raise NotFound(f"{label} {object_id} not found", code=code)
    return row
