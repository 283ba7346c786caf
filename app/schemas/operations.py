"""Operations: processors, worker processes, the statistics over time, bulk actions."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from app.schemas.common import RequestModel

BULK_MAX_TASKS = 500


class ProcessorRead(BaseModel):
    name: str
    description: str = Field(description="One line saying what the processor does")
    accepted_extensions: list[str] = Field(description="File types it accepts, e.g. `.txt`")


class RunningTaskRead(BaseModel):
    id: str
    file_name: str
    owner_email: str
    processor: str
    progress: int
    stage: str
    started_at: datetime | None


class WorkerRead(BaseModel):
    id: str
    hostname: str
    pid: int
    concurrency: int
    started_at: datetime
    heartbeat_at: datetime
    alive: bool = Field(description="Its heartbeat is younger than two task leases")
    running: list[RunningTaskRead]


class SeriesPoint(BaseModel):
    at: datetime = Field(description="The end of the minute this point describes")
    queue_depth: int = Field(description="Tasks waiting at that moment")
    completed: int
    failed: int
    p50_seconds: float | None = Field(description="Median upload→completion of that minute")
    p95_seconds: float | None


class TimeSeriesRead(BaseModel):
    start: datetime
    end: datetime
    step_seconds: int
    scope: Literal["all", "own"] = Field(description="`all` for admins, else the caller's tasks")
    points: list[SeriesPoint]
    p50_seconds: float | None = Field(description="Over the whole window")
    p95_seconds: float | None


class BulkAction(RequestModel):
    action: Literal["retry", "cancel", "delete"]
    task_ids: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=BULK_MAX_TASKS,
        description="The tasks to act on; or give `status` instead",
    )
    status: Literal["pending", "processing", "failed", "cancelled", "completed"] | None = Field(
        default=None,
        description=f"Act on every task in this status (the first {BULK_MAX_TASKS}, oldest first)",
    )

    @model_validator(mode="after")
    def _one_selection(self) -> BulkAction:
        if (self.task_ids is None) == (self.status is None):
            raise ValueError("give either task_ids or status")
        return self


class BulkSkipped(BaseModel):
    id: str
    code: str
    detail: str


class BulkResult(BaseModel):
    action: Literal["retry", "cancel", "delete"]
    done: list[str] = Field(description="The tasks acted on")
    skipped: list[BulkSkipped] = Field(description="Tasks left as they were, and why")
    remaining: int = Field(description="With `status`: tasks in it still left after this call")
