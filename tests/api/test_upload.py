"""POST /tasks/upload: streaming, validation, idempotency, nothing left behind on refusal."""

from __future__ import annotations

import asyncio
import hashlib

import httpx
import pytest
from sqlalchemy import func, select

from app.config import Settings
from app.models import FileStorage, Task, TaskLog, TaskQueue
from tests.api.conftest import Upload, files_on_disk
from tests.factories import app_sessions


async def test_upload_creates_a_pending_task_with_its_file_and_queue_row(
    upload: Upload, app: object, settings: Settings
) -> None:
    response = await upload(b"Hello world.\n", "my novel.txt", data={"priority": "7"})
    assert response.status_code == 202
    task = response.json()
    assert response.headers["location"] == f"/api/v1/tasks/{task['id']}"
    assert task["status"] == "pending"
    assert task["progress"] == 0
    assert task["stage"] == "queued"
    assert task["priority"] == 7
    assert task["processor"] == "analyze"
    assert task["file_name"] == "my novel.txt"
    assert task["file_size"] == 13
    assert task["file_type"] == "text/plain"
    assert task["checksum"] == "sha256:" + hashlib.sha256(b"Hello world.\n").hexdigest()
    assert task["max_retries"] == settings.task_max_retries
    async with app_sessions(app)() as session:
        stored = (await session.execute(select(FileStorage))).scalar_one()
        assert stored.kind == "upload"
        assert stored.name == "original.txt"
        assert stored.storage_path.startswith(f"tasks/{task['id']}/upload-")
        assert "novel" not in stored.storage_path
        queued = (await session.execute(select(TaskQueue))).scalar_one()
        assert (queued.task_id, queued.priority, queued.worker_id) == (task["id"], 7, None)
        assert (await session.execute(select(func.count()).select_from(TaskLog))).scalar() == 1
    on_disk = files_on_disk(settings.upload_dir)
    assert [p.read_bytes() for p in on_disk] == [b"Hello world.\n"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../x.txt", "x.txt"),
        ("/etc/passwd.txt", "passwd.txt"),
        ("C:\\Users\\me\\draft.md", "draft.md"),
        ("nul\x00byte.txt", "nul%00byte.txt"),  # httpx percent-encodes it
        ("红楼梦.txt", "红楼梦.txt"),
        ("a" * 400 + ".txt", "a" * 251 + ".txt"),
    ],
)
async def test_client_names_are_display_data_only(
    upload: Upload, settings: Settings, name: str, expected: str
) -> None:
    response = await upload(b"text\n", name)
    assert response.status_code == 202, response.text
    assert response.json()["file_name"] == expected
    for path in files_on_disk(settings.upload_dir):
        assert path.resolve().is_relative_to(settings.upload_dir.resolve())
        assert path.name.startswith("upload-")


@pytest.mark.parametrize(
    ("content", "name", "status", "code"),
    [
        (b"", "empty.txt", 422, "empty_file"),
        (b"plain text", "image.png", 415, "unsupported_file_type"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 50, "fake.txt", 415, "unsupported_file_type"),
        (b"x" * 2048, "big.txt", 413, "file_too_large"),
    ],
)
async def test_refused_uploads_leave_nothing_behind(
    make_settings: object,
    content: bytes,
    name: str,
    status: int,
    code: str,
    upload: Upload,
    app: object,
    settings: Settings,
) -> None:
    settings.max_file_size = 1024
    response = await upload(content, name)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert files_on_disk(settings.upload_dir) == []
    async with app_sessions(app)() as session:
        assert (await session.execute(select(func.count()).select_from(Task))).scalar() == 0


async def test_utf16_text_with_nul_bytes_is_accepted(upload: Upload) -> None:
    response = await upload("Chapter 1\nHello\n".encode("utf-16"), "wide.txt")
    assert response.status_code == 202


@pytest.mark.parametrize(
    ("data", "field"),
    [({"priority": "11"}, "priority"), ({"priority": "high"}, "priority"),
     ({"processor": "nope"}, "processor")],
)  # fmt: skip
async def test_bad_options_are_422(upload: Upload, data: dict[str, str], field: str) -> None:
    response = await upload(data=data)
    assert response.status_code == 422
    body = response.json()
    assert body["errors"][0]["loc"] == ["body", field]


async def test_unknown_project_is_404(upload: Upload, settings: Settings) -> None:
    response = await upload(data={"project_id": "no-such-project"})
    assert response.status_code == 404
    assert response.json()["code"] == "project_not_found"
    assert files_on_disk(settings.upload_dir) == []  # the received file is not kept


async def test_content_length_over_the_limit_is_refused_before_reading(
    client: httpx.AsyncClient, headers: dict[str, str], settings: Settings
) -> None:
    settings.max_file_size = 1024
    read = 0

    async def body() -> object:
        nonlocal read
        for _ in range(1000):
            read += 1
            yield b"x" * 1024

    response = await client.post(
        "/api/v1/tasks/upload",
        content=body(),
        headers={
            **headers,
            "content-type": "multipart/form-data; boundary=xyz",
            "content-length": str(10 * 1024 * 1024),
        },
    )
    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"


async def test_not_multipart_is_422(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.post("/api/v1/tasks/upload", json={"file": "x"}, headers=headers)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_form"


async def test_idempotency_key_returns_the_first_task(
    upload: Upload, settings: Settings, app: object
) -> None:
    key = {"Idempotency-Key": "retry-1"}
    first = await upload(extra_headers=key)
    second = await upload(extra_headers=key)
    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json()["id"] == first.json()["id"]
    results = await asyncio.gather(
        *(upload(extra_headers={"Idempotency-Key": "k2"}) for _ in range(5))
    )
    assert len({r.json()["id"] for r in results}) == 1
    assert sorted(r.status_code for r in results).count(202) == 1
    async with app_sessions(app)() as session:
        assert (await session.execute(select(func.count()).select_from(Task))).scalar() == 2
    assert len(files_on_disk(settings.upload_dir)) == 2
