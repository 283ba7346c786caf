"""The migration creates exactly the models' schema, and round-trips, on both backends."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import create_async_engine

from alembic import command
from app.models import Base
from tests.conftest import (
    alembic_config,
    create_pg_database,
    drop_pg_database,
    postgres_available,
)

EXPRESSION_INDEXES = {"ix_task_queue_claim"}


@pytest.fixture
def empty_database(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    reason = postgres_available()
    if reason is not None:
        pytest.fail(reason)
    url = create_pg_database("ntm_migrations")
    try:
        yield url
    finally:
        drop_pg_database(url)


def _inspect(url: str) -> tuple[set[str], list[tuple[object, ...]], dict[str, list[str]]]:
    def read(
        connection: Connection,
    ) -> tuple[set[str], list[tuple[object, ...]], dict[str, list[str]]]:
        with warnings.catch_warnings():
            # SQLite cannot reflect expression indexes; alembic says so with a warning
            warnings.simplefilter("ignore", UserWarning)
            context = MigrationContext.configure(
                connection,
                opts={
                    "compare_type": True,
                    "include_object": lambda o, name, type_, r, c: (
                        not (type_ == "index" and name in EXPRESSION_INDEXES)
                    ),
                },
            )
            diff = compare_metadata(context, Base.metadata)
        inspector = inspect(connection)
        tables = set(inspector.get_table_names()) - {"alembic_version"}
        indexes = {
            i["name"]: i["column_names"] for i in inspector.get_indexes("task_queue") if i["name"]
        }
        return tables, diff, indexes

    async def run() -> tuple[set[str], list[tuple[object, ...]], dict[str, list[str]]]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(read)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_single_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1


def test_upgrade_matches_models_and_downgrade_removes_everything(empty_database: str) -> None:
    cfg = alembic_config(empty_database)
    command.upgrade(cfg, "head")
    tables, diff, queue_indexes = _inspect(empty_database)
    assert tables == set(Base.metadata.tables)
    assert diff == []
    # in the claim's ORDER BY: tasks enqueued in the same instant need no sort per claim
    assert queue_indexes["ix_task_queue_claim"] == ["priority", "enqueued_at", "id"]

    command.downgrade(cfg, "base")
    assert _tables(empty_database) == set()

    command.upgrade(cfg, "head")  # and back up again, on the downgraded database
    tables, diff, _ = _inspect(empty_database)
    assert tables == set(Base.metadata.tables)
    assert diff == []


def _tables(url: str) -> set[str]:
    async def run() -> set[str]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                names = await connection.run_sync(lambda c: inspect(c).get_table_names())
                return set(names) - {"alembic_version"}
        finally:
            await engine.dispose()

    return asyncio.run(run())
