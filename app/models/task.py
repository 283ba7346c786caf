"""Tasks (one uploaded unit of work), their logs and their results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, EnumText, created_at_column, id_column, utcnow
from app.models.enums import LogLevel, TaskStatus, check_in

BigIntId = BigInteger().with_variant(Integer, "sqlite")


class Task(Base):
    """One uploaded manuscript and the state of its processing.

    ``attempt`` is the fencing token: every claim increments it, and a worker
    writes progress, logs, results and the final status only while the row's
    ``attempt`` still equals its own. ``event_seq`` numbers the task's events
    (SSE ``id:``), growing on every change of status or progress.
    """

    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint(check_in("status", TaskStatus), name="status"),
        CheckConstraint("progress >= 0 AND progress <= 100", name="progress_range"),
        CheckConstraint("priority >= 0 AND priority <= 10", name="priority_range"),
        CheckConstraint("retry_count >= 0 AND max_retries >= 0", name="retries_non_negative"),
        UniqueConstraint("owner_id", "idempotency_key"),
        Index("ix_tasks_owner_status", "owner_id", "status"),
        Index("ix_tasks_owner_uploaded", "owner_id", "uploaded_at"),
        Index("ix_tasks_status_completed", "status", "completed_at"),
    )

    id: Mapped[str] = id_column()
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    project_id: Mapped[str | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    batch_id: Mapped[str | None] = mapped_column(
        ForeignKey("batches.id", ondelete="SET NULL"), index=True
    )
    file_name: Mapped[str] = mapped_column(String(255))
    file_size: Mapped[int] = mapped_column(BigInteger)
    file_type: Mapped[str] = mapped_column(String(127))
    checksum: Mapped[str] = mapped_column(String(80))
    status: Mapped[TaskStatus] = mapped_column(EnumText(TaskStatus), default=TaskStatus.PENDING)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    stage: Mapped[str] = mapped_column(String(64), default="queued")
    priority: Mapped[int] = mapped_column(Integer, default=5)
    processor: Mapped[str] = mapped_column(String(64), default="analyze")
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    max_retries: Mapped[int] = mapped_column(Integer, default=3)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    event_seq: Mapped[int] = mapped_column(Integer, default=0)
    error_message: Mapped[str | None] = mapped_column(Text)
    result_url: Mapped[str | None] = mapped_column(String(500))
    # where this task's final events are also sent (app.webhooks)
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    # sha256 of what the key was first sent with (files, names, options): a reuse
    # of the key for anything else is refused (services.tasks.request_fingerprint)
    idempotency_fingerprint: Mapped[str | None] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = created_at_column()
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TaskLog(Base):
    __tablename__ = "task_logs"
    __table_args__ = (
        CheckConstraint(check_in("log_level", LogLevel), name="log_level"),
        Index("ix_task_logs_task_id_id", "task_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    log_level: Mapped[str] = mapped_column(String(16), default=LogLevel.INFO)
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = created_at_column()


class TaskResult(Base):
    """The result of a task's successful attempt (one per task)."""

    __tablename__ = "task_results"
    __table_args__ = (
        CheckConstraint(
            "quality_score IS NULL OR (quality_score >= 0 AND quality_score <= 1)",
            name="quality_score_range",
        ),
        CheckConstraint(
            "confidence_score IS NULL OR (confidence_score >= 0 AND confidence_score <= 1)",
            name="confidence_score_range",
        ),
    )

    id: Mapped[str] = id_column()
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), unique=True)
    attempt: Mapped[int] = mapped_column(Integer)
    result_file_path: Mapped[str | None] = mapped_column(String(500))
    summary: Mapped[str] = mapped_column(Text, default="")
    quality_score: Mapped[float | None] = mapped_column(Float)
    confidence_score: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = created_at_column()
