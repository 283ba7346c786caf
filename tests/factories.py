"""Plain helpers that create rows for tests (no factory framework)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models import Role, User
from app.services import auth as auth_service

PASSWORD = "correct horse battery staple"


async def make_user(
    sessions: async_sessionmaker[AsyncSession],
    *,
    email: str | None = None,
    role: Role = Role.USER,
    password: str = PASSWORD,
) -> User:
    async with sessions() as session:
        user = User(
            email=email or f"user-{uuid.uuid4().hex[:8]}@example.com",
            password_hash=await auth_service.hash_password(password),
            role=role,
        )
        session.add(user)
        await session.commit()
        return user


def bearer(settings: Settings, user: User) -> dict[str, str]:
    token, _ = auth_service.create_access_token(settings, user)
    return {"Authorization": f"Bearer {token}"}


def app_sessions(app: Any) -> async_sessionmaker[AsyncSession]:
    """The session factory of a running app (tests that need direct database access)."""
    factory: async_sessionmaker[AsyncSession] = app.state.session_factory
    return factory
