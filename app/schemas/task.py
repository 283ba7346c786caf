"""The task contract (API.md "Task model") and its requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.models import TaskStatus
from app.schemas.common import ReadModel, RequestModel

TaskSort = Literal[
    "uploaded_at", "-uploaded_at", "priority", "-priority", "file_name", "-file_name"
]


class TaskRead(ReadModel):
    id: str
    file_name: str
    file_size: int
    file_type: str
    checksum: str
    status: TaskStatus
    progress: int
    stage: str
    priority: int
    processor: str
    project_id: str | None
    batch_id: str | None
    retry_count: int
    max_retries: int
    error_message: str | None
    result_url: str | None
    uploaded_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime


class TaskUpdate(RequestModel):
    """PATCH body: any of these. ``status`` may only be ``cancelled`` or ``pending`` (retry).

    Any other status is a transition the task cannot make (409), not a bad body (422).
    """

    status: Literal["pending", "processing", "completed", "failed", "cancelled"] | None = Field(
        default=None,
        description=(
            "`cancelled` to cancel, `pending` to retry a failed or cancelled task; "
            "any other status, or the current one, is an impossible transition (409)"
        ),
    )
    priority: int | None = Field(default=None, ge=0, le=10)
    project_id: str | None = None


class TaskLogRead(ReadModel):
    id: int
    log_level: str
    message: str
    details: dict[str, Any] | None
    created_at: datetime


class TaskFileRead(BaseModel):
    name: str
    size: int
    content_type: str
    checksum: str
    url: str


class TaskResultRead(BaseModel):
    summary: str
    quality_score: float | None
    confidence_score: float | None
    metrics: dict[str, Any]
    files: list[TaskFileRead]


class StatisticsRead(BaseModel):
    total: int
    by_status: dict[str, int]
    success_rate: float
    avg_processing_seconds: float | None
    p95_processing_seconds: float | None
    queue_depth: int
    active_workers: int
    websocket_connections: int
    completed_last_hour: int


class BatchCreated(BaseModel):
    batch_id: str
    tasks: list[TaskRead]


class BatchRead(BaseModel):
    id: str
    total: int
    by_status: dict[str, int]
    progress: float
    tasks: list[TaskRead]
