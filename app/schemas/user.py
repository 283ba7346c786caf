"""Users and credentials."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.schemas.common import Name, ReadModel, RequestModel


class UserRead(ReadModel):
    id: str
    email: str
    role: Literal["admin", "user"]
    created_at: datetime


class UserCreate(RequestModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)
    role: Literal["admin", "user"] = "user"


class UserUpdate(RequestModel):
    role: Literal["admin", "user"]


class TokenRead(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


class ApiKeyCreate(RequestModel):
    name: Name = Field(min_length=1, max_length=100)


class ApiKeyRead(ReadModel):
    id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The secret, shown this once; only its hash is stored")
