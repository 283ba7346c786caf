"""The analyze processor inside the service: upload, worker pool (process pool), result API."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from tests.factories import app_sessions, bearer, make_user
from tests.processors.helpers import CORPUS

API = "/api/v1/tasks"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"worker_concurrency": 1, "worker_poll_seconds": 0.2, "task_retry_backoff_seconds": 0}


@pytest.fixture
async def headers(app: FastAPI, settings: Settings) -> dict[str, str]:
    return bearer(settings, await make_user(app_sessions(app)))


async def wait_until_done(
    client: httpx.AsyncClient, task_id: str, headers: dict[str, str]
) -> dict[str, Any]:
    async with asyncio.timeout(90):
        while True:
            task: dict[str, Any] = (await client.get(f"{API}/{task_id}", headers=headers)).json()
            if task["status"] in ("completed", "failed", "cancelled"):
                return task
            await asyncio.sleep(0.1)


async def test_a_corpus_novel_is_analysed_through_the_api(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    source = CORPUS / "alice_in_wonderland.en.md"
    content = source.read_bytes()
    response = await client.post(
        f"{API}/upload", files={"file": (source.name, content, "text/markdown")}, headers=headers
    )
    assert response.status_code == 202
    assert response.json()["processor"] == "analyze"
    task_id = response.json()["id"]

    task = await wait_until_done(client, task_id, headers)
    assert (task["status"], task["progress"], task["error_message"]) == ("completed", 100, None)
    assert task["result_url"] == f"{API}/{task_id}/files/report.json"

    result = (await client.get(f"{API}/{task_id}/result", headers=headers)).json()
    report_response = await client.get(f"{API}/{task_id}/files/report.json", headers=headers)
    assert report_response.status_code == 200
    assert report_response.headers["content-type"].startswith("application/json")
    report = json.loads(report_response.content)
    assert report["counts"]["chapters"] == 12
    assert result["summary"] == " ".join(report["summary"])
    assert result["quality_score"] == report["quality"]["score"]
    assert result["confidence_score"] == report["encoding"]["confidence"] == 1.0
    assert result["metrics"] == {
        "words": report["counts"]["words"],
        "chapters": 12,
        "sentences": report["counts"]["sentences"],
        "language": "en",
        "encoding": "utf-8",
    }
    names = [f["name"] for f in result["files"]]
    assert {"report.json", "summary.md"} <= set(names)

    summary = await client.get(f"{API}/{task_id}/files/summary.md", headers=headers)
    assert summary.status_code == 200
    assert summary.headers["content-type"].startswith("text/markdown")
    assert summary.text.startswith("# Manuscript analysis\n")
    assert "## Chapters" in summary.text


async def test_an_undecodable_upload_fails_at_once_with_a_clear_message(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    # text at the start (so the upload's sniffing accepts it), then bytes no encoding reads
    rng = random.Random(3)
    content = (
        b"Chapter 1\n\n"
        + b"Plain words. " * 8000
        + bytes(rng.randrange(1, 256) for _ in range(20_000))
    )
    response = await client.post(
        f"{API}/upload", files={"file": ("broken.txt", content, "text/plain")}, headers=headers
    )
    assert response.status_code == 202
    task = await wait_until_done(client, response.json()["id"], headers)
    assert (task["status"], task["retry_count"], task["result_url"]) == ("failed", 0, None)
    assert task["error_message"] == (
        "The file does not look like text: decoded as iso-8859-15 it is full of control "
        "characters (binary data?)."
    )
    missing = await client.get(f"{API}/{task['id']}/result", headers=headers)
    assert (missing.status_code, missing.json()["code"]) == (404, "result_not_ready")
