"""The processors an upload may name."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import CurrentUser, SettingsDep
from app.schemas.operations import ProcessorRead
from app.services import processors as processor_service

router = APIRouter(prefix="/processors", tags=["processors"])


@router.get("", response_model=list[ProcessorRead])
async def list_processors(_user: CurrentUser, settings: SettingsDep) -> list[ProcessorRead]:
    """Every processor: its name, what it does in one line, and the file types it accepts."""
    return [
        ProcessorRead.model_validate(p) for p in await processor_service.list_processors(settings)
    ]
