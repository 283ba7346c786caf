"""The /api/v1 router: every domain router is included here."""

from __future__ import annotations

from fastapi import APIRouter

from app.api import auth, batches, live, projects, tasks, users

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(auth.router)
api_router.include_router(users.router)
api_router.include_router(live.router)
api_router.include_router(tasks.router)
api_router.include_router(batches.router)
api_router.include_router(projects.router)
