"""Idempotency-Key: the same upload again is the first task (200); the key reused for
another upload (bytes, file name, processor, priority, project) is 422."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from app.config import Settings
from app.models import Task
from tests.api.conftest import Upload, files_on_disk
from tests.factories import app_sessions, bearer, make_user

TEXT = b"Chapter 1\n\nIt was a bright cold day in April.\n"
KEY = {"Idempotency-Key": "upload-7f3a"}


async def task_count(app: FastAPI) -> int:
    async with app_sessions(app)() as session:
        return int((await session.execute(select(func.count()).select_from(Task))).scalar_one())


def assert_reused(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "idempotency_key_reused"
    assert body["errors"] == [
        {"loc": ["header", "idempotency-key"], "msg": body["detail"], "type": body["code"]}
    ]


@pytest.mark.parametrize(
    "changed",
    [
        {"content": TEXT + b"One more line.\n"},
        {"name": "another.txt"},
        {"data": {"processor": "noop"}},
        {"data": {"priority": "9"}},
        {"project": True},
    ],
    ids=["bytes", "file-name", "processor", "priority", "project"],
)
async def test_the_key_reused_for_another_upload_is_422(
    app: FastAPI, upload: Upload, client: httpx.AsyncClient, headers: dict[str, str],
    settings: Settings, changed: dict[str, Any],
) -> None:  # fmt: skip
    first = await upload(TEXT, "book.txt", extra_headers=KEY)
    assert first.status_code == 202
    data = dict(changed.get("data", {}))
    if changed.get("project"):
        project = await client.post("/api/v1/projects", json={"name": "P"}, headers=headers)
        data["project_id"] = project.json()["id"]
    other = await upload(
        changed.get("content", TEXT), changed.get("name", "book.txt"), data=data, extra_headers=KEY
    )
    assert_reused(other)
    assert await task_count(app) == 1
    assert len(files_on_disk(settings.upload_dir)) == 1  # the refused file is not kept
    # the original request is still answered with the first task
    again = await upload(TEXT, "book.txt", extra_headers=KEY)
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])


async def test_the_same_upload_again_is_the_first_task(
    app: FastAPI, upload: Upload, client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    first = await upload(TEXT, "book.txt", data={"priority": "5"}, extra_headers=KEY)
    # the defaults spelled out or left out are the same request
    same = await upload(TEXT, "book.txt", data={"processor": "analyze"}, extra_headers=KEY)
    assert (first.status_code, same.status_code) == (202, 200)
    assert same.json()["id"] == first.json()["id"]
    assert same.headers["location"] == f"/api/v1/tasks/{first.json()['id']}"
    # a later change to the task does not change what the key stands for
    task_id = first.json()["id"]
    patched = await client.patch(f"/api/v1/tasks/{task_id}", json={"priority": 8}, headers=headers)
    assert patched.status_code == 200
    after = await upload(TEXT, "book.txt", extra_headers=KEY)
    assert (after.status_code, after.json()["id"]) == (200, task_id)
    assert await task_count(app) == 1


async def test_keys_are_per_user(app: FastAPI, upload: Upload, settings: Settings) -> None:
    other_user = await make_user(app_sessions(app))
    mine = await upload(TEXT, "book.txt", extra_headers=KEY)
    theirs = await upload(
        b"Something else entirely.\n", "other.txt", extra_headers=KEY,
        auth=bearer(settings, other_user),
    )  # fmt: skip
    assert (mine.status_code, theirs.status_code) == (202, 202)
    assert mine.json()["id"] != theirs.json()["id"]


async def test_rows_from_before_the_fingerprint_are_replayed(app: FastAPI, upload: Upload) -> None:
    first = await upload(TEXT, "book.txt", extra_headers=KEY)
    async with app_sessions(app)() as session:
        await session.execute(update(Task).values(idempotency_fingerprint=None))
        await session.commit()
    retried = await upload(TEXT + b"changed\n", "book.txt", extra_headers=KEY)
    assert (retried.status_code, retried.json()["id"]) == (200, first.json()["id"])


async def test_concurrent_different_uploads_under_one_key_create_one_task(
    app: FastAPI, upload: Upload, settings: Settings
) -> None:
    responses = await asyncio.gather(
        *(upload(TEXT + str(n).encode(), "book.txt", extra_headers=KEY) for n in range(4))
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [202, 422, 422, 422], [r.text for r in responses]
    for response in responses:
        if response.status_code == 422:
            assert_reused(response)
    assert await task_count(app) == 1
    assert len(files_on_disk(settings.upload_dir)) == 1
