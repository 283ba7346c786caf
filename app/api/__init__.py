"""The /api/v1 router: every domain router is included here."""

from __future__ import annotations

from fastapi import APIRouter

from app.api import tasks

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(tasks.router)
