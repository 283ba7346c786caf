"""/health, /metrics, request ids and the problem+json error paths."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app
from app.queue.attempts import Claimed
from app.queue.pool import WorkerPool, _Attempt
from tests.factories import app_sessions, bearer, make_user
from tests.queue.processors import PROCESSORS


async def test_health_reports_database_storage_and_version(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["status"] == "ok"
    assert body["storage"]["status"] == "ok"
    assert body["version"] == "0.1.0"
    # no worker runs in this app (WORKER_CONCURRENCY=0): the queue would not drain
    assert body["status"] == "degraded"
    assert body["workers"] == {"status": "none", "processes": 0, "concurrency": 0}


@pytest.fixture
def settings_overrides(tmp_path: Any) -> dict[str, Any]:
    return {}


async def test_health_is_unhealthy_with_503_when_storage_is_not_writable(
    make_settings: Any, tmp_path: Any
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the upload dir should be")
    settings: Settings = make_settings(upload_dir=blocker / "uploads")
    app = create_app(settings)
    # the lifespan creates the upload dir; skip it and probe health directly
    app.state.settings = settings
    from app.database import create_engine_for, create_session_factory
    from app.events.bus import EventBus

    engine = create_engine_for(settings)
    try:
        app.state.session_factory = create_session_factory(engine, EventBus())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            response = await c.get("/health")
    finally:
        await engine.dispose()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["storage"]["status"] == "error"
    assert body["database"]["status"] == "ok"


async def test_health_is_unhealthy_when_database_is_unreachable(
    make_settings: Any, tmp_path: Any
) -> None:
    settings: Settings = make_settings(database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none")
    app: FastAPI = create_app(settings)
    from app.database import create_engine_for, create_session_factory
    from app.events.bus import EventBus

    engine = create_engine_for(settings)
    try:
        app.state.session_factory = create_session_factory(engine, EventBus())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            response = await c.get("/health")
    finally:
        await engine.dispose()
    assert response.status_code == 503
    assert response.json()["database"]["status"] == "error"


@asynccontextmanager
async def app_with_pool(
    make_settings: Any, **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, dict[str, str]]]:
    """An app running one worker of its own, a client, and a user's credentials."""
    settings: Settings = make_settings(
        worker_concurrency=1,
        worker_stall_seconds=0.5,
        worker_poll_seconds=0.2,
        shutdown_grace_seconds=0.2,
        processors=PROCESSORS,
        **overrides,
    )
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=60):
        user = await make_user(app_sessions(app))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield app, c, bearer(settings, user)


async def upload(c: httpx.AsyncClient, headers: dict[str, str], processor: str) -> str:
    response = await c.post(
        "/api/v1/tasks/upload",
        headers=headers,
        files={"file": ("book.txt", b"Some text.\n", "text/plain")},
        data={"processor": processor},
    )
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    return task_id


async def test_health_is_unhealthy_when_a_worker_pool_has_free_slots_and_claims_nothing(
    make_settings: Any,
) -> None:
    async with app_with_pool(make_settings) as (app, c, headers):
        assert (await c.get("/health")).status_code == 200
        pool: WorkerPool = app.state.worker_pool
        [claim_loop] = [loop for loop in pool._loops if loop.get_name() == "claim"]
        claim_loop.cancel()  # a wedged pool: nothing will claim again
        await upload(c, headers, "noop")
        await asyncio.sleep(0.8)  # free slot and due work, both for longer than 0.5 s
        response = await c.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["database"]["status"] == "ok"
    assert body["workers"]["status"] == "stalled"
    reason = body["workers"]["reason"]
    assert reason.startswith(f"worker pool {pool.worker_id} has 1 of 1 slots free")
    assert "neither claimed nor finished an attempt for" in reason


async def test_health_sees_a_slot_that_leaked_out_of_the_pool_s_bookkeeping(
    make_settings: Any,
) -> None:
    """The old wedge: an attempt's task ended but its slot stayed taken."""
    async with app_with_pool(make_settings) as (app, c, headers):
        pool: WorkerPool = app.state.worker_pool
        claimed = Claimed("gone", 1, "noop", "", 0, 3)
        ghost = _Attempt(claimed, pool.settings.upload_dir / "ghost")
        ghost.task = asyncio.create_task(asyncio.sleep(0))
        await ghost.task
        pool.running[ghost.key] = ghost  # the pool believes its only slot is taken
        await upload(c, headers, "noop")
        await asyncio.sleep(0.8)
        response = await c.get("/health")
        del pool.running[ghost.key]
    assert response.status_code == 503
    assert response.json()["workers"]["status"] == "stalled"


async def test_a_busy_pool_with_work_waiting_is_healthy(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NTM_TEST_SLOW_SECONDS", "3")
    async with app_with_pool(make_settings) as (_, c, headers):
        busy = await upload(c, headers, "slow")
        waiting = await upload(c, headers, "noop")
        await asyncio.sleep(0.8)  # the waiting task is due, but no slot is free
        response = await c.get("/health")
        done = await c.get(f"/api/v1/tasks/{waiting}", headers=headers)
        first = await c.get(f"/api/v1/tasks/{busy}", headers=headers)
    assert response.status_code == 200
    assert response.json()["workers"]["status"] == "ok"
    assert (first.json()["status"], done.json()["status"]) == ("processing", "pending")
