"""The queue: one row per task waiting or running, and the worker processes draining it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at_column, id_column, utcnow
from app.models.task import BigIntId


class TaskQueue(Base):
    """A task's place in the queue.

    Pending: ``worker_id`` is NULL and the row is claimable once
    ``available_at`` has passed (retry backoff). Running: ``worker_id`` and
    ``locked_until`` (the lease) are set; a lease that ran out means the
    worker died. The row is deleted when the task reaches a terminal state.
    """

    __tablename__ = "task_queue"
    __table_args__ = (
        Index(
            "ix_task_queue_claim",
            text("priority DESC"),
            "enqueued_at",
            "id",
            sqlite_where=text("worker_id IS NULL"),
            postgresql_where=text("worker_id IS NULL"),
        ),
        Index("ix_task_queue_locked_until", "locked_until"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), unique=True)
    priority: Mapped[int] = mapped_column(Integer, default=5)
    enqueued_at: Mapped[datetime] = mapped_column(default=utcnow)
    available_at: Mapped[datetime] = mapped_column(default=utcnow)
    # No foreign key on purpose: forgetting a dead worker must never release
    # its rows; only lease expiry (maintenance) takes a task back.
    worker_id: Mapped[str | None] = mapped_column(String(36), index=True)
    locked_until: Mapped[datetime | None]
    attempt: Mapped[int] = mapped_column(Integer, default=0)


class Worker(Base):
    """A worker process (a pool of ``concurrency`` asyncio workers) and its heartbeat."""

    __tablename__ = "workers"

    id: Mapped[str] = id_column()
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(BigInteger)
    concurrency: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = created_at_column()
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
