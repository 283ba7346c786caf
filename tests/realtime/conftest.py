"""Helpers for the live-update tests: WebSocket clients, users, task changes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from httpx_ws import AsyncWebSocketSession

from app.api.live import MAX_FRAME_BYTES
from app.config import Settings
from app.events.publish import TaskEvent, publish_event
from app.models import Task, User
from app.services import auth as auth_service
from tests.factories import app_sessions, make_user


@pytest.fixture
async def user(app: FastAPI) -> User:
    return await make_user(app_sessions(app))


def token(settings: Settings, user: User) -> str:
    value, _ = auth_service.create_access_token(settings, user)
    return value


@pytest.fixture
async def server(app: FastAPI) -> AsyncIterator[str]:
    """The app (lifespan already running) served by uvicorn on a free local port."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="off",
        log_config=None,
        ws_max_size=MAX_FRAME_BYTES,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    app.state.test_server = server
    yield f"127.0.0.1:{port}"
    server.should_exit = True
    await asyncio.wait_for(serving, timeout=30)


@pytest.fixture
async def ws_client(server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://{server}") as client:
        yield client


PostTask = Callable[..., Awaitable[str]]


@pytest.fixture
def post_task(ws_client: httpx.AsyncClient, settings: Settings) -> PostTask:
    """POST a small manuscript as ``owner`` through the API (unlike the queue tests'
    ``make_task``, which calls the service); the task stays pending (no workers)."""

    async def create(owner: User, name: str = "book.txt") -> str:
        response = await ws_client.post(
            "/api/v1/tasks/upload",
            files={"file": (name, b"Chapter 1\n\nA short story.\n", "text/plain")},
            data={"processor": "noop"},
            headers={"Authorization": f"Bearer {token(settings, owner)}"},
        )
        assert response.status_code == 202, response.text
        task_id: str = response.json()["id"]
        return task_id

    return create


async def change_task(app: FastAPI, task_id: str, **values: Any) -> None:
    """Change a task and publish the event, as the services and workers do."""
    async with app_sessions(app)() as session:
        task = await session.get(Task, task_id)
        assert task is not None
        for name, value in values.items():
            setattr(task, name, value)
        task.event_seq += 1
        await publish_event(session, TaskEvent.from_task(task))
        await session.commit()


async def receive(ws: AsyncWebSocketSession, wait: float = 5.0) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await ws.receive_text(timeout=wait))
    return message


async def nothing_more(ws: AsyncWebSocketSession, wait: float = 0.2) -> bool:
    """True when no message arrives within ``wait`` seconds."""
    try:
        await ws.receive_text(timeout=wait)
    except TimeoutError:
        return True
    return False
