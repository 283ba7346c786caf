"""The /api/v1 router: every domain router is included here."""

from __future__ import annotations

from fastapi import APIRouter

from app.api import batches, projects, tasks

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(tasks.router)
api_router.include_router(batches.router)
api_router.include_router(projects.router)
