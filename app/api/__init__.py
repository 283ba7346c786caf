"""The /api/v1 router: every domain router is included here."""

from __future__ import annotations

from fastapi import APIRouter

from app.api import (
    auth,
    batches,
    live,
    operations,
    processors,
    projects,
    tasks,
    users,
    webhooks,
    workers,
)
from app.api.responses import problems

# Any /api/v1 operation may answer these (the gate's 401 and 429, the NUL guard's 422,
# 503 while the database is down).
api_router = APIRouter(prefix="/api/v1", responses=problems(401, 422, 429, 503))
api_router.include_router(auth.router)
api_router.include_router(users.router)
api_router.include_router(live.router)
api_router.include_router(tasks.router)
api_router.include_router(operations.router)
api_router.include_router(batches.router)
api_router.include_router(projects.router)
api_router.include_router(processors.router)
api_router.include_router(workers.router)
api_router.include_router(webhooks.router)
