"""Storage backend tests: the task API and the worker path on local disk and on the bucket."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.models import User
from app.processors import registry
from tests.factories import app_sessions, bearer, make_user
from tests.s3 import S3Server

PROCESSORS = "writer=tests.queue.processors:writer,gate=tests.storage.processors:gate"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "processors": PROCESSORS,
        "worker_concurrency": 1,
        "worker_poll_seconds": 0.1,
        "task_retry_backoff_seconds": 0,
        "task_lease_seconds": 5,
    }


@pytest.fixture(autouse=True)
def _test_processors() -> None:
    registry.configure(dict(item.split("=", 1) for item in PROCESSORS.split(",")))


@pytest.fixture
async def user(app: FastAPI) -> User:
    return await make_user(app_sessions(app))


@pytest.fixture
def headers(settings: Settings, user: User) -> dict[str, str]:
    return bearer(settings, user)


def bucket_keys(settings: Settings, server: S3Server) -> list[str]:
    assert settings.s3_bucket is not None
    return server.keys(settings.s3_bucket)


async def wait_for(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    task_id: str,
    statuses: tuple[str, ...] = ("completed", "failed"),
    seconds: float = 60,
) -> dict[str, Any]:
    async with asyncio.timeout(seconds):
        while True:
            body: dict[str, Any] = (
                await client.get(f"/api/v1/tasks/{task_id}", headers=headers)
            ).json()
            if body["status"] in statuses:
                return body
            await asyncio.sleep(0.05)
