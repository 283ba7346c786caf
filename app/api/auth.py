"""Sign-in and API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Response

from app.api.deps import CurrentUser, SessionDep, SettingsDep
from app.api.responses import BODY_PROBLEMS, problems
from app.schemas.common import Text
from app.schemas.user import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, TokenRead
from app.services import auth as auth_service
from app.services import users as user_service

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/login", response_model=TokenRead, responses={**problems(401, 422, 429), **BODY_PROBLEMS}
)
async def login(
    username: Annotated[Text, Form(max_length=320, description="The account's email")],
    password: Annotated[Text, Form(max_length=1024)],
    session: SessionDep,
    settings: SettingsDep,
) -> TokenRead:
    """OAuth2 password form (`username` = email) → a bearer access token."""
    user = await user_service.authenticate(session, username, password)
    token, lifetime = auth_service.create_access_token(settings, user)
    return TokenRead(access_token=token, expires_in=lifetime)


@router.post(
    "/api-keys",
    status_code=201,
    response_model=ApiKeyCreated,
    responses={**problems(401, 422), **BODY_PROBLEMS},
)
async def create_api_key(
    body: ApiKeyCreate, session: SessionDep, user: CurrentUser
) -> ApiKeyCreated:
    """A new API key; `key` is shown this once (only its hash is stored)."""
    key, secret = await user_service.create_api_key(session, user, body.name)
    return ApiKeyCreated.model_validate(
        {**ApiKeyRead.model_validate(key).model_dump(), "key": secret}
    )


@router.get("/api-keys", response_model=list[ApiKeyRead], responses=problems(401))
async def list_api_keys(session: SessionDep, user: CurrentUser) -> list[ApiKeyRead]:
    """The caller's live keys, never their secrets."""
    return [
        ApiKeyRead.model_validate(key) for key in await user_service.list_api_keys(session, user)
    ]


@router.delete("/api-keys/{key_id}", status_code=204, responses=problems(401, 404))
async def revoke_api_key(key_id: str, session: SessionDep, user: CurrentUser) -> Response:
    """Revoke a key: it stops working with the next request."""
    await user_service.revoke_api_key(session, user, key_id)
    return Response(status_code=204)
