"""Dependencies shared by the routers, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection

from app.config import Settings
from app.database import get_db
from app.errors import Forbidden, Unauthorized
from app.models import User
from app.services import auth as auth_service


# async on purpose: FastAPI runs plain ``def`` dependencies in a thread pool.
async def get_app_settings(connection: HTTPConnection) -> Settings:
    settings: Settings = connection.app.state.settings
    return settings


async def get_session_factory(connection: HTTPConnection) -> async_sessionmaker[AsyncSession]:
    factory: async_sessionmaker[AsyncSession] = connection.app.state.session_factory
    return factory


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
# scope="function": the transaction commits before the response is sent, so a
# client that sees 2xx can rely on the write being durable.
SessionDep = Annotated[AsyncSession, Depends(get_db, scope="function")]
SessionFactoryDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_session_factory)]


async def get_current_user(
    connection: HTTPConnection, session: SessionDep, settings: SettingsDep
) -> User:
    """The caller, from ``Authorization: Bearer …`` (JWT or API key).

    WebSocket and SSE routes also accept ``?token=``, because browsers cannot
    set headers there; see ``get_stream_user``.
    """
    token = _bearer(connection.headers.get("authorization"))
    if token is None:
        raise Unauthorized("Not authenticated: send Authorization: Bearer <token>")
    return await auth_service.authenticate_token(session, settings, token)


async def get_stream_user(
    connection: HTTPConnection, session: SessionDep, settings: SettingsDep
) -> User:
    """Like ``get_current_user``, also accepting the ``token`` query parameter."""
    token = _bearer(connection.headers.get("authorization")) or connection.query_params.get("token")
    if not token:
        raise Unauthorized("Not authenticated: send Authorization: Bearer <token> or ?token=")
    return await auth_service.authenticate_token(session, settings, token)


async def require_admin(user: Annotated[User, Depends(get_current_user)]) -> User:
    if not user.is_admin:
        raise Forbidden("This action requires the admin role")
    return user


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


CurrentUser = Annotated[User, Depends(get_current_user)]
StreamUser = Annotated[User, Depends(get_stream_user)]
AdminUser = Annotated[User, Depends(require_admin)]
