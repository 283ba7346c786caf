"""Users."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.deps import AdminUser, CurrentUser, PageQuery, PageSizeQuery, SessionDep
from app.api.responses import BODY_PROBLEMS, problems
from app.models import User
from app.schemas.common import Page
from app.schemas.user import UserCreate, UserRead, UserUpdate
from app.services import users as user_service

router = APIRouter(prefix="/users", tags=["users"], responses=problems(401))


@router.get("/me", response_model=UserRead)
async def me(user: CurrentUser) -> User:
    return user


@router.post(
    "",
    status_code=201,
    response_model=UserRead,
    responses={**problems(403, 409, 422), **BODY_PROBLEMS},
)
async def create_user(body: UserCreate, session: SessionDep, _admin: AdminUser) -> Any:
    """Admins only: create a user (duplicate email → 409, weak password → 422)."""
    return await user_service.create_user(session, body.email, body.password, body.role)


@router.get("", response_model=Page[UserRead], responses=problems(403, 422))
async def list_users(
    session: SessionDep,
    _admin: AdminUser,
    page: PageQuery = 1,
    page_size: PageSizeQuery = 20,
) -> Page[UserRead]:
    """Admins only: every user, oldest first."""
    items, total = await user_service.list_users(
        session, offset=(page - 1) * page_size, limit=page_size
    )
    return Page[UserRead].model_validate(
        {"items": items, "total": total, "page": page, "page_size": page_size}
    )


@router.patch(
    "/{user_id}",
    response_model=UserRead,
    responses={**problems(403, 404, 409, 422), **BODY_PROBLEMS},
)
async def update_user(
    user_id: str, body: UserUpdate, session: SessionDep, _admin: AdminUser
) -> UserRead:
    """Admins only: change a user's role (the last admin keeps theirs: 409 `last_admin`)."""
    return UserRead.model_validate(await user_service.change_role(session, user_id, body.role))
