"""An object store that cannot be reached: uploads answer 503, attempts fail and are retried.

The service talks to moto's S3 server through :class:`CutOffProxy`, which the
test (or the processor, between a worker's read and its write) cuts off; the
bucket is inspected directly, past the proxy.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.database import factory_bus
from app.models import Task, TaskLog
from app.queue.pool import WorkerPool
from tests.conftest import s3_settings
from tests.s3 import CutOffProxy, S3Server
from tests.storage import processors
from tests.storage.test_backends import LARGE, manuscript, upload


@pytest.fixture
def proxy(s3_server: S3Server) -> Iterator[CutOffProxy]:
    with CutOffProxy(s3_server.port) as cut_off:
        yield cut_off


@pytest.fixture
def settings_overrides(s3_server: S3Server, proxy: CutOffProxy) -> dict[str, Any]:
    return {
        "processors": "gate=tests.storage.processors:gate",
        "worker_concurrency": 0,  # the test runs the attempts itself
        "task_retry_backoff_seconds": 0,
        **s3_settings(s3_server),
        "s3_endpoint_url": proxy.endpoint,
        "s3_timeout_seconds": 3,
    }


@pytest.fixture
async def pool(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[WorkerPool]:
    worker_pool = WorkerPool(settings, sessions, factory_bus(sessions), concurrency=1)
    yield worker_pool
    worker_pool._runner.close()


def bucket_keys(settings: Settings, server: S3Server) -> list[str]:
    assert settings.s3_bucket is not None
    return server.keys(settings.s3_bucket)


async def one_attempt(pool: WorkerPool) -> None:
    assert await pool._claim_free_slots() == 1
    async with asyncio.timeout(30):
        while pool.running:
            await asyncio.sleep(0.02)


async def task_and_logs(
    sessions: async_sessionmaker[AsyncSession], task_id: str
) -> tuple[Task, list[str]]:
    async with sessions() as session:
        task = await session.get(Task, task_id)
        assert task is not None
        logs = await session.execute(
            select(TaskLog.message).where(TaskLog.task_id == task_id).order_by(TaskLog.id)
        )
        return task, list(logs.scalars())


async def assert_no_task(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    assert (await client.get("/api/v1/tasks/", headers=headers)).json()["total"] == 0


async def test_an_unreachable_store_during_an_upload_answers_503_and_keeps_nothing(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    settings: Settings,
    s3_server: S3Server,
    proxy: CutOffProxy,
) -> None:
    proxy.refuse()
    response = await upload(client, headers, manuscript(4000))
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "30"
    problem = response.json()
    assert problem["code"] == "storage_unavailable"
    assert "object storage" in problem["detail"]
    await assert_no_task(client, headers)
    assert bucket_keys(settings, s3_server) == []
    proxy.restore()
    assert (await upload(client, headers, manuscript(4000))).status_code == 202


async def test_a_store_lost_in_the_middle_of_a_multipart_upload_answers_503(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    settings: Settings,
    s3_server: S3Server,
    proxy: CutOffProxy,
) -> None:
    boundary = "storage-fault-boundary"
    text = manuscript(LARGE + 3 * 1024 * 1024)  # under MAX_FILE_SIZE, past one part

    async def body() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
            "Content-Type: text/plain\r\n\r\n"
        ).encode()
        for start in range(0, len(text), 256 * 1024):
            if start >= LARGE:  # parts are on their way: the store goes away
                proxy.refuse()
            yield text[start : start + 256 * 1024]
            await asyncio.sleep(0)
        yield f"\r\n--{boundary}--\r\n".encode()

    response = await client.post(
        "/api/v1/tasks/upload",
        content=body(),
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "storage_unavailable"
    await assert_no_task(client, headers)
    assert bucket_keys(settings, s3_server) == []  # no object, whole or half


async def test_an_unreachable_store_during_the_workers_read_fails_the_attempt_and_retries(
    app: FastAPI,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    settings: Settings,
    s3_server: S3Server,
    proxy: CutOffProxy,
    pool: WorkerPool,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    content = manuscript(5000)
    task_id = (await upload(client, headers, content)).json()["id"]
    proxy.refuse()
    await one_attempt(pool)
    task, logs = await task_and_logs(sessions, task_id)
    assert (task.status, task.retry_count) == ("pending", 1)
    assert "The object store could not read the manuscript" in logs[-1]
    assert "Retrying" in logs[-1]
    proxy.restore()
    async with asyncio.timeout(30):
        await pool.run_until_idle()
    task, _ = await task_and_logs(sessions, task_id)
    assert (task.status, task.attempt) == ("completed", 2)
    copy = await client.get(f"/api/v1/tasks/{task_id}/files/copy.txt", headers=headers)
    assert copy.content == content


@pytest.mark.parametrize("size", [5000, LARGE])
async def test_an_unreachable_store_during_the_workers_write_fails_the_attempt_and_retries(
    app: FastAPI,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    settings: Settings,
    s3_server: S3Server,
    proxy: CutOffProxy,
    pool: WorkerPool,
    sessions: async_sessionmaker[AsyncSession],
    size: int,
) -> None:
    content = manuscript(size)
    task_id = (await upload(client, headers, content)).json()["id"]
    processors.ON_RUN[:] = [lambda _data: proxy.refuse()]  # read done, results not yet written
    await one_attempt(pool)
    task, logs = await task_and_logs(sessions, task_id)
    assert (task.status, task.retry_count) == ("pending", 1)
    assert "The object store could not store the results" in logs[-1]
    held = bucket_keys(settings, s3_server)
    assert len(held) == 1
    assert "/upload-" in held[0]  # nothing of the results, whole or half
    proxy.restore()
    async with asyncio.timeout(30):
        await pool.run_until_idle()
    task, _ = await task_and_logs(sessions, task_id)
    assert (task.status, task.attempt) == ("completed", 2)
    copy = await client.get(f"/api/v1/tasks/{task_id}/files/copy.txt", headers=headers)
    assert copy.content == content
    assert len(bucket_keys(settings, s3_server)) == 2
