"""The PostgreSQL listener: an upload's one NOTIFY is its event, which also wakes workers."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.events.listener import PgListener
from app.events.publish import EVENTS_CHANNEL, PROCESS_ID, QUEUE_CHANNEL, TaskEvent
from tests.factories import app_sessions, bearer, make_user

pytestmark = pytest.mark.postgres_only


def _plain_url(settings: Settings) -> str:
    return settings.database_url.replace("+asyncpg", "")


async def test_an_upload_sends_one_notification_its_pending_event(
    client: httpx.AsyncClient, settings: Settings, app: FastAPI
) -> None:
    user = await make_user(app_sessions(app))
    heard: list[tuple[str, str]] = []
    listening = await asyncpg.connect(_plain_url(settings))
    try:
        for channel in (EVENTS_CHANNEL, QUEUE_CHANNEL):
            await listening.add_listener(
                channel, lambda _c, _p, channel, payload: heard.append((channel, payload))
            )
        response = await client.post(
            "/api/v1/tasks/upload",
            files={"file": ("book.txt", b"Hello world.\n", "text/plain")},
            headers=bearer(settings, user),
        )
        assert response.status_code == 202
        await asyncio.sleep(0.3)  # notifications arrive after the commit
    finally:
        await listening.close()
    assert [channel for channel, _ in heard] == [EVENTS_CHANNEL]
    event = json.loads(heard[0][1])
    assert (event["task_id"], event["status"], event["seq"], event["stage"]) == (
        response.json()["id"],
        "pending",
        1,
        "queued",
    )


async def test_another_process_pending_event_wakes_workers(settings: Settings) -> None:
    events: list[TaskEvent] = []
    wakes: list[None] = []
    listener = PgListener(
        settings.database_url,
        on_task_event=events.append,
        on_task_pending=lambda: wakes.append(None),
    )
    await listener.start()
    try:
        sender = await asyncpg.connect(_plain_url(settings))
        try:
            for origin, status in (
                ("other", "pending"),  # an upload (or a retry) elsewhere: wake
                ("other", "processing"),  # progress elsewhere: no work to claim
                (PROCESS_ID, "pending"),  # this process's own: delivered locally already
            ):
                event = TaskEvent("t1", "u1", 1, status, 0, "queued", None, None)
                await sender.execute(
                    "SELECT pg_notify($1, $2)", EVENTS_CHANNEL, event.to_json(origin)
                )
            await sender.execute("SELECT pg_notify($1, '')", QUEUE_CHANNEL)
            async with asyncio.timeout(5):
                while len(wakes) < 2:
                    await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)  # nothing else arrives
        finally:
            await sender.close()
    finally:
        await listener.stop()
    assert [e.status for e in events] == ["pending", "processing"]
    assert len(wakes) == 2  # the other process's pending event, the queue notification
