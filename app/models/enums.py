"""The fixed vocabularies stored in the database (each has a CHECK constraint)."""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})


class Role(StrEnum):
    ADMIN = "admin"
    USER = "user"


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class DeliveryStatus(StrEnum):
    """A webhook delivery's state (``app.models.webhook``)."""

    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"


class FileKind(StrEnum):
    UPLOAD = "upload"
    RESULT = "result"


def check_in(column: str, enum: type[StrEnum]) -> str:
    """SQL for ``column IN (...)`` over an enum's values, for a CHECK constraint."""
    values = ", ".join(f"'{member.value}'" for member in enum)
    return f"{column} IN ({values})"
