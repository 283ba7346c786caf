"""Deliveries to a real receiver on loopback: signed, retried, ordered, at least once."""

from __future__ import annotations

import asyncio
import base64
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from app.config import Settings
from app.models import WebhookDelivery
from app.models.base import utcnow
from app.webhooks import delivery
from tests.factories import app_sessions
from tests.queue.processors import PROCESSORS
from tests.webhooks.conftest import (
    API,
    Upload,
    create_endpoint,
    deliver_until,
    delivery_loop,
    run_tasks,
)
from tests.webhooks.receiver import Receiver


async def deliveries(client: httpx.AsyncClient, headers: dict[str, str], endpoint: str = "") -> Any:
    path = f"{API}/webhooks/{endpoint}/deliveries" if endpoint else f"{API}/webhooks/deliveries"
    response = await client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_a_completed_task_is_posted_signed_with_the_task_as_get_returns_it(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, headers: dict[str, str],
    upload: Upload, receiver: Receiver,
) -> None:  # fmt: skip
    endpoint = await create_endpoint(client, headers, receiver.url(), "task.completed")
    assert endpoint["secret"].startswith("whsec_")
    assert len(base64.b64decode(endpoint["secret"].removeprefix("whsec_"))) == 32
    task_id = (await upload("noop")).json()["id"]
    await run_tasks(app, settings)
    await deliver_until(delivery_loop(app, settings), lambda: len(receiver.requests) == 1)

    [received] = receiver.requests
    assert received.headers["content-type"] == "application/json"
    payload = Webhook(endpoint["secret"]).verify(received.body, received.headers)
    task = (await client.get(f"{API}/tasks/{task_id}", headers=headers)).json()
    assert payload == {"type": "task.completed", "timestamp": payload["timestamp"], "data": task}
    assert task["status"] == "completed"
    with pytest.raises(Exception, match="signature"):
        Webhook(endpoint["secret"]).verify(received.body + b" ", received.headers)

    [logged] = await deliveries(client, headers, endpoint["id"])
    assert logged["webhook_id"] == received.webhook_id
    assert (logged["status"], logged["event"], logged["subject_id"]) == (
        "delivered", "task.completed", task_id,
    )  # fmt: skip
    assert [(a["attempt"], a["status_code"], a["outcome"]) for a in logged["attempt_log"]] == [
        (1, 200, "delivered")
    ]


async def test_only_the_events_an_endpoint_asked_for_are_sent(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, headers: dict[str, str],
    upload: Upload, receiver: Receiver,
) -> None:  # fmt: skip
    await create_endpoint(client, headers, receiver.url("/failed"), "task.failed")
    await create_endpoint(client, headers, receiver.url("/all"), "task.completed", "task.failed")
    await upload("noop")
    await upload("broken")
    await run_tasks(app, settings)
    await deliver_until(delivery_loop(app, settings), lambda: len(receiver.requests) == 3)
    assert [r.json["type"] for r in receiver.on("/failed")] == ["task.failed"]
    assert sorted(r.json["type"] for r in receiver.on("/all")) == ["task.completed", "task.failed"]
    failed = receiver.on("/failed")[0].json["data"]
    assert (failed["status"], failed["error_message"]) == (
        "failed", "The file cannot be decoded.",
    )  # fmt: skip


