"""Ownership, route by route: another user's ids answer 404; admins see everything.

Every route of API.md that names a task, batch, project or API key is called by
its owner, by another user and by an admin; every listing route is checked for
what it leaves out. The WebSocket and SSE checks live with the realtime tests.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.models import Role
from tests.api.conftest import finish_task
from tests.factories import app_sessions, bearer, make_user

Party = dict[str, str]


@pytest.fixture
async def world(app: FastAPI, client: httpx.AsyncClient, settings: Settings) -> dict[str, Any]:
    sessions = app_sessions(app)
    owner = bearer(settings, await make_user(sessions))
    other = bearer(settings, await make_user(sessions))
    admin = bearer(settings, await make_user(sessions, role=Role.ADMIN))
    project = (await client.post("/api/v1/projects", json={"name": "Mine"}, headers=owner)).json()
    files = [("files", (f"book{i}.txt", b"Chapter 1\n\nText.\n", "text/plain")) for i in range(2)]
    batch = (
        await client.post(
            "/api/v1/tasks/batch",
            files=files,
            data={"project_id": project["id"], "processor": "noop"},
            headers=owner,
        )
    ).json()
    task_id = batch["tasks"][0]["id"]
    await finish_task(app, settings, task_id)
    key = (await client.post("/api/v1/auth/api-keys", json={"name": "k"}, headers=owner)).json()
    return {
        "owner": owner,
        "other": other,
        "admin": admin,
        "task": task_id,
        "second_task": batch["tasks"][1]["id"],
        "batch": batch["batch_id"],
        "project": project["id"],
        "key": key["id"],
    }


READS = [
    ("GET", "/api/v1/tasks/{task}"),
    ("GET", "/api/v1/tasks/{task}/logs"),
    ("GET", "/api/v1/tasks/{task}/result"),
    ("GET", "/api/v1/tasks/{task}/files"),
    ("GET", "/api/v1/tasks/{task}/files/report.json"),
    ("GET", "/api/v1/tasks/{task}/events"),
    ("GET", "/api/v1/batches/{batch}"),
    ("GET", "/api/v1/batches/{batch}/archive"),
    ("GET", "/api/v1/projects/{project}"),
]
WRITES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("PATCH", "/api/v1/tasks/{second_task}", {"priority": 9}),
    ("PATCH", "/api/v1/tasks/{second_task}", {"status": "cancelled"}),
    ("DELETE", "/api/v1/tasks/{second_task}", None),
    ("PATCH", "/api/v1/projects/{project}", {"name": "Taken over"}),
    ("DELETE", "/api/v1/projects/{project}?cascade=true", None),
    ("DELETE", "/api/v1/auth/api-keys/{key}", None),
]


@pytest.mark.parametrize(("method", "template"), READS)
async def test_reads_by_id(
    client: httpx.AsyncClient, world: dict[str, Any], method: str, template: str
) -> None:
    path = template.format(**world)
    for party, expected in (("other", 404), ("owner", 200), ("admin", 200)):
        response = await client.request(method, path, headers=world[party])
        assert response.status_code == expected, (party, path, response.text)
        if expected == 404:
            assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(("method", "template", "body"), WRITES)
async def test_writes_by_id_leave_other_users_rows_alone(
    client: httpx.AsyncClient,
    world: dict[str, Any],
    method: str,
    template: str,
    body: dict[str, Any] | None,
) -> None:
    path = template.format(**world)
    response = await client.request(method, path, json=body, headers=world["other"])
    assert response.status_code == 404, response.text
    # nothing changed for the owner
    assert (
        await client.get(f"/api/v1/tasks/{world['second_task']}", headers=world["owner"])
    ).json()["status"] == "pending"
    project = await client.get(f"/api/v1/projects/{world['project']}", headers=world["owner"])
    assert project.json()["name"] == "Mine"
    keys = (await client.get("/api/v1/auth/api-keys", headers=world["owner"])).json()
    assert [k["id"] for k in (keys["items"] if isinstance(keys, dict) else keys)] == [world["key"]]
    # the owner (or, for rows that are not keys, an admin) may
    actor = "owner" if "api-keys" in path else "admin"
    response = await client.request(method, path, json=body, headers=world[actor])
    assert response.status_code in (200, 204), response.text


async def test_listings_statistics_and_exports_are_scoped(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    def ids(response: httpx.Response) -> set[str]:
        return {item["id"] for item in response.json()["items"]}

    mine = {world["task"], world["second_task"]}
    for party, expected in (("owner", mine), ("other", set()), ("admin", mine)):
        headers = world[party]
        assert ids(await client.get("/api/v1/tasks/", headers=headers)) == expected
        projects = ids(await client.get("/api/v1/projects", headers=headers))
        assert projects == (set() if party == "other" else {world["project"]})
        stats = (await client.get("/api/v1/tasks/statistics", headers=headers)).json()
        assert sum(stats["by_status"].values()) == len(expected)
        exported = (await client.get("/api/v1/tasks/export?format=json", headers=headers)).json()
        assert {row["id"] for row in exported} == expected
        keys = (await client.get("/api/v1/auth/api-keys", headers=headers)).json()
        key_ids = {k["id"] for k in (keys["items"] if isinstance(keys, dict) else keys)}
        assert key_ids == ({world["key"]} if party == "owner" else set())


async def test_a_foreign_project_id_on_upload_is_project_not_found(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    response = await client.post(
        "/api/v1/tasks/upload",
        files={"file": ("b.txt", b"Some text.\n", "text/plain")},
        data={"project_id": world["project"]},
        headers=world["other"],
    )
    assert response.status_code == 404
    assert response.json()["code"] == "project_not_found"
    response = await client.get(
        f"/api/v1/tasks/?project_id={world['project']}", headers=world["other"]
    )
    assert response.json()["items"] == []
