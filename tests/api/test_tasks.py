"""Reading and changing tasks: list, get, PATCH transitions, DELETE, logs, result, files."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.config import Settings
from app.models import FileStorage, Task, TaskLog, TaskQueue
from tests.api.conftest import Upload, files_on_disk, finish_task, set_status
from tests.factories import app_sessions

API = "/api/v1/tasks"


async def test_get_and_list_newest_first(
    upload: Upload, client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    ids = [(await upload(name=f"book-{i}.txt")).json()["id"] for i in range(3)]
    response = await client.get(f"{API}/", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert [t["id"] for t in body["items"]] == ids[::-1]
    assert (body["total"], body["page"], body["page_size"]) == (3, 1, 20)
    one = await client.get(f"{API}/{ids[0]}", headers=headers)
    assert one.json()["file_name"] == "book-0.txt"


async def test_filters_sorts_and_pages(
    upload: Upload, client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for name, priority in [("alpha.txt", 1), ("beta.md", 9), ("gamma_alpha.txt", 5)]:
        assert (await upload(name=name, data={"priority": str(priority)})).status_code == 202
    names = lambda r: [t["file_name"] for t in r.json()["items"]]  # noqa: E731
    r = await client.get(f"{API}/", params={"sort": "-priority"}, headers=headers)
    assert names(r) == ["beta.md", "gamma_alpha.txt", "alpha.txt"]
    r = await client.get(f"{API}/", params={"sort": "file_name", "q": "ALPHA"}, headers=headers)
    assert names(r) == ["alpha.txt", "gamma_alpha.txt"]
    r = await client.get(f"{API}/", params={"q": "_"}, headers=headers)
    assert names(r) == ["gamma_alpha.txt"]  # "_" is a literal, not a wildcard
    r = await client.get(
        f"{API}/", params={"sort": "file_name", "page": 2, "page_size": 2}, headers=headers
    )
    assert names(r) == ["gamma_alpha.txt"]
    assert r.json()["total"] == 3
    r = await client.get(f"{API}/", params={"status": "completed"}, headers=headers)
    assert r.json()["total"] == 0


@pytest.mark.parametrize(
    "params",
    [{"page": 0}, {"page_size": 0}, {"page_size": 101}, {"sort": "size"}, {"status": "done"}],
)
async def test_bad_list_parameters_are_422(
    client: httpx.AsyncClient, headers: dict[str, str], params: dict[str, object]
) -> None:
    response = await client.get(f"{API}/", params=params, headers=headers)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_unknown_task_is_404(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    for method, suffix in [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "/logs"),
                           ("GET", "/result"), ("GET", "/files"), ("GET", "/files/x")]:  # fmt: skip
        kwargs = {"json": {"priority": 1}} if method == "PATCH" else {}
        response = await client.request(method, f"{API}/missing{suffix}", headers=headers, **kwargs)
        assert response.status_code == 404, (method, suffix)
        assert response.json()["code"] == "task_not_found"


async def test_cancel_and_retry_transitions(
    upload: Upload, client: httpx.AsyncClient, headers: dict[str, str], app: FastAPI
) -> None:
    task_id = (await upload()).json()["id"]
    cancel = await client.patch(f"{API}/{task_id}", json={"status": "cancelled"}, headers=headers)
    assert cancel.status_code == 200
    assert cancel.json()["status"] == "cancelled"
    async with app_sessions(app)() as session:
        assert (await session.execute(select(func.count()).select_from(TaskQueue))).scalar() == 0
        task = await session.get(Task, task_id)
        assert task is not None
        assert task.attempt == 1
    again = await client.patch(f"{API}/{task_id}", json={"status": "cancelled"}, headers=headers)
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_transition"
    retry = await client.patch(f"{API}/{task_id}", json={"status": "pending"}, headers=headers)
    assert retry.status_code == 200
    assert (retry.json()["status"], retry.json()["retry_count"]) == ("pending", 0)
    again = await client.patch(f"{API}/{task_id}", json={"status": "pending"}, headers=headers)
    assert again.status_code == 409
    logs = await client.get(f"{API}/{task_id}/logs", headers=headers)
    assert [e["message"] for e in logs.json()["items"]] == [
        "Uploaded and queued",
        "Cancelled by user",
        "Retry requested by user",
    ]


async def test_concurrent_cancels_have_one_winner(
    upload: Upload, client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    task_id = (await upload()).json()["id"]
    responses = await asyncio.gather(
        *(
            client.patch(f"{API}/{task_id}", json={"status": "cancelled"}, headers=headers)
            for _ in range(4)
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409]


async def test_priority_changes_only_while_pending(
    upload: Upload, client: httpx.AsyncClient, headers: dict[str, str], app: FastAPI
) -> None:
    task_id = (await upload()).json()["id"]
    response = await client.patch(f"{API}/{task_id}", json={"priority": 9}, headers=headers)
    assert response.json()["priority"] == 9
    async with app_sessions(app)() as session:
        assert (await session.execute(select(TaskQueue.priority))).scalar() == 9
    await set_status(app, task_id, "processing")
    response = await client.patch(f"{API}/{task_id}", json={"priority": 1}, headers=headers)
    assert response.status_code == 409


@pytest.mark.parametrize(
    "body",
    [{"status": "done"}, {"status": 1}, {"priority": 11}, {"priority": "5"}, {"colour": "red"}],
)
async def test_bad_patch_bodies_are_422(
    upload: Upload, client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, object]
) -> None:
    task_id = (await upload()).json()["id"]
    response = await client.patch(f"{API}/{task_id}", json=body, headers=headers)
    assert response.status_code == 422


@pytest.mark.parametrize("current", ["pending", "processing", "completed", "failed", "cancelled"])
async def test_statuses_a_user_cannot_ask_for_are_409(
    upload: Upload, client: httpx.AsyncClient, headers: dict[str, str], app: FastAPI,
    current: str,
) -> None:  # fmt: skip
    """API.md: any transition but cancel and retry, or to the current state, is 409."""
    task_id = (await upload()).json()["id"]
    project = await client.post("/api/v1/projects", json={"name": "P"}, headers=headers)
    await set_status(app, task_id, current)
    for status in ("processing", "completed", "failed", current):
        body = {"status": status, "project_id": project.json()["id"]}
        response = await client.patch(f"{API}/{task_id}", json=body, headers=headers)
        assert response.status_code == 409, (current, status, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "invalid_transition"
    task = (await client.get(f"{API}/{task_id}", headers=headers)).json()
    assert (task["status"], task["project_id"]) == (current, None)  # nothing changed


def test_the_patch_schema_names_every_status() -> None:
    from typing import get_args

    from app.models import TaskStatus
    from app.schemas.task import TaskUpdate

    literal = TaskUpdate.model_fields["status"].annotation
    named = {value for arg in get_args(literal) for value in get_args(arg)}
    assert named == {status.value for status in TaskStatus}


async def test_completed_tasks_cannot_be_cancelled_or_retried(
    upload: Upload, client: httpx.AsyncClient, headers: dict[str, str], app: FastAPI,
    settings: Settings,
) -> None:  # fmt: skip
    task_id = (await upload()).json()["id"]
    await finish_task(app, settings, task_id)
    for status in ("cancelled", "pending"):
        response = await client.patch(f"{API}/{task_id}", json={"status": status}, headers=headers)
        assert response.status_code == 409


async def test_result_and_files_of_a_completed_task(
    upload: Upload, client: httpx.AsyncClient, headers: dict[str, str], app: FastAPI,
    settings: Settings,
) -> None:  # fmt: skip
    task_id = (await upload(b"Some text.\n", "story.txt")).json()["id"]
    not_ready = await client.get(f"{API}/{task_id}/result", headers=headers)
    assert (not_ready.status_code, not_ready.json()["code"]) == (404, "result_not_ready")
    await finish_task(app, settings, task_id)
    result = (await client.get(f"{API}/{task_id}/result", headers=headers)).json()
    assert result["summary"] == "It was a bright cold day."
    assert (result["quality_score"], result["confidence_score"]) == (0.9, 0.99)
    assert [f["name"] for f in result["files"]] == ["report.json", "summary.md"]
    files = (await client.get(f"{API}/{task_id}/files", headers=headers)).json()
    assert [f["name"] for f in files] == ["report.json", "summary.md", "original.txt"]
    assert files[2]["url"] == f"{API}/{task_id}/files/original.txt"
    task = (await client.get(f"{API}/{task_id}", headers=headers)).json()
    assert task["result_url"] == f"{API}/{task_id}/files/report.json"


async def test_download_with_etag_range_and_disposition(
    upload: Upload, client: httpx.AsyncClient, headers: dict[str, str], app: FastAPI,
    settings: Settings,
) -> None:  # fmt: skip
    content = "Chapter 1\n\n第一回　甄士隐梦幻识通灵\n".encode()
    task_id = (await upload(content, "红楼梦.txt")).json()["id"]
    url = f"{API}/{task_id}/files/original.txt"
    full = await client.get(url, headers=headers)
    assert full.status_code == 200
    assert full.content == content
    assert full.headers["etag"] == f'"{hashlib.sha256(content).hexdigest()}"'
    assert "filename*=utf-8''%E7%BA%A2%E6%A5%BC%E6%A2%A6.txt" in full.headers["content-disposition"]
    part = await client.get(url, headers={**headers, "Range": "bytes=0-6"})
    assert part.status_code == 206
    assert part.content == b"Chapter"
    assert part.headers["content-range"] == f"bytes 0-6/{len(content)}"
    cached = await client.get(url, headers={**headers, "If-None-Match": full.headers["etag"]})
    assert cached.status_code == 304
    bad = await client.get(url, headers={**headers, "Range": "bytes=9999-"})
    assert bad.status_code == 416


@pytest.mark.parametrize("name", ["..%2F..%2Fetc%2Fpasswd", "../original.txt", "report.json", "x"])
async def test_names_not_listed_are_404(
    upload: Upload, client: httpx.AsyncClient, headers: dict[str, str], name: str
) -> None:
    task_id = (await upload()).json()["id"]
    response = await client.get(f"{API}/{task_id}/files/{name}", headers=headers)
    assert response.status_code == 404


async def test_delete_removes_rows_and_files(
    upload: Upload, client: httpx.AsyncClient, headers: dict[str, str], app: FastAPI,
    settings: Settings,
) -> None:  # fmt: skip
    done = (await upload()).json()["id"]
    await finish_task(app, settings, done)
    running = (await upload()).json()["id"]
    await set_status(app, running, "processing")
    for task_id in (done, running):
        response = await client.delete(f"{API}/{task_id}", headers=headers)
        assert response.status_code == 204
        assert (await client.get(f"{API}/{task_id}", headers=headers)).status_code == 404
    assert files_on_disk(settings.upload_dir) == []
    async with app_sessions(app)() as session:
        for model in (Task, TaskLog, FileStorage, TaskQueue):
            assert (await session.execute(select(func.count()).select_from(model))).scalar() == 0


async def test_logs_paginate_and_filter_by_level(
    upload: Upload, client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    task_id = (await upload()).json()["id"]
    await client.patch(f"{API}/{task_id}", json={"status": "cancelled"}, headers=headers)
    page = await client.get(
        f"{API}/{task_id}/logs", params={"page_size": 1, "page": 2}, headers=headers
    )
    body = page.json()
    assert (body["total"], [e["message"] for e in body["items"]]) == (2, ["Cancelled by user"])
    errors = await client.get(f"{API}/{task_id}/logs", params={"level": "error"}, headers=headers)
    assert errors.json()["total"] == 0
    bad = await client.get(f"{API}/{task_id}/logs", params={"level": "loud"}, headers=headers)
    assert bad.status_code == 422


async def test_statistics_in_sql(
    upload: Upload, client: httpx.AsyncClient, headers: dict[str, str], app: FastAPI,
    settings: Settings,
) -> None:  # fmt: skip
    ids = [(await upload()).json()["id"] for _ in range(4)]
    await finish_task(app, settings, ids[0], duration=2.0)
    await finish_task(app, settings, ids[1], duration=4.0)
    await set_status(app, ids[2], "failed")
    stats = (await client.get(f"{API}/statistics", headers=headers)).json()
    assert stats["total"] == 4
    assert stats["by_status"] == {
        "pending": 1, "processing": 0, "completed": 2, "failed": 1, "cancelled": 0,
    }  # fmt: skip
    assert stats["success_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert stats["avg_processing_seconds"] == pytest.approx(3.0, abs=0.01)
    assert stats["p95_processing_seconds"] == pytest.approx(4.0, abs=0.11)
    assert stats["queue_depth"] == 1
    assert stats["completed_last_hour"] == 2
    assert (stats["active_workers"], stats["websocket_connections"]) == (0, 0)


async def test_export_csv_and_json(
    upload: Upload, client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for name in ("a.txt", "b.txt", "c.md"):
        await upload(name=name)
    as_json = await client.get(f"{API}/export", params={"sort": "file_name"}, headers=headers)
    assert as_json.status_code == 200
    assert as_json.headers["content-disposition"] == 'attachment; filename="tasks.json"'
    assert [t["file_name"] for t in json.loads(as_json.content)] == ["a.txt", "b.txt", "c.md"]
    as_csv = await client.get(
        f"{API}/export", params={"format": "csv", "q": ".txt"}, headers=headers
    )
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert sorted(r["file_name"] for r in rows) == ["a.txt", "b.txt"]
    assert rows[0]["status"] == "pending"
    bad = await client.get(f"{API}/export", params={"format": "xml"}, headers=headers)
    assert bad.status_code == 422