async def test_a_callback_url_is_signed_with_the_accounts_callback_secret(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, headers: dict[str, str],
    upload: Upload, receiver: Receiver,
) -> None:  # fmt: skip
    refused = await upload("noop", callback_url=receiver.url())
    assert refused.status_code == 422
    assert refused.json()["code"] == "callback_secret_missing"
    bad = await upload("noop", callback_url="ftp://example.com/hook")
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_callback_url")
    assert bad.json()["errors"][0]["loc"] == ["body", "callback_url"]

    made = await client.post(f"{API}/webhooks/callback-secret", headers=headers)
    assert made.status_code == 201
    secret = made.json()["secret"]
    task_id = (await upload("noop", callback_url=receiver.url("/cb"))).json()["id"]
    cancelled = await client.patch(
        f"{API}/tasks/{task_id}", json={"status": "cancelled"}, headers=headers
    )
    assert cancelled.status_code == 200
    await deliver_until(delivery_loop(app, settings), lambda: len(receiver.requests) == 1)
    payload = Webhook(secret).verify(receiver.requests[0].body, receiver.requests[0].headers)
    assert (payload["type"], payload["data"]["id"], payload["data"]["status"]) == (
        "task.cancelled", task_id, "cancelled",
    )  # fmt: skip
    [logged] = await deliveries(client, headers)
    assert (logged["endpoint_id"], logged["url"], logged["status"]) == (
        None, receiver.url("/cb"), "delivered",
    )  # fmt: skip


async def test_the_delivery_is_written_with_the_final_transition_not_after_it(
    app: FastAPI, client: httpx.AsyncClient, headers: dict[str, str], upload: Upload,
    receiver: Receiver,
) -> None:  # fmt: skip
    """No loop runs: the cancel's response already finds its delivery committed."""
    await create_endpoint(client, headers, receiver.url(), "task.cancelled")
    task_id = (await upload("noop")).json()["id"]
    assert await deliveries(client, headers) == []
    await client.patch(f"{API}/tasks/{task_id}", json={"status": "cancelled"}, headers=headers)
    [pending] = await deliveries(client, headers)
    assert (pending["status"], pending["event"], pending["attempts"]) == (
        "pending", "task.cancelled", 0,
    )  # fmt: skip
    retried = await client.patch(
        f"{API}/tasks/{task_id}", json={"status": "pending"}, headers=headers
    )
    assert retried.status_code == 200
    assert len(await deliveries(client, headers)) == 1  # a retry is not a final event
    assert receiver.requests == []


async def test_a_batch_sends_batch_completed_once_after_its_last_task(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, headers: dict[str, str],
    upload: Upload, receiver: Receiver,
) -> None:  # fmt: skip
    await create_endpoint(client, headers, receiver.url("/batches"), "batch.completed")
    await client.post(f"{API}/webhooks/callback-secret", headers=headers)
    created = await upload("noop", batch=3, callback_url=receiver.url("/cb"))
    assert created.status_code == 202, created.text
    batch_id = created.json()["batch_id"]
    await run_tasks(app, settings)
    await deliver_until(delivery_loop(app, settings), lambda: len(receiver.requests) == 5)
    [batch_event] = receiver.on("/batches")
    batch = (await client.get(f"{API}/batches/{batch_id}", headers=headers)).json()
    assert batch_event.json["type"] == "batch.completed"
    assert batch_event.json["data"] == batch
    assert batch["by_status"]["completed"] == 3
    on_callback = sorted(r.json["type"] for r in receiver.on("/cb"))
    assert on_callback == ["batch.completed"] + ["task.completed"] * 3


async def test_5xx_and_429_are_retried_with_backoff_and_retry_after_under_one_webhook_id(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, headers: dict[str, str],
    upload: Upload, receiver: Receiver,
) -> None:  # fmt: skip
    endpoint = await create_endpoint(client, headers, receiver.url(), "task.completed")
    receiver.answer((500, {}), (429, {"Retry-After": "1"}), (503, {}))
    await upload("noop")
    await run_tasks(app, settings)
    await deliver_until(delivery_loop(app, settings), lambda: len(receiver.requests) == 4)

    assert len({r.webhook_id for r in receiver.requests}) == 1
    for request in receiver.requests:
        Webhook(endpoint["secret"]).verify(request.body, request.headers)
    after_429 = receiver.requests[2].at - receiver.requests[1].at
    assert after_429 >= 1.0  # Retry-After: 1
    [logged] = await deliveries(client, headers, endpoint["id"])
    assert [(a["status_code"], a["outcome"]) for a in logged["attempt_log"]] == [
        (500, "retry"), (429, "retry"), (503, "retry"), (200, "delivered"),
    ]  # fmt: skip
    assert (logged["status"], logged["attempts"], logged["last_status_code"]) == (
        "delivered", 4, 200,
    )  # fmt: skip


