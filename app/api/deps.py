"""Dependencies shared by the routers, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection

from app.config import Settings
from app.database import get_db
from app.errors import Forbidden, Unauthorized
from app.models import User
from app.schemas.common import MAX_PAGE, MAX_PAGE_SIZE


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


# Documents the scheme in OpenAPI (the "Authorize" button of /docs); the gate does the work.
_bearer_scheme = HTTPBearer(
    auto_error=False, description="A token from POST /api/v1/auth/login, or an API key"
)


async def get_current_user(
    connection: HTTPConnection,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)],
) -> User:
    """The caller, authenticated by the /api/v1 gate (``app.api.gate``) before routing.

    Bearer JWT or API key; the SSE route also accepts ``?token=``.
    """
    user: User | None = connection.scope.get("state", {}).get("user")
    if user is None:
        raise Unauthorized("Not authenticated: send Authorization: Bearer <token>")
    return user


async def require_admin(user: Annotated[User, Depends(get_current_user)]) -> User:
    if not user.is_admin:
        raise Forbidden("This action requires the admin role")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
AdminUser = Annotated[User, Depends(require_admin)]


# Shared by every paginated route: a page past MAX_PAGE is 422, never an OFFSET overflow.
PageQuery = Annotated[
    int, Query(ge=1, le=MAX_PAGE, description=f"Page number, from 1 (at most {MAX_PAGE})")
]
PageSizeQuery = Annotated[
    int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"Items per page (1-{MAX_PAGE_SIZE})")
]
