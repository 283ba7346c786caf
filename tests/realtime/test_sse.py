"""Server-Sent Events: current state first, every change, the end, resume."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI

from app.config import Settings
from app.events import connections
from app.models import User
from tests.factories import app_sessions, make_user
from tests.realtime.conftest import PostTask, change_task, token


async def events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Parse an event stream into {"event", "id", "data"} dicts (comments skipped)."""
    current: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if not line:
            if current:
                yield current
                current = {}
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        current[field] = json.loads(value) if field == "data" else value


def path(task_id: str) -> str:
    return f"/api/v1/tasks/{task_id}/events"


async def test_stream_starts_with_current_state_follows_changes_and_ends_after_terminal(
    ws_client: httpx.AsyncClient, app: FastAPI, settings: Settings, user: User, post_task: PostTask
) -> None:
    task_id = await post_task(user)
    received: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {token(settings, user)}"}
    async with ws_client.stream("GET", path(task_id), headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for event in events(response):
            received.append(event)
            if len(received) == 1:
                await change_task(app, task_id, status="processing", progress=50, stage="x")
            elif len(received) == 2:
                await change_task(app, task_id, status="completed", progress=100, stage="done")
    # the server ended the stream after the terminal state
    assert [e["event"] for e in received] == ["task_update"] * 3
    assert [e["data"]["progress"] for e in received] == [0, 50, 100]
    assert [e["data"]["status"] for e in received] == ["pending", "processing", "completed"]
    ids = [int(e["id"]) for e in received]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3
    assert received[0]["data"]["type"] == "task_update"


async def test_last_event_id_skips_what_the_client_already_has(
    ws_client: httpx.AsyncClient, app: FastAPI, settings: Settings, user: User, post_task: PostTask
) -> None:
    task_id = await post_task(user)
    headers = {"Authorization": f"Bearer {token(settings, user)}"}
    async with ws_client.stream("GET", path(task_id), headers=headers) as response:
        first = await anext(aiter(events(response)))
    seq = int(first["id"])
    # nothing new: resuming from the current event sends nothing until the next change
    resumed: list[dict[str, Any]] = []
    async with ws_client.stream(
        "GET", path(task_id), headers={**headers, "Last-Event-ID": str(seq)}
    ) as response:
        stream = events(response)
        await change_task(app, task_id, status="processing", progress=10)
        resumed.append(await anext(stream))
    assert resumed[0]["data"]["progress"] == 10
    assert int(resumed[0]["id"]) == seq + 1


async def test_a_finished_task_streams_its_final_state_and_ends(
    ws_client: httpx.AsyncClient, app: FastAPI, settings: Settings, user: User, post_task: PostTask
) -> None:
    task_id = await post_task(user)
    await change_task(app, task_id, status="failed", error_message="Bad input")
    url = f"{path(task_id)}?token={token(settings, user)}"
    for last in ("", "999"):
        async with ws_client.stream("GET", url, headers={"Last-Event-ID": last}) as response:
            received = [event async for event in events(response)]
        assert len(received) == 1
        assert received[0]["data"]["status"] == "failed"
        assert received[0]["data"]["error_message"] == "Bad input"


async def test_sse_is_owned_and_authenticated(
    ws_client: httpx.AsyncClient, app: FastAPI, settings: Settings, user: User, post_task: PostTask
) -> None:
    other = await make_user(app_sessions(app))
    task_id = await post_task(other)
    response = await ws_client.get(f"{path(task_id)}?token={token(settings, user)}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    response = await ws_client.get(path(task_id))
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_client_disconnect_frees_the_stream(
    ws_client: httpx.AsyncClient, app: FastAPI, settings: Settings, user: User, post_task: PostTask
) -> None:
    task_id = await post_task(user)
    url = f"{path(task_id)}?token={token(settings, user)}"
    async with ws_client.stream("GET", url) as response:
        await anext(aiter(events(response)))
        assert app.state.hub.followed_tasks() == {task_id}
    for _ in range(100):
        if not app.state.hub.followed_tasks() and connections.sse_connections() == 0:
            break
        await asyncio.sleep(0.05)
    assert app.state.hub.followed_tasks() == set()
    assert connections.sse_connections() == 0