async def test_a_4xx_fails_at_once_and_a_failed_delivery_can_be_re_sent(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, headers: dict[str, str],
    upload: Upload, receiver: Receiver,
) -> None:  # fmt: skip
    endpoint = await create_endpoint(client, headers, receiver.url(), "task.completed")
    receiver.answer((410, {}))
    await upload("noop")
    await run_tasks(app, settings)
    loop = delivery_loop(app, settings)
    await deliver_until(loop, lambda: len(receiver.requests) == 1)
    [failed] = await deliveries(client, headers, endpoint["id"])
    assert (failed["status"], failed["last_error"], failed["attempts"]) == ("failed", "HTTP 410", 1)

    again = await client.post(f"{API}/webhooks/deliveries/{failed['id']}/resend", headers=headers)
    assert again.status_code == 202
    assert again.json()["status"] == "pending"
    await deliver_until(loop, lambda: len(receiver.requests) == 2)
    [delivered] = await deliveries(client, headers, endpoint["id"])
    assert delivered["status"] == "delivered"
    assert [a["outcome"] for a in delivered["attempt_log"]] == ["failed", "delivered"]
    assert receiver.requests[0].webhook_id == receiver.requests[1].webhook_id
    twice = await client.post(f"{API}/webhooks/deliveries/{failed['id']}/resend", headers=headers)
    assert (twice.status_code, twice.json()["code"]) == (409, "invalid_transition")


async def test_retries_stop_when_the_retry_window_is_over(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, headers: dict[str, str],
    upload: Upload, receiver: Receiver,
) -> None:  # fmt: skip
    endpoint = await create_endpoint(client, headers, receiver.url(), "task.completed")
    receiver.answer(*[(503, {})] * 50)
    await upload("noop")
    await run_tasks(app, settings)
    short = settings.model_copy(update={"webhook_retry_window_seconds": 0.5})
    loop = delivery.DeliveryLoop(short, app_sessions(app))
    async with asyncio.timeout(20):
        while (await deliveries(client, headers))[0]["status"] != "failed":
            await loop.run_until_idle()
            await asyncio.sleep(0.02)
    [failed] = await deliveries(client, headers, endpoint["id"])
    assert failed["status"] == "failed"
    assert failed["last_error"].startswith("HTTP 503; gave up after ")
    assert failed["attempt_log"][-1]["outcome"] == "failed"
    assert len(failed["attempt_log"]) == failed["attempts"] == len(receiver.requests) >= 2


async def test_a_tasks_later_delivery_waits_for_its_earlier_one(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, headers: dict[str, str],
    upload: Upload, receiver: Receiver,
) -> None:  # fmt: skip
    await create_endpoint(client, headers, receiver.url(), "task.cancelled", "task.completed")
    task_id = (await upload("noop")).json()["id"]
    await client.patch(f"{API}/tasks/{task_id}", json={"status": "cancelled"}, headers=headers)
    await client.patch(f"{API}/tasks/{task_id}", json={"status": "pending"}, headers=headers)
    await run_tasks(app, settings)  # both deliveries are now due at once
    receiver.answer((500, {}), (500, {}))
    await deliver_until(delivery_loop(app, settings), lambda: len(receiver.requests) == 4)
    assert [(r.json["type"]) for r in receiver.requests] == [
        "task.cancelled", "task.cancelled", "task.cancelled", "task.completed",
    ]  # fmt: skip


