"""Every manuscript in a common encoding is accepted and analysed; binary formats are not.

Through the real ``POST /api/v1/tasks/upload`` (and ``/tasks/batch``) with a
worker pool running the real ``analyze`` processor, on both databases. The
upload check reads the first 64 KiB; the files here are built so that this cut
falls inside a multi-byte character (see tests/processors/variants.py).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import func, select

from app.config import Settings
from app.models import Task
from tests.api.conftest import Upload, files_on_disk
from tests.factories import app_sessions
from tests.processors.variants import (
    ISSUE_FILES,
    SIGNATURES,
    Manuscript,
    issue_files,
    manuscripts,
)

API = "/api/v1/tasks"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "worker_concurrency": 1,
        "worker_poll_seconds": 0.1,
        "task_retry_backoff_seconds": 0,
        "rate_limit": "100000/minute",
    }


async def finished(client: httpx.AsyncClient, task_id: str, headers: dict[str, str]) -> Any:
    async with asyncio.timeout(90):
        while True:
            task = (await client.get(f"{API}/{task_id}", headers=headers)).json()
            if task["status"] in ("completed", "failed", "cancelled"):
                return task
            await asyncio.sleep(0.05)


async def analysed_encoding(
    client: httpx.AsyncClient, task_id: str, headers: dict[str, str]
) -> dict[str, Any]:
    """The task, run to its end, must have completed: ``report.json``'s ``encoding``."""
    task = await finished(client, task_id, headers)
    assert (task["status"], task["error_message"]) == ("completed", None)
    response = await client.get(f"{API}/{task_id}/files/report.json", headers=headers)
    assert response.status_code == 200
    encoding: dict[str, Any] = json.loads(response.content)["encoding"]
    return encoding


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(manuscript=manuscripts(max_body_chars=40_000))
async def test_every_manuscript_is_accepted_and_analysed_in_its_encoding(
    upload: Upload, client: httpx.AsyncClient, headers: dict[str, str], manuscript: Manuscript
) -> None:
    response = await upload(manuscript.data, manuscript.name)
    assert response.status_code == 202, (manuscript, response.text)
    encoding = await analysed_encoding(client, response.json()["id"], headers)
    assert manuscript.is_right_encoding(encoding["name"]), (manuscript, encoding)
    assert encoding["bom"] is bool(manuscript.encoding.bom)


@pytest.mark.parametrize("case", list(ISSUE_FILES))
async def test_the_refused_files_of_the_issue_are_accepted_and_analysed(
    upload: Upload, client: httpx.AsyncClient, headers: dict[str, str], case: str
) -> None:
    data = issue_files()[case]
    response = await upload(data, f"{case}.txt")
    assert response.status_code == 202, response.text
    assert response.json()["file_size"] == len(data)
    encoding = await analysed_encoding(client, response.json()["id"], headers)
    assert encoding["name"] == ISSUE_FILES[case]


async def test_a_batch_holding_such_a_file_is_accepted_whole(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    data = issue_files()
    files = [
        ("files", ("neko.txt", data["sjis"], "text/plain")),
        ("files", ("emoji.txt", data["utf16-surrogate"], "text/plain")),
        ("files", ("plain.md", b"# Title\n\nSome words.\n", "text/markdown")),
    ]
    response = await client.post(f"{API}/batch", files=files, headers=headers)
    assert response.status_code == 202, response.text
    tasks = response.json()["tasks"]
    assert [t["file_name"] for t in tasks] == ["neko.txt", "emoji.txt", "plain.md"]
    names = [(await analysed_encoding(client, t["id"], headers))["name"] for t in tasks]
    assert names == ["shift_jis", "utf-16-le", "utf-8"]


@pytest.mark.parametrize("kind", list(SIGNATURES))
async def test_binary_formats_are_refused_by_their_signature(
    upload: Upload, app: object, settings: Settings, kind: str
) -> None:
    signature, name = SIGNATURES[kind]
    # after the signature, 200 KB of plain text: only the signature gives it away
    content = signature + b"Chapter 1\n\nIt was a bright cold day in April.\n" * 5000
    response = await upload(content, "manuscript.txt")
    assert response.status_code == 415, response.text
    body = response.json()
    assert body["code"] == "unsupported_file_type"
    assert body["detail"] == f"manuscript.txt is {name}, not a text file"
    assert files_on_disk(settings.upload_dir) == []
    async with app_sessions(app)() as session:
        assert (await session.execute(select(func.count()).select_from(Task))).scalar() == 0


async def test_a_batch_with_one_binary_file_is_refused_whole(
    client: httpx.AsyncClient, headers: dict[str, str], settings: Settings
) -> None:
    files = [
        ("files", ("neko.txt", issue_files()["sjis"], "text/plain")),
        ("files", ("book.txt", b"%PDF-1.4\n" + b"plain words\n" * 100, "text/plain")),
    ]
    response = await client.post(f"{API}/batch", files=files, headers=headers)
    assert (response.status_code, response.json()["detail"]) == (
        415,
        "book.txt is a PDF document, not a text file",
    )
    assert files_on_disk(settings.upload_dir) == []
    assert (await client.get(f"{API}/", headers=headers)).json()["total"] == 0
