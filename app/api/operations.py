"""The task statistics over time, and actions on many tasks at once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import CurrentUser, SessionDep, SettingsDep
from app.api.responses import BODY_PROBLEMS, problems
from app.models import TaskStatus
from app.schemas.operations import BulkAction, BulkResult, TimeSeriesRead
from app.services import bulk as bulk_service
from app.services import timeseries

router = APIRouter(prefix="/tasks", tags=["tasks"], responses=problems(401, 422))


@router.get("/statistics/timeseries", response_model=TimeSeriesRead)
async def statistics_over_time(
    session: SessionDep,
    user: CurrentUser,
    minutes: Annotated[int, Query(ge=1, le=1440, description="How far back, in minutes")] = 60,
) -> TimeSeriesRead:
    """One point per minute: queue depth, tasks completed and failed, p50/p95 upload →
    completion. The caller's tasks; every user's for an admin (`scope`)."""
    return TimeSeriesRead.model_validate(await timeseries.series(session, user, minutes=minutes))


@router.post("/bulk", response_model=BulkResult, responses=BODY_PROBLEMS)
async def bulk_action(
    body: BulkAction, session: SessionDep, settings: SettingsDep, user: CurrentUser
) -> BulkResult:
    """Retry, cancel or delete many tasks (`task_ids`, or every task in a `status`) in one
    transaction; a task that does not allow the action is `skipped` with the reason."""
    result = await bulk_service.run(
        session,
        settings,
        user,
        action=body.action,
        task_ids=body.task_ids,
        status=TaskStatus(body.status) if body.status else None,
    )
    return BulkResult.model_validate(result)
