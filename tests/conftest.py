"""Fixtures: a fresh database per test on SQLite and PostgreSQL, an app, a client.

Every test that asks for ``database_url`` (directly or through ``settings``,
``app`` or ``client``) runs once per backend. SQLite: a schema built by
``alembic upgrade head`` once per session into a template file, copied per
test. PostgreSQL: one database per test session, built by migrations, with
every table truncated between tests (the worker pool opens its own sessions,
so transaction-rollback isolation would not hold).

``--backends=sqlite`` or ``--backends=postgresql`` narrows the run. Without a
reachable PostgreSQL the PostgreSQL cases skip with the reason shown, except
under ``CI=true``, where they fail.

File storage: a test that takes the ``storage`` fixture runs once per storage
backend (``--storage``, default ``local,s3``); every other test stores its files
locally (many look at ``UPLOAD_DIR`` itself). The bucket is moto's S3 server on
loopback, started once per session when a test first needs it and stopped by
its PID, with a new bucket per test (``tests/s3.py``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.config import Config
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alembic import command
from app.config import Settings
from app.database import create_engine_for, create_session_factory
from app.events.bus import EventBus
from app.main import create_app
from app.models import Base
from tests.s3 import S3Server, credentials

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "corpus"
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ("sqlite", "postgresql")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backends",
        default=os.environ.get("TEST_BACKENDS", ",".join(BACKENDS)),
        help="comma-separated database backends to run the database tests on",
    )
    parser.addoption(
        "--storage",
        default="local,s3",
        help="comma-separated storage backends for the tests that take the storage fixture",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        wanted = [b for b in metafunc.config.getoption("--backends").split(",") if b]
        marks = {m.name for m in metafunc.definition.iter_markers()}
        if "postgres_only" in marks:
            wanted = [b for b in wanted if b == "postgresql"]
        if "sqlite_only" in marks:
            wanted = [b for b in wanted if b == "sqlite"]
        metafunc.parametrize("backend", wanted, scope="session", indirect=False)
    if "storage" in metafunc.fixturenames:
        storages = [s for s in metafunc.config.getoption("--storage").split(",") if s]
        metafunc.parametrize("storage", storages, scope="session")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on loopback for this session, stopped by its PID at the end."""
    server = S3Server()
    with credentials():
        server.start()
        try:
            yield server
        finally:
            server.stop()


def s3_settings(server: S3Server, bucket: str | None = None) -> dict[str, Any]:
    return {
        "storage_backend": "s3",
        "s3_bucket": bucket or server.new_bucket(),
        "s3_prefix": "ntm/",
        "s3_endpoint_url": server.endpoint,
        "s3_region": "us-east-1",
        "s3_timeout_seconds": 5,
    }


def alembic_config(database_url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "alembic"))
    cfg.attributes["database_url"] = database_url
    cfg.attributes["configure_logger"] = False
    return cfg


def migrate(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


async def _pg_admin(statement: str) -> None:
    import asyncpg

    url = make_url(PG_ADMIN_URL)
    conn = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, database=url.database
    )
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def postgres_available() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        asyncio.run(_pg_admin("SELECT 1"))
    except Exception as exc:
        return f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {exc!r}"
    return None


def create_pg_database(prefix: str = "ntm_test") -> str:
    """Create an empty database and return its async URL."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    name = make_url(url).database
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    reason = postgres_available()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (PostgreSQL tests must run in CI)")
        pytest.skip(reason)
    url = create_pg_database()
    migrate(url)
    yield url
    drop_pg_database(url)


async def _truncate(url: str) -> None:
    import asyncpg

    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host, port=parsed.port or 5432, user=parsed.username, database=parsed.database
    )
    try:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with the migrated schema and no rows, private to this test."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "test.db"
        shutil.copyfile(template, path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("postgres_database")
    asyncio.run(_truncate(url))
    return url


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module (or parametrize) to change the app's settings."""
    return {}


@pytest.fixture
def storage_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The settings of this test's storage backend (its ``storage`` parameter, else
    local): nothing for local, a new bucket for s3."""
    if "storage" not in request.fixturenames or request.getfixturevalue("storage") == "local":
        return {}
    return s3_settings(request.getfixturevalue("s3_server"))


@pytest.fixture
def make_settings(
    database_url: str, tmp_path: Path, storage_settings: dict[str, Any]
) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            **storage_settings,
            "environment": "test",
            "database_url": database_url,
            "upload_dir": tmp_path / "uploads",
            "worker_concurrency": 0,
            "secret_key": "test-secret-key-that-is-long-enough-0123456789",
            "log_format": "console",
            "log_level": "WARNING",
            "rate_limit": "10000/minute",
            "login_rate_limit": "10000/minute",
            "anonymous_rate_limit": "10000/minute",
            "task_lease_seconds": 30,
            "worker_poll_seconds": 0.5,
            "_env_file": None,
        }
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings], settings_overrides: dict[str, Any]
) -> Settings:
    return make_settings(**settings_overrides)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    # The service reads its state from app.state, so requests can go to the app itself.
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=60):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A session factory on the test database, independent of any app."""
    engine = create_engine_for(settings)
    try:
        yield create_session_factory(engine, EventBus())
    finally:
        await engine.dispose()
