"""Projects group a user's tasks."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from app.schemas.common import Name, ReadModel, RequestModel


class ProjectCreate(RequestModel):
    name: Name = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=10_000)


class ProjectUpdate(RequestModel):
    name: Name | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)


class ProjectRead(ReadModel):
    id: str
    name: str
    description: str
    task_count: int
    created_at: datetime
    updated_at: datetime
