"""Users."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.deps import AdminUser, CurrentUser, SessionDep
from app.api.responses import BODY_PROBLEMS, problems
from app.models import User
from app.schemas.user import UserCreate, UserRead
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
