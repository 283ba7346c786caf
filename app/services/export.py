"""Exporting tasks as CSV or JSON, streamed from a server-side cursor in constant memory.

CSV cells that a spreadsheet would run as a formula are neutralised (OWASP's
CSV-injection rule); JSON carries every value as it is.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Task, User
from app.services.tasks import TaskFilters, task_query

BATCH_ROWS = 500
COLUMNS = (
    "id", "file_name", "file_size", "file_type", "checksum", "status", "progress", "stage",
    "priority", "processor", "project_id", "batch_id", "retry_count", "max_retries",
    "error_message", "result_url", "uploaded_at", "started_at", "completed_at", "updated_at",
)  # fmt: skip


# OWASP's CSV-injection rule: a cell starting with one of these is a formula (or the
# start of one) to a spreadsheet, so it is written with a leading single quote.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")


def _row(task: Task) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for column in COLUMNS:
        value = getattr(task, column)
        row[column] = value.isoformat() if hasattr(value, "isoformat") else value
    return row


def spreadsheet_safe(value: Any) -> Any:
    """A text cell that no spreadsheet will evaluate (numbers and empty cells unchanged)."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


async def _tasks(
    session: AsyncSession, user: User, filters: TaskFilters
) -> AsyncIterator[list[Task]]:
    """The matching tasks in chunks, read as the response streams (the request's session
    lives until the response is sent)."""
    result = await session.stream_scalars(
        task_query(user, filters).execution_options(yield_per=BATCH_ROWS)
    )
    async for chunk in result.partitions(BATCH_ROWS):
        yield list(chunk)


async def export_csv(
    session: AsyncSession, user: User, filters: TaskFilters
) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    async for chunk in _tasks(session, user, filters):
        for task in chunk:
            writer.writerow({k: spreadsheet_safe(v) for k, v in _row(task).items()})
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


async def export_json(
    session: AsyncSession, user: User, filters: TaskFilters
) -> AsyncIterator[bytes]:
    """A JSON array, written element by element."""
    first = True
    yield b"["
    async for chunk in _tasks(session, user, filters):
        parts = []
        for task in chunk:
            parts.append(("" if first else ",") + json.dumps(_row(task), ensure_ascii=False))
            first = False
        yield "".join(parts).encode()
    yield b"]"
