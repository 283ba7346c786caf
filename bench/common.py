"""What the benchmarks share: scratch databases, the schema, a user, the API as a child process.

The benchmarks are scripts (``python bench/bench_x.py``), so this module is
imported as ``common`` from their folder; it puts the project root on
``sys.path`` for the ``app`` imports.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from alembic.config import Config  # noqa: E402

from alembic import command  # noqa: E402
from app.api.live import MAX_FRAME_BYTES  # noqa: E402
from app.config import Settings  # noqa: E402
from app.database import create_engine_for, create_session_factory  # noqa: E402
from app.events.bus import EventBus  # noqa: E402
from app.models import TaskStatus, User  # noqa: E402
from app.models.base import new_id, utcnow  # noqa: E402

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _admin(url: str, statement: str) -> None:
    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host, port=parsed.port or 5432, user=parsed.username, database=parsed.database
    )
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@asynccontextmanager
async def scratch_postgres(admin_url: str = ADMIN_URL) -> AsyncIterator[str]:
    """A new, migrated PostgreSQL database (its URL), dropped afterwards."""
    name = f"ntm_bench_{uuid.uuid4().hex[:8]}"
    await _admin(admin_url, f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(drivername="postgresql+asyncpg", database=name)
    database_url = url.render_as_string(hide_password=False)
    try:
        await migrate(database_url)
        yield database_url
    finally:
        await _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def migrate(database_url: str) -> None:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes.update(database_url=database_url, configure_logger=False)
    await asyncio.to_thread(command.upgrade, cfg, "head")


def bench_settings(database_url: str, upload_dir: Path) -> Settings:
    """Settings for ``database_url`` with a fresh secret key (no ``.env`` read)."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        upload_dir=upload_dir,
        secret_key=uuid.uuid4().hex,
    )


async def create_owner(settings: Settings) -> User:
    """The user that owns the benchmark's tasks."""
    engine = create_engine_for(settings)
    try:
        async with create_session_factory(engine, EventBus())() as session, session.begin():
            owner = User(email="bench@example.com", password_hash="unusable", role="user")  # noqa: S106
            session.add(owner)
        return owner
    finally:
        await engine.dispose()


def task_row(owner: str) -> dict[str, object]:
    """A pending ``noop`` task, as a row to insert."""
    return {
        "id": new_id(), "owner_id": owner, "file_name": "bench.txt", "file_size": 1,
        "file_type": "text/plain", "checksum": "sha256:0", "status": TaskStatus.PENDING,
        "progress": 0, "stage": "queued", "priority": 5, "processor": "noop", "retry_count": 0,
        "max_retries": 3, "attempt": 0, "event_seq": 0, "uploaded_at": utcnow(),
        "updated_at": utcnow(),
    }  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_api(port: int, env: dict[str, str], *options: str) -> subprocess.Popen[bytes]:
    """``uvicorn app.main:app`` on 127.0.0.1:``port``, quiet, with ``env`` added."""
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port),
         "--log-level", "warning", "--no-access-log",
         "--ws-max-size", str(MAX_FRAME_BYTES), *options],
        cwd=ROOT, env={**os.environ, "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json", **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def wait_healthy(client: httpx.AsyncClient, tries: int = 600) -> None:
    """Until ``GET /health`` answers 200 (the API has started)."""
    for _ in range(tries):
        try:
            if (await client.get("/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError("the API did not become healthy")
