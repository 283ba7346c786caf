"""The webhook endpoints' API: validation, secrets shown once, owner scoping."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.models import Role
from tests.factories import app_sessions, bearer, make_user
from tests.webhooks.conftest import API, Upload, create_endpoint


async def test_an_endpoint_is_listed_without_its_secret_and_deleted(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    made = await create_endpoint(
        client, headers, "https://hooks.example.com/in", "task.failed", "task.failed"
    )
    assert made["events"] == ["task.failed"]
    listed = (await client.get(f"{API}/webhooks", headers=headers)).json()
    assert listed == [{key: value for key, value in made.items() if key != "secret"}]
    assert (await client.delete(f"{API}/webhooks/{made['id']}", headers=headers)).status_code == 204
    assert (await client.get(f"{API}/webhooks", headers=headers)).json() == []
    again = await client.delete(f"{API}/webhooks/{made['id']}", headers=headers)
    assert (again.status_code, again.json()["code"]) == (404, "webhook_not_found")


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"url": "https://hooks.example.com/", "events": []}, ["body", "events"]),
        ({"url": "https://hooks.example.com/", "events": ["task.done"]}, ["body", "events", 0]),
        ({"url": "mailto:me@example.com", "events": ["task.failed"]}, ["body", "url"]),
        ({"url": "https://u:p@hooks.example.com/", "events": ["task.failed"]}, ["body", "url"]),
        ({"url": "https://hooks.example.com/" + "a" * 2048, "events": ["task.failed"]},
         ["body", "url"]),
        ({"url": "https://hooks.example.com/", "events": ["task.failed"], "x": 1}, ["body", "x"]),
    ],
)  # fmt: skip
async def test_a_bad_endpoint_is_refused_with_422(
    client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, object], loc: list[object]
) -> None:
    response = await client.post(f"{API}/webhooks", json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == loc


async def test_the_callback_secret_is_replaced_and_shown_only_when_made(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    first = (await client.post(f"{API}/webhooks/callback-secret", headers=headers)).json()
    second = (await client.post(f"{API}/webhooks/callback-secret", headers=headers)).json()
    assert first["secret"].startswith("whsec_")
    assert second["secret"].startswith("whsec_")
    assert first["secret"] != second["secret"]


async def test_another_accounts_endpoints_and_deliveries_are_not_found(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, headers: dict[str, str],
    upload: Upload,
) -> None:  # fmt: skip
    mine = await create_endpoint(client, headers, "https://hooks.example.com/", "task.cancelled")
    task_id = (await upload("noop")).json()["id"]
    await client.patch(f"{API}/tasks/{task_id}", json={"status": "cancelled"}, headers=headers)
    [delivery] = (await client.get(f"{API}/webhooks/deliveries", headers=headers)).json()["items"]

    for role in (Role.USER, Role.ADMIN):  # an admin too: webhooks are the account's own
        other = bearer(settings, await make_user(app_sessions(app), role=role))
        assert (await client.get(f"{API}/webhooks", headers=other)).json() == []
        page = (await client.get(f"{API}/webhooks/deliveries", headers=other)).json()
        assert (page["items"], page["total"]) == ([], 0)
        for method, path, code in [
            ("GET", f"{API}/webhooks/{mine['id']}/deliveries", "webhook_not_found"),
            ("DELETE", f"{API}/webhooks/{mine['id']}", "webhook_not_found"),
            ("POST", f"{API}/webhooks/deliveries/{delivery['id']}/resend", "delivery_not_found"),
        ]:
            response = await client.request(method, path, headers=other)
            assert (response.status_code, response.json()["code"]) == (404, code), path
    assert len((await client.get(f"{API}/webhooks", headers=headers)).json()) == 1


async def test_a_pending_delivery_cannot_be_re_sent(
    client: httpx.AsyncClient, headers: dict[str, str], upload: Upload
) -> None:
    await create_endpoint(client, headers, "https://hooks.example.com/", "task.cancelled")
    task_id = (await upload("noop")).json()["id"]
    await client.patch(f"{API}/tasks/{task_id}", json={"status": "cancelled"}, headers=headers)
    [delivery] = (await client.get(f"{API}/webhooks/deliveries", headers=headers)).json()["items"]
    response = await client.post(
        f"{API}/webhooks/deliveries/{delivery['id']}/resend", headers=headers
    )
    assert (response.status_code, response.json()["code"]) == (409, "invalid_transition")


async def test_deliveries_are_filtered_by_subject_status_and_kind(
    client: httpx.AsyncClient, headers: dict[str, str], upload: Upload
) -> None:
    endpoint = await create_endpoint(
        client, headers, "https://hooks.example.com/", "task.cancelled"
    )
    await client.post(f"{API}/webhooks/callback-secret", headers=headers)
    ids = []
    for _ in range(2):
        task_id = (await upload("noop", callback_url="https://cb.example.com/")).json()["id"]
        await client.patch(f"{API}/tasks/{task_id}", json={"status": "cancelled"}, headers=headers)
        ids.append(task_id)

    async def listed(path: str, **params: str) -> list[tuple[str, str | None]]:
        response = await client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [(d["subject_id"], d["endpoint_id"]) for d in response.json()["items"]]

    every = f"{API}/webhooks/deliveries"
    assert len(await listed(every)) == 4
    assert await listed(every, callbacks="true") == [(ids[1], None), (ids[0], None)]
    assert sorted(await listed(every, subject_id=ids[0]), key=str) == sorted(
        [(ids[0], None), (ids[0], endpoint["id"])], key=str
    )
    assert await listed(f"{API}/webhooks/{endpoint['id']}/deliveries", status="pending") == [
        (ids[1], endpoint["id"]), (ids[0], endpoint["id"]),
    ]  # fmt: skip
    assert await listed(every, status="delivered") == []
