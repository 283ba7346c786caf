"""A real service for the browser: uvicorn in a subprocess on a migrated temp SQLite.

Shared by the e2e fixtures and ``tools/screenshots.py``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.api.live import MAX_FRAME_BYTES
from tests.conftest import ROOT, migrate
from tests.e2e.processors import PROCESSORS_SETTING

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin-password-for-e2e"
USER_PASSWORD = "user-password-for-e2e"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    base_url: str
    log_path: Path
    process: subprocess.Popen[bytes]
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, email: str, password: str) -> str:
        """An access token (one login per user: password hashing is slow on purpose)."""
        if email not in self.tokens:
            response = httpx.post(
                f"{self.base_url}/api/v1/auth/login",
                data={"username": email, "password": password},
            )
            response.raise_for_status()
            self.tokens[email] = response.json()["access_token"]
        return self.tokens[email]

    def create_user(self, email: str | None = None) -> str:
        """A new ordinary user with USER_PASSWORD; returns the email."""
        email = email or f"reader-{uuid.uuid4().hex[:8]}@example.com"
        response = httpx.post(
            f"{self.base_url}/api/v1/users",
            json={"email": email, "password": USER_PASSWORD, "role": "user"},
            headers={"Authorization": f"Bearer {self.token(ADMIN_EMAIL, ADMIN_PASSWORD)}"},
        )
        if response.status_code != 201:
            raise RuntimeError(f"could not create {email}: {response.text}")
        return email

    def api(self, method: str, path: str, email: str, **kwargs: Any) -> httpx.Response:
        """One API request as ``email`` (to arrange or check state around the browser)."""
        headers = {"Authorization": f"Bearer {self.token(email, USER_PASSWORD)}"}
        return httpx.request(method, f"{self.base_url}/api/v1{path}", headers=headers, **kwargs)

    def wait_until_healthy(self, within: float) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server did not start:\n{self.log_path.read_text()[-4000:]}")


@contextmanager
def run_server(root: Path, workers: int = 2) -> Iterator[Server]:
    """Migrate a SQLite database under ``root`` and serve the app on a free port.

    The migration runs in a thread of its own: this thread may already host
    Playwright's event loop, and ``alembic upgrade`` starts one of its own.
    """
    database_url = f"sqlite+aiosqlite:///{root / 'service.db'}"
    with ThreadPoolExecutor(max_workers=1) as executor:
        executor.submit(migrate, database_url).result()
    port = free_port()
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "UPLOAD_DIR": str(root / "uploads"),
        "WORKER_CONCURRENCY": str(workers),
        "WORKER_POLL_SECONDS": "0.2",
        "ADMIN_EMAIL": ADMIN_EMAIL,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "SECRET_KEY": "e2e-secret-key-that-is-long-enough-0123456789",
        "RATE_LIMIT": "10000/minute",
        "LOGIN_RATE_LIMIT": "10000/minute",
        "ANONYMOUS_RATE_LIMIT": "10000/minute",
        "PROCESSORS": PROCESSORS_SETTING,
        "SHUTDOWN_GRACE_SECONDS": "1",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "console",
        "PYTHONPATH": str(ROOT),
    }
    log_path = root / "server.log"
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--no-access-log"]
    command += ["--ws-max-size", str(MAX_FRAME_BYTES)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            cwd=root,  # away from the checkout's .env
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", log_path, process)
    try:
        server.wait_until_healthy(within=30)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
