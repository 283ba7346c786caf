"""Two hosts sharing one PostgreSQL and one bucket, and nothing else.

An API process (``WORKER_CONCURRENCY=0``) and a worker process
(``python -m app.worker``) each get an empty ``UPLOAD_DIR`` of their own, as two
machines would; the only things they share are the database and the bucket
(moto's S3 server on loopback). A manuscript uploaded through the API is
analysed by the worker and its report downloaded through the API, byte for
byte the report the local backend makes of the same manuscript.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.database import factory_bus
from app.models import User
from app.queue.pool import WorkerPool
from tests.conftest import CORPUS, ROOT, s3_settings
from tests.factories import bearer
from tests.s3 import S3Server, free_port
from tests.storage.conftest import wait_for

BOOK = CORPUS / "alice_in_wonderland.en.utf8.txt"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"worker_concurrency": 0}  # this process's worker runs only the local comparison


class Hosts:
    """Processes of the simulated hosts, stopped by PID."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, command: list[str], env: dict[str, str], log: Path) -> None:
        with log.open("wb") as out:
            self.procs.append(
                subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
            )

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    group = Hosts()
    yield group
    group.stop()


@pytest.mark.postgres_only
async def test_an_api_host_and_a_worker_host_share_only_the_database_and_the_bucket(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    settings: Settings,
    user: User,
    s3_server: S3Server,
    hosts: Hosts,
    tmp_path: Path,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    content = BOOK.read_bytes()
    files = {"file": ("alice.txt", content, "text/plain")}

    # the local backend's report, for comparison (this process, its own UPLOAD_DIR)
    local = await client.post("/api/v1/tasks/upload", files=files, headers=headers)
    local_id = local.json()["id"]
    pool = WorkerPool(settings, sessions, factory_bus(sessions), concurrency=1)
    try:
        async with asyncio.timeout(120):
            await pool.run_until_idle()
    finally:
        pool._runner.close()
    assert (await wait_for(client, headers, local_id))["status"] == "completed"
    local_report = await client.get(f"/api/v1/tasks/{local_id}/files/report.json", headers=headers)
    assert local_report.status_code == 200

    s3 = s3_settings(s3_server)
    common = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "SECRET_KEY": settings.secret_key,
        "STORAGE_BACKEND": "s3",
        "S3_BUCKET": s3["s3_bucket"],
        "S3_PREFIX": s3["s3_prefix"],
        "S3_ENDPOINT_URL": s3["s3_endpoint_url"],
        "S3_REGION": s3["s3_region"],
        "RATE_LIMIT": "10000/minute",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "WARNING",
        "WORKER_POLL_SECONDS": "0.2",
        "SHUTDOWN_GRACE_SECONDS": "2",
        "PYTHONPATH": str(ROOT),
    }
    api_dir, worker_dir = tmp_path / "api-host", tmp_path / "worker-host"
    port = free_port()
    hosts.start(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)],
        {**common, "UPLOAD_DIR": str(api_dir), "WORKER_CONCURRENCY": "0"},
        tmp_path / "api.log",
    )
    hosts.start(
        [sys.executable, "-m", "app.worker"],
        {**common, "UPLOAD_DIR": str(worker_dir), "WORKER_CONCURRENCY": "1"},
        tmp_path / "worker.log",
    )
    auth = bearer(settings, user)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as api:
        async with asyncio.timeout(60):
            while True:
                try:
                    if (await api.get("/health")).status_code in (200, 503):
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        response = await api.post("/api/v1/tasks/upload", files=files, headers=auth)
        assert response.status_code == 202, response.text
        task_id = response.json()["id"]
        done = await wait_for(api, auth, task_id, seconds=120)
        assert done["status"] == "completed", done
        report = await api.get(f"/api/v1/tasks/{task_id}/files/report.json", headers=auth)
        assert report.status_code == 200
        assert report.content == local_report.content  # byte-identical to the local backend's
        original = await api.get(f"/api/v1/tasks/{task_id}/files/original.txt", headers=auth)
        assert original.content == content

    keys = s3_server.keys(s3["s3_bucket"])
    assert sorted(k.rsplit("/", 1)[-1] for k in keys if "/results/" in k) == [
        "report.json",
        "summary.md",
    ]
    assert all(k.startswith(f"ntm/tasks/{task_id}/") for k in keys)
    # neither host kept a file of the task: the API's dir holds no upload, the worker's
    # scratch copy went with its attempt
    for directory in (api_dir, worker_dir):
        assert [p for p in directory.rglob("*") if p.is_file()] == []
    assert "Traceback" not in (tmp_path / "worker.log").read_text()
    assert "Traceback" not in (tmp_path / "api.log").read_text()