async def test_a_sender_that_died_mid_flight_is_replaced_with_the_same_webhook_id(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, headers: dict[str, str],
    upload: Upload, receiver: Receiver,
) -> None:  # fmt: skip
    """The first sender posts, then dies before recording it: once its lease has run out
    the delivery is sent again (at least once), with the same webhook-id, and then
    never again; the dead sender's late report changes nothing but the log."""
    endpoint = await create_endpoint(client, headers, receiver.url(), "task.completed")
    await upload("noop")
    await run_tasks(app, settings)
    sessions = app_sessions(app)
    [claimed] = await delivery.claim(sessions, settings, 10)
    async with httpx.AsyncClient() as http:
        first = await delivery.send(http, settings, claimed)
    assert first.delivered
    assert await delivery.claim(sessions, settings, 10) == []  # leased, not due
    loop = delivery_loop(app, settings)
    await deliver_until(loop, lambda: len(receiver.requests) == 2, within=10)
    assert receiver.requests[0].webhook_id == receiver.requests[1].webhook_id
    await delivery.finish(sessions, settings, claimed, first, utcnow(), 0.01)
    assert await loop.run_until_idle() == 0
    assert len(receiver.requests) == 2
    async with sessions() as session:
        row = (await session.execute(select(WebhookDelivery))).scalar_one()
    assert (row.status, row.attempts) == ("delivered", 2)
    [logged] = await deliveries(client, headers, endpoint["id"])
    assert [(a["attempt"], a["outcome"]) for a in logged["attempt_log"]] == [
        (1, "abandoned"), (1, "delivered"), (2, "delivered"),  # the dead sender's late report
    ]  # fmt: skip
    assert logged["attempt_log"][0]["error"] == delivery.ABANDONED


async def test_finished_deliveries_are_pruned_after_the_result_ttl(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, headers: dict[str, str],
    upload: Upload, receiver: Receiver,
) -> None:  # fmt: skip
    await create_endpoint(client, headers, receiver.url(), "task.cancelled")
    for _ in range(2):
        task_id = (await upload("noop")).json()["id"]
        await client.patch(f"{API}/tasks/{task_id}", json={"status": "cancelled"}, headers=headers)
    sessions = app_sessions(app)
    async with sessions() as session:
        first = (
            (await session.execute(select(WebhookDelivery).order_by(WebhookDelivery.id)))
            .scalars()
            .first()
        )
        assert first is not None
        first_id = first.id
    await delivery_loop(app, settings).run_until_idle()
    async with sessions() as session, session.begin():
        old = await session.get(WebhookDelivery, first_id)
        assert old is not None
        old.finished_at = utcnow() - timedelta(days=settings.result_ttl_days, seconds=1)
    assert await delivery.prune(sessions, settings) == 1
    left = await deliveries(client, headers)
    assert [d["id"] for d in left] == [first_id + 1]
    assert len(left[0]["attempt_log"]) == 1


async def test_the_running_loop_delivers_on_its_own(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, headers: dict[str, str],
    upload: Upload, receiver: Receiver,
) -> None:  # fmt: skip
    """The loop a worker process runs: woken by the commit that recorded a delivery (its
    poll is a minute away), stopped cleanly."""
    await create_endpoint(client, headers, receiver.url(), "task.completed")
    slow_poll = settings.model_copy(update={"webhook_poll_seconds": 60})
    loop = delivery.DeliveryLoop(slow_poll, app_sessions(app), app.state.bus)
    await loop.start()
    try:
        await upload("noop")
        await run_tasks(app, settings)
        async with asyncio.timeout(10):
            await receiver.arrived.wait()
    finally:
        await loop.stop()
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    "settings_overrides",
    [{"processors": PROCESSORS, "worker_concurrency": 1, "webhook_allow_private": True}],
)
async def test_the_api_process_with_workers_sends_webhooks(
    client: httpx.AsyncClient, headers: dict[str, str], upload: Upload, receiver: Receiver
) -> None:
    """The loop starts with the API's worker pool (app.main) and stops with it."""
    endpoint = await create_endpoint(client, headers, receiver.url(), "task.completed")
    task_id = (await upload("noop")).json()["id"]
    async with asyncio.timeout(30):
        await receiver.arrived.wait()
    payload = Webhook(endpoint["secret"]).verify(
        receiver.requests[0].body, receiver.requests[0].headers
    )
    assert (payload["type"], payload["data"]["id"]) == ("task.completed", task_id)
