"""The /health body."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class HealthRead(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    database: dict[str, Any]
    storage: dict[str, Any]
    workers: dict[str, Any]
    version: str
