"""A live service for the command-line client: uvicorn in a subprocess, on either database.

One server per test module and backend (starting one costs about two
seconds); each test signs in as a user of its own, so tests do not see each
other's tasks. The server knows the e2e test processors (``paced``, ``slow``,
…) and, when a fake remote service is given, remote processors pointing at it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app.api.live import MAX_FRAME_BYTES
from tests.conftest import ROOT, create_pg_database, drop_pg_database, migrate
from tests.e2e.processors import PROCESSORS_SETTING
from tests.e2e.server import ADMIN_EMAIL, ADMIN_PASSWORD, USER_PASSWORD, Server, free_port


@dataclass
class User:
    email: str
    api_key: str


@dataclass
class LiveServer:
    server: Server
    backend: str

    @property
    def url(self) -> str:
        return self.server.base_url

    def new_user(self) -> User:
        """A fresh ordinary user with an API key of their own."""
        email = self.server.create_user(f"cli-{uuid.uuid4().hex[:10]}@example.com")
        response = self.server.api("POST", "/auth/api-keys", email, json={"name": "ntm tests"})
        response.raise_for_status()
        return User(email, response.json()["key"])

    def api(self, user: User, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {user.api_key}"}
        return httpx.request(
            method, f"{self.url}/api/v1{path}", headers=headers, timeout=30, **kwargs
        )


@contextmanager
def database_for(backend: str, root: Path, sqlite_template: Path | None) -> Iterator[str]:
    """A migrated, empty database of ``backend`` for one server."""
    if backend == "sqlite":
        assert sqlite_template is not None
        path = root / "service.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    url = create_pg_database("ntm_cli")
    try:
        migrate(url)
        yield url
    finally:
        drop_pg_database(url)


@contextmanager
def run_live_server(
    database_url: str, root: Path, *, backend: str, remote: dict[str, Any] | None = None
) -> Iterator[LiveServer]:
    port = free_port()
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "UPLOAD_DIR": str(root / "uploads"),
        "WORKER_CONCURRENCY": "4",
        "WORKER_POLL_SECONDS": "0.2",
        "ADMIN_EMAIL": ADMIN_EMAIL,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "SECRET_KEY": "cli-secret-key-that-is-long-enough-0123456789",
        "RATE_LIMIT": "10000/minute",
        "LOGIN_RATE_LIMIT": "10000/minute",
        "ANONYMOUS_RATE_LIMIT": "10000/minute",
        "PROCESSORS": PROCESSORS_SETTING,
        "REMOTE_PROCESSORS": json.dumps(remote or {}),
        "TASK_MAX_RETRIES": "1",
        "TASK_RETRY_BACKOFF_SECONDS": "0",
        "SHUTDOWN_GRACE_SECONDS": "1",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "console",
        "PYTHONPATH": str(ROOT),
    }
    log_path = root / "server.log"
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--no-access-log"]
    command += ["--ws-max-size", str(MAX_FRAME_BYTES), "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", log_path, process)
    try:
        server.wait_until_healthy(within=30)
        yield LiveServer(server, backend)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


__all__ = ["USER_PASSWORD", "LiveServer", "User", "database_for", "run_live_server"]
