"""No delivery to loopback, private, link-local or metadata addresses unless allowed."""

from __future__ import annotations

import ipaddress
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.models.base import utcnow
from app.webhooks import addresses, delivery
from app.webhooks.delivery import DeliveryLoop
from tests.factories import app_sessions
from tests.webhooks.conftest import API, Upload, create_endpoint, deliver_until
from tests.webhooks.receiver import Receiver

INSIDE = [
    "http://127.0.0.1:9/hook",
    "http://10.1.2.3/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:9/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://192.168.0.10/hook",
    "http://100.64.0.1/hook",
    "http://localhost:9/hook",
]


def strict(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_allow_private": False})


async def cancelled_task(client: httpx.AsyncClient, headers: dict[str, str], upload: Upload) -> str:
    task_id: str = (await upload("noop")).json()["id"]
    await client.patch(f"{API}/tasks/{task_id}", json={"status": "cancelled"}, headers=headers)
    return task_id


async def only_delivery(client: httpx.AsyncClient, headers: dict[str, str]) -> Any:
    [delivery] = (await client.get(f"{API}/webhooks/deliveries", headers=headers)).json()["items"]
    return delivery


@pytest.mark.parametrize("settings_overrides", [{"webhook_allow_private": False}])
@pytest.mark.parametrize("url", INSIDE)
async def test_inside_addresses_are_refused_when_an_endpoint_is_made(
    client: httpx.AsyncClient, headers: dict[str, str], url: str
) -> None:
    response = await client.post(
        f"{API}/webhooks", json={"url": url, "events": ["task.completed"]}, headers=headers
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_callback_url"
    assert "not a public address" in response.json()["detail"]


@pytest.mark.parametrize("settings_overrides", [{"webhook_allow_private": False}])
async def test_an_inside_callback_url_is_refused_at_upload(
    client: httpx.AsyncClient, headers: dict[str, str], upload: Upload
) -> None:
    await client.post(f"{API}/webhooks/callback-secret", headers=headers)
    refused = await upload("noop", callback_url="http://169.254.169.254/latest/meta-data/")
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_callback_url")
    listed = (await client.get(f"{API}/tasks/", headers=headers)).json()
    assert listed["total"] == 0


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:{port}/hook", "http://10.255.255.1/hook", "http://169.254.169.254/"]
)
async def test_a_delivery_to_an_inside_address_is_refused_before_connecting(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, headers: dict[str, str],
    upload: Upload, receiver: Receiver, url: str,
) -> None:  # fmt: skip
    """Made while allowed (this app), sent by a loop that does not allow it: refused
    without a connection (the receiver hears nothing), failed for good."""
    await create_endpoint(client, headers, url.format(port=receiver.port), "task.cancelled")
    await cancelled_task(client, headers, upload)
    assert await DeliveryLoop(strict(settings), app_sessions(app)).run_until_idle() == 1
    delivery = await only_delivery(client, headers)
    assert delivery["status"] == "failed"
    assert delivery["last_error"].startswith("refused: ")
    assert [a["outcome"] for a in delivery["attempt_log"]] == ["failed"]
    assert receiver.requests == []


async def test_a_name_that_resolves_to_loopback_is_refused_after_resolution(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, headers: dict[str, str],
    upload: Upload, receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    async def fake_dns(host: str, port: int) -> list[addresses.IPAddress]:
        assert host == "hooks.example.com"
        return [ipaddress.ip_address("127.0.0.1")]

    monkeypatch.setattr(addresses, "resolve", fake_dns)
    url = f"http://hooks.example.com:{receiver.port}/hook"
    await create_endpoint(client, headers, url, "task.cancelled")  # a name: not resolved yet
    await cancelled_task(client, headers, upload)
    await DeliveryLoop(strict(settings), app_sessions(app)).run_until_idle()
    delivery = await only_delivery(client, headers)
    assert delivery["status"] == "failed"
    assert delivery["last_error"] == (
        "refused: hooks.example.com resolves to a non-public address (127.0.0.1)"
    )
    assert receiver.requests == []


async def test_one_inside_answer_among_public_ones_is_enough_to_refuse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def fake_dns(host: str, port: int) -> list[addresses.IPAddress]:
        return [ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("10.0.0.7")]

    monkeypatch.setattr(addresses, "resolve", fake_dns)
    with pytest.raises(addresses.RefusedTarget, match=r"non-public address \(10.0.0.7\)"):
        await addresses.pin("https://hooks.example.com/x", allow_private=False)


async def test_a_public_name_is_pinned_to_the_address_that_was_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def fake_dns(host: str, port: int) -> list[addresses.IPAddress]:
        return [ipaddress.ip_address("93.184.215.14")]

    monkeypatch.setattr(addresses, "resolve", fake_dns)
    pinned = await addresses.pin("https://hooks.example.com:8443/x?y=1", allow_private=False)
    assert pinned == addresses.Pinned(
        "https://93.184.215.14:8443/x?y=1", "hooks.example.com:8443", "hooks.example.com"
    )


async def test_a_redirect_is_not_followed_by_default(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, headers: dict[str, str],
    upload: Upload, receiver: Receiver,
) -> None:  # fmt: skip
    await create_endpoint(client, headers, receiver.url("/hook"), "task.cancelled")
    receiver.answer((302, {"Location": "/elsewhere"}))
    await cancelled_task(client, headers, upload)
    await DeliveryLoop(settings, app_sessions(app)).run_until_idle()
    delivery = await only_delivery(client, headers)
    assert (delivery["status"], delivery["last_error"], delivery["last_status_code"]) == (
        "failed", "redirect not followed (HTTP 302)", 302,
    )  # fmt: skip
    assert [r.path for r in receiver.requests] == ["/hook"]


async def test_a_followed_redirect_is_checked_like_the_first_target(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, headers: dict[str, str],
    upload: Upload, receiver: Receiver,
) -> None:  # fmt: skip
    await create_endpoint(client, headers, receiver.url("/hook"), "task.cancelled")
    follow = settings.model_copy(update={"webhook_follow_redirects": True})
    receiver.answer((307, {"Location": "/elsewhere"}))
    await cancelled_task(client, headers, upload)
    loop = DeliveryLoop(follow, app_sessions(app))
    await deliver_until(loop, lambda: len(receiver.requests) == 2)
    assert [r.path for r in receiver.requests] == ["/hook", "/elsewhere"]
    assert (await only_delivery(client, headers))["status"] == "delivered"

    # the same redirect, sent where inside addresses are refused: not even the first hop
    receiver.answer((307, {"Location": "http://169.254.169.254/latest/meta-data/"}))
    await cancelled_task(client, headers, upload)
    strict_follow = strict(follow)
    await DeliveryLoop(strict_follow, app_sessions(app)).run_until_idle()
    assert len(receiver.requests) == 2


async def test_redirect_targets_are_checked_on_every_hop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A public first hop that redirects to the metadata address: refused at the hop."""

    async def fake_dns(host: str, port: int) -> list[addresses.IPAddress]:
        return [ipaddress.ip_address("93.184.215.14")]

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "93.184.215.14"
        assert request.headers["host"] == "hooks.example.com"
        return httpx.Response(302, headers={"Location": "http://169.254.169.254/latest/"})

    monkeypatch.setattr(addresses, "resolve", fake_dns)
    settings = Settings(_env_file=None, webhook_follow_redirects=True)  # type: ignore[call-arg]
    claimed = delivery.Claimed(
        id=1, message_id="msg_1", url="http://hooks.example.com/in", event="task.completed",
        payload="{}", attempts=1, deadline=utcnow(),
        secret="whsec_" + "A" * 44,
    )  # fmt: skip
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        outcome = await delivery.send(http, settings, claimed)
    assert (outcome.delivered, outcome.retryable) == (False, False)
    assert outcome.error == "refused: 169.254.169.254 is not a public address"
