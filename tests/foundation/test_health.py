"""/health, /metrics, request ids and the problem+json error paths."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app


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

    engine = create_engine_for(settings)
    try:
        app.state.session_factory = create_session_factory(engine)
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

    engine = create_engine_for(settings)
    try:
        app.state.session_factory = create_session_factory(engine)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            response = await c.get("/health")
    finally:
        await engine.dispose()
    assert response.status_code == 503
    assert response.json()["database"]["status"] == "error"
