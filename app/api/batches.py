"""Batch routes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from app.api.deps import CurrentUser, SessionDep, SettingsDep
from app.api.responses import problems
from app.schemas.task import BatchRead
from app.services import batches as batch_service

router = APIRouter(prefix="/batches", tags=["batches"], responses=problems(401, 404))


@router.get("/{batch_id}", response_model=BatchRead)
async def get_batch(batch_id: str, session: SessionDep, user: CurrentUser) -> BatchRead:
    """The batch's tasks, counts by status and mean progress."""
    return BatchRead.model_validate(await batch_service.get_batch(session, user, batch_id))


@router.get(
    "/{batch_id}/archive",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}}},
)
async def batch_archive(
    batch_id: str, session: SessionDep, settings: SettingsDep, user: CurrentUser
) -> StreamingResponse:
    """A zip of every completed task's result files, streamed (built while it is sent)."""
    entries = await batch_service.archive_entries(session, settings, user, batch_id)
    return StreamingResponse(
        batch_service.zip_stream(settings, entries),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="batch-{batch_id}.zip"'},
    )
