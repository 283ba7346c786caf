"""Project routes."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.api.deps import (
    CurrentUser,
    PageQuery,
    PageSizeQuery,
    SessionDep,
    SettingsDep,
)
from app.api.responses import BODY_PROBLEMS, problems
from app.schemas.common import Page
from app.schemas.project import ProjectCreate, ProjectRead, ProjectUpdate
from app.services import projects as project_service

router = APIRouter(prefix="/projects", tags=["projects"], responses=problems(401, 422))


@router.post(
    "", status_code=201, response_model=ProjectRead, responses={**problems(409), **BODY_PROBLEMS}
)
async def create_project(
    body: ProjectCreate, session: SessionDep, user: CurrentUser
) -> ProjectRead:
    """Create a project; names are unique per user (409 otherwise)."""
    created = await project_service.create_project(session, user, body.name, body.description)
    return ProjectRead.model_validate(created)


@router.get("", response_model=Page[ProjectRead])
async def list_projects(
    session: SessionDep,
    user: CurrentUser,
    page: PageQuery = 1,
    page_size: PageSizeQuery = 20,
) -> Page[ProjectRead]:
    items, total = await project_service.list_projects(
        session, user, offset=(page - 1) * page_size, limit=page_size
    )
    return Page[ProjectRead].model_validate(
        {"items": items, "total": total, "page": page, "page_size": page_size}
    )


@router.get("/{project_id}", response_model=ProjectRead, responses=problems(404))
async def get_project(project_id: str, session: SessionDep, user: CurrentUser) -> ProjectRead:
    return ProjectRead.model_validate(await project_service.get_project(session, user, project_id))


@router.patch(
    "/{project_id}", response_model=ProjectRead, responses={**problems(404, 409), **BODY_PROBLEMS}
)
async def update_project(
    project_id: str, body: ProjectUpdate, session: SessionDep, user: CurrentUser
) -> ProjectRead:
    updated = await project_service.update_project(
        session, user, project_id, body.model_dump(exclude_unset=True)
    )
    return ProjectRead.model_validate(updated)


@router.delete("/{project_id}", status_code=204, responses=problems(404, 409))
async def delete_project(
    project_id: str,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
    cascade: bool = False,
) -> Response:
    """Delete a project; one with tasks answers 409 unless `?cascade=true` (tasks deleted too)."""
    await project_service.delete_project(session, settings, user, project_id, cascade=cascade)
    return Response(status_code=204)
