"""Plain helpers that create rows for tests (no factory framework)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
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


TEXT_CHUNK = b"It was a bright cold day in April, and the clocks were striking thirteen.\n" * 800
"""About 58 KiB of plain text."""


async def multipart_body(
    total: int, boundary: str, filename: str = "big.txt"
) -> AsyncIterator[bytes]:
    """A multipart body with one ``file`` part of ``total`` bytes (made chunk by chunk,
    never held whole) and ``processor=noop``; send it chunked to hide its size."""
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    sent = 0
    while sent < total:
        piece = TEXT_CHUNK[: total - sent]
        sent += len(piece)
        yield piece
    field = 'Content-Disposition: form-data; name="processor"'
    yield f"\r\n--{boundary}\r\n{field}\r\n\r\nnoop".encode()
    yield f"\r\n--{boundary}--\r\n".encode()
