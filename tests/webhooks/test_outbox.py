"""The outbox in the state machine's transaction: batch.completed exactly once."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.models import WebhookDelivery
from app.queue import attempts
from tests.factories import app_sessions
from tests.webhooks.conftest import Upload, create_endpoint


@pytest.mark.postgres_only
async def test_two_transactions_finishing_a_batch_write_batch_completed_once(
    app: FastAPI, client: httpx.AsyncClient, headers: dict[str, str], upload: Upload
) -> None:
    """Each cancels one of the batch's two tasks; the first holds its transaction open
    while the second runs. The batch row's lock makes the second wait and then see the
    first's commit, so it, and only it, writes batch.completed."""
    await create_endpoint(client, headers, "https://hooks.example.com/", "batch.completed")
    tasks = (await upload("noop", batch=2)).json()["tasks"]
    sessions = app_sessions(app)
    first_done = asyncio.Event()
    release_first = asyncio.Event()

    async def cancel_first() -> None:
        async with sessions() as session, session.begin():
            await attempts.user_transition(session, attempts.CANCEL, tasks[0]["id"])
            first_done.set()
            await release_first.wait()

    async def cancel_second() -> None:
        await first_done.wait()
        async with sessions() as session, session.begin():
            await attempts.user_transition(session, attempts.CANCEL, tasks[1]["id"])

    first = asyncio.create_task(cancel_first())
    second = asyncio.create_task(cancel_second())
    await first_done.wait()
    await asyncio.sleep(0.3)
    assert not second.done()  # waiting for the batch row
    release_first.set()
    async with asyncio.timeout(10):
        await asyncio.gather(first, second)
    async with sessions() as session:
        events = (await session.execute(select(WebhookDelivery.event))).scalars().all()
    assert events == ["batch.completed"]


async def test_a_fenced_out_completion_writes_no_delivery(
    app: FastAPI, client: httpx.AsyncClient, headers: dict[str, str], upload: Upload
) -> None:
    """The webhook exists only if the final status it announces was written."""
    await create_endpoint(client, headers, "https://hooks.example.com/", "task.completed")
    task_id = (await upload("noop")).json()["id"]
    sessions = app_sessions(app)
    async with sessions() as session, session.begin():
        row = await attempts.transition(
            session, attempts._COMPLETE, task_id, 99, None, b_result_url=None
        )
    assert row is None
    async with sessions() as session:
        assert (await session.execute(select(WebhookDelivery))).first() is None
