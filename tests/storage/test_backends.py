"""The task API and the worker path on each storage backend (``storage``: local, s3).

Each test runs on both databases and both storage backends; s3 is moto's S3
server on loopback (``tests/s3.py``), never an in-process mock of the client.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from app.config import Settings
from app.models import FileStorage
from app.models.base import utcnow
from app.queue import maintenance
from app.services import storage as file_storage
from tests.factories import app_sessions
from tests.s3 import S3Server
from tests.storage.conftest import wait_for

LARGE = 6 * 1024 * 1024 + 12345  # past one part: a multipart upload on s3


def manuscript(size: int) -> bytes:
    line = b"It was a bright cold day in April, and the clocks were striking thirteen.\n"
    return (b"Chapter 1\n\n" + line * (size // len(line) + 1))[:size]


def stored_files(settings: Settings, request: pytest.FixtureRequest) -> list[str]:
    """What the configured backend holds: object keys (s3) or files under UPLOAD_DIR."""
    if settings.storage_backend == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        assert settings.s3_bucket is not None
        return server.keys(settings.s3_bucket)
    root = settings.upload_dir
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def pending_multipart_uploads(settings: Settings, request: pytest.FixtureRequest) -> list[str]:
    if settings.storage_backend != "s3":
        return []
    server: S3Server = request.getfixturevalue("s3_server")
    assert settings.s3_bucket is not None
    return server.multipart_uploads(settings.s3_bucket)


async def upload(
    client: httpx.AsyncClient, headers: dict[str, str], content: bytes, name: str = "book.txt"
) -> httpx.Response:
    return await client.post(
        "/api/v1/tasks/upload",
        files={"file": (name, content, "text/plain")},
        data={"processor": "gate"},
        headers=headers,
    )


@pytest.mark.parametrize("size", [2000, LARGE])
async def test_upload_analyse_and_download_with_etag_range_304_and_416(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    settings: Settings,
    storage: str,
    size: int,
    request: pytest.FixtureRequest,
) -> None:
    content = manuscript(size)
    response = await upload(client, headers, content)
    assert response.status_code == 202, response.text
    task_id = response.json()["id"]
    assert (await wait_for(client, headers, task_id))["status"] == "completed"

    files = (await client.get(f"/api/v1/tasks/{task_id}/files", headers=headers)).json()
    assert [f["name"] for f in files] == ["copy.txt", "original.txt"]
    digest = hashlib.sha256(content).hexdigest()
    etag = f'"{digest}"'
    for name in ("copy.txt", "original.txt"):
        url = f"/api/v1/tasks/{task_id}/files/{name}"
        whole = await client.get(url, headers=headers)
        assert whole.status_code == 200
        assert whole.content == content
        assert whole.headers["etag"] == etag
        assert whole.headers["content-length"] == str(size)
        assert whole.headers["accept-ranges"] == "bytes"
        assert "last-modified" in whole.headers
        not_modified = await client.get(url, headers={**headers, "If-None-Match": etag})
        assert (not_modified.status_code, not_modified.content) == (304, b"")
        part = await client.get(url, headers={**headers, "Range": "bytes=10-19"})
        assert part.status_code == 206
        assert part.content == content[10:20]
        assert part.headers["content-range"] == f"bytes 10-19/{size}"
        tail = await client.get(url, headers={**headers, "Range": "bytes=-5"})
        assert (tail.status_code, tail.content) == (206, content[-5:])
        parts = await client.get(url, headers={**headers, "Range": "bytes=0-3,20-23"})
        assert parts.status_code == 206
        assert parts.headers["content-type"].startswith("multipart/byteranges")
        assert content[0:4] in parts.content
        assert content[20:24] in parts.content
        beyond = await client.get(url, headers={**headers, "Range": f"bytes={size + 10}-"})
        assert beyond.status_code == 416
        assert beyond.headers["content-type"] == "application/problem+json"
        assert beyond.headers["content-range"] == f"bytes */{size}"
        stale = await client.get(
            url, headers={**headers, "Range": "bytes=0-3", "If-Range": '"other"'}
        )
        assert (stale.status_code, stale.content) == (200, content)

    held = stored_files(settings, request)
    if storage == "s3":
        assert [k.rsplit("/", 1)[0] for k in held] == [
            f"ntm/tasks/{task_id}/results",
            f"ntm/tasks/{task_id}",
        ]
        assert held[1].startswith(f"ntm/tasks/{task_id}/upload-")
        assert held[1].endswith(".txt")
        assert not [p for p in settings.upload_dir.rglob("*") if p.is_file()]  # scratch gone
    else:
        assert held[0] == f"tasks/{task_id}/results/copy.txt"
        assert held[1].startswith(f"tasks/{task_id}/upload-")
    assert pending_multipart_uploads(settings, request) == []

    async with app_sessions(client._transport.app)() as session:  # type: ignore[attr-defined]
        backends = (await session.execute(select(FileStorage.storage_type))).scalars().all()
    assert set(backends) == {storage}


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (manuscript(LARGE + 2 * 1024 * 1024), 413),  # refused midway through a multipart upload
        (b"%PDF-1.7\n" + b"x" * 5000, 415),  # refused once received: the object is deleted
        (b"%PDF-1.7\n" + b"x" * LARGE, 415),  # a whole multipart object, then deleted
    ],
)
async def test_a_refused_upload_leaves_nothing_in_the_store(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    settings: Settings,
    storage: str,
    content: bytes,
    status: int,
    request: pytest.FixtureRequest,
) -> None:
    if status == 413:
        settings.max_file_size = LARGE + 1024 * 1024
    response = await upload(client, headers, content)
    assert response.status_code == status, response.text
    assert (await client.get("/api/v1/tasks/", headers=headers)).json()["total"] == 0
    assert stored_files(settings, request) == []
    assert pending_multipart_uploads(settings, request) == []


async def test_retention_and_deletion_remove_the_stored_files(
    app: FastAPI,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    settings: Settings,
    storage: str,
    request: pytest.FixtureRequest,
) -> None:
    ids = []
    for _ in range(2):
        response = await upload(client, headers, manuscript(3000))
        ids.append(response.json()["id"])
        assert (await wait_for(client, headers, ids[-1]))["status"] == "completed"
    assert len(stored_files(settings, request)) == 4
    kept, expired = ids
    sessions = app_sessions(app)
    async with sessions() as session, session.begin():
        await session.execute(
            update(FileStorage)
            .where(FileStorage.task_id == expired)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        removed = await maintenance.delete_expired_files(session, settings)
    assert removed == 2
    assert all(expired not in key for key in stored_files(settings, request))
    listed = (await client.get(f"/api/v1/tasks/{expired}/files", headers=headers)).json()
    assert listed == []

    deleted = await client.delete(f"/api/v1/tasks/{kept}", headers=headers)
    assert deleted.status_code == 204
    assert stored_files(settings, request) == []


async def test_a_batch_archive_streams_the_results_from_the_store(
    client: httpx.AsyncClient, headers: dict[str, str], settings: Settings, storage: str
) -> None:
    contents = {"a.txt": manuscript(1500), "b.md": manuscript(LARGE)}
    response = await client.post(
        "/api/v1/tasks/batch",
        files=[("files", (name, data, "text/plain")) for name, data in contents.items()],
        data={"processor": "gate"},
        headers=headers,
    )
    assert response.status_code == 202, response.text
    body = response.json()
    for task in body["tasks"]:
        assert (await wait_for(client, headers, task["id"]))["status"] == "completed"
    archive = await client.get(f"/api/v1/batches/{body['batch_id']}/archive", headers=headers)
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
        got = {name.split("-", 1)[0]: zipped.read(name) for name in zipped.namelist()}
    assert got == {"a": contents["a.txt"], "b": contents["b.md"]}


async def test_health_probes_the_configured_store(
    client: httpx.AsyncClient, settings: Settings, storage: str
) -> None:
    body = (await client.get("/health")).json()
    assert body["storage"]["status"] == "ok"
    if storage == "s3":
        assert body["storage"]["bucket"] == f"s3://{settings.s3_bucket}/ntm/"


async def test_files_stored_before_a_switch_of_backend_stay_readable(
    make_settings: Any, s3_server: S3Server, tmp_path: Path
) -> None:
    """local -> s3 -> local: every file stays downloadable from where its row says it is."""
    from asgi_lifespan import LifespanManager

    from app.main import create_app
    from tests.conftest import s3_settings
    from tests.factories import bearer, make_user

    bucket = s3_server.new_bucket()
    s3 = s3_settings(s3_server, bucket)
    common = {
        "processors": "gate=tests.storage.processors:gate",
        "worker_concurrency": 1,
        "worker_poll_seconds": 0.1,
    }
    phases = [
        make_settings(**common, s3_bucket=bucket, s3_endpoint_url=s3_server.endpoint),
        make_settings(**common, **s3),
        make_settings(**common, s3_bucket=bucket, s3_endpoint_url=s3_server.endpoint),
    ]
    assert [p.storage_backend for p in phases] == ["local", "s3", "local"]
    uploaded: dict[str, bytes] = {}
    user = None
    for number, settings in enumerate(phases):
        application = create_app(settings)
        async with LifespanManager(application, startup_timeout=30, shutdown_timeout=60):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                if user is None:
                    user = await make_user(app_sessions(application))
                headers = bearer(settings, user)
                content = manuscript(1000 + number)
                task_id = (await upload(client, headers, content)).json()["id"]
                assert (await wait_for(client, headers, task_id))["status"] == "completed"
                uploaded[task_id] = content
                for earlier, data in uploaded.items():
                    for name in ("copy.txt", "original.txt"):
                        got = await client.get(
                            f"/api/v1/tasks/{earlier}/files/{name}", headers=headers
                        )
                        assert (got.status_code, got.content) == (200, data)
    in_bucket = s3_server.keys(bucket)
    first, second, third = uploaded
    assert len(in_bucket) == 2
    assert all(second in key for key in in_bucket)
    assert (tmp_path / "uploads" / "tasks" / first / "results" / "copy.txt").is_file()
    assert (tmp_path / "uploads" / "tasks" / third / "results" / "copy.txt").is_file()
    assert file_storage.Stored.of(f"s3://{bucket}/x/y").bucket == bucket
