"""The worker processes and what they run (admins: it shows every user's tasks)."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import AdminUser, SessionDep, SettingsDep
from app.api.responses import problems
from app.schemas.operations import WorkerRead
from app.services import workers as worker_service

router = APIRouter(prefix="/workers", tags=["operations"])


@router.get("", response_model=list[WorkerRead], responses=problems(403))
async def list_workers(
    session: SessionDep, settings: SettingsDep, _admin: AdminUser
) -> list[WorkerRead]:
    """Admins only: every registered worker process (host, pid, concurrency, heartbeat)
    and the tasks it is running."""
    return [
        WorkerRead.model_validate(w) for w in await worker_service.list_workers(session, settings)
    ]
