"""Webhook test helpers: a receiver on loopback, a user, a way to drive tasks and deliveries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.models import User
from app.processors import registry
from app.queue.pool import WorkerPool
from app.webhooks.delivery import DeliveryLoop
from tests.factories import app_sessions, bearer, make_user
from tests.queue.processors import PROCESSORS
from tests.webhooks import receiver as receiver_server
from tests.webhooks.receiver import Receiver

API = "/api/v1"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "processors": PROCESSORS,
        "task_retry_backoff_seconds": 0,
        "worker_poll_seconds": 0.2,
        "webhook_allow_private": True,
        "webhook_backoff_seconds": 0.05,
        "webhook_timeout_seconds": 3,
        "webhook_lease_seconds": 1,
        "webhook_poll_seconds": 0.1,
    }


@pytest.fixture(autouse=True)
def _test_processors() -> None:
    registry.configure(PROCESSORS)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    listening = Receiver()
    server, task = await receiver_server.start(listening)
    try:
        yield listening
    finally:
        await receiver_server.stop(server, task)


@pytest.fixture
async def user(app: FastAPI) -> User:
    return await make_user(app_sessions(app))


@pytest.fixture
def headers(settings: Settings, user: User) -> dict[str, str]:
    return bearer(settings, user)


Upload = Callable[..., Awaitable[httpx.Response]]


@pytest.fixture
def upload(client: httpx.AsyncClient, headers: dict[str, str]) -> Upload:
    async def send(processor: str = "noop", *, batch: int = 0, **fields: str) -> httpx.Response:
        content = b"Chapter 1\n\nIt was a bright cold day in April.\n"
        if batch:
            files = [("files", (f"book-{n}.txt", content, "text/plain")) for n in range(batch)]
            return await client.post(
                f"{API}/tasks/batch", files=files, data={"processor": processor, **fields},
                headers=headers,
            )  # fmt: skip
        return await client.post(
            f"{API}/tasks/upload", files={"file": ("book.txt", content, "text/plain")},
            data={"processor": processor, **fields}, headers=headers,
        )  # fmt: skip

    return send


async def run_tasks(app: FastAPI, settings: Settings) -> None:
    """Every queued task processed to its end by a worker pool (no deliveries sent)."""
    pool = WorkerPool(settings, app_sessions(app), app.state.bus, concurrency=2)
    try:
        async with asyncio.timeout(60):
            await pool.run_until_idle()
    finally:
        pool._runner.close()


def delivery_loop(app: FastAPI, settings: Settings) -> DeliveryLoop:
    return DeliveryLoop(settings, app_sessions(app))


async def deliver_until(
    loop: DeliveryLoop, done: Callable[[], bool], *, within: float = 20.0
) -> None:
    """Send due deliveries (waiting for those retried later) until ``done()``."""
    async with asyncio.timeout(within):
        while True:
            await loop.run_until_idle()
            if done():
                return
            await asyncio.sleep(0.02)


async def create_endpoint(
    client: httpx.AsyncClient, headers: dict[str, str], url: str, *events: str
) -> dict[str, Any]:
    response = await client.post(
        f"{API}/webhooks", json={"url": url, "events": list(events)}, headers=headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
