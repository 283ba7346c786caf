"""Helpers for the task API tests: users, tokens, uploads, finished tasks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.models import User
from tests.factories import app_sessions, bearer, make_user


@pytest.fixture
async def user(app: FastAPI) -> User:
    return await make_user(app_sessions(app))


@pytest.fixture
def headers(settings: Settings, user: User) -> dict[str, str]:
    return bearer(settings, user)


Upload = Callable[..., Awaitable[httpx.Response]]


@pytest.fixture
def upload(client: httpx.AsyncClient, headers: dict[str, str]) -> Upload:
    async def send(
        content: bytes = b"Chapter 1\n\nIt was a bright cold day in April.\n",
        name: str = "book.txt",
        *,
        data: dict[str, Any] | None = None,
        extra_headers: dict[str, str] | None = None,
        auth: dict[str, str] | None = None,
    ) -> httpx.Response:
        return await client.post(
            "/api/v1/tasks/upload",
            files={"file": (name, content, "text/plain")},
            data=data or {},
            headers={**(auth or headers), **(extra_headers or {})},
        )

    return send


def files_on_disk(upload_dir: Path) -> list[Path]:
    return sorted(p for p in upload_dir.rglob("*") if p.is_file())
