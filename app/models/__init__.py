"""Every table, importable from one place (Alembic reads ``Base.metadata`` from here)."""

from app.models.base import Base
from app.models.enums import DeliveryStatus, FileKind, LogLevel, Role, TaskStatus
from app.models.file import FileStorage
from app.models.project import Batch, Project
from app.models.queue import TaskQueue, Worker
from app.models.task import Task, TaskLog, TaskResult
from app.models.user import ApiKey, User
from app.models.webhook import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookSecret

__all__ = [
    "ApiKey",
    "Base",
    "Batch",
    "DeliveryStatus",
    "FileKind",
    "FileStorage",
    "LogLevel",
    "Project",
    "Role",
    "Task",
    "TaskLog",
    "TaskQueue",
    "TaskResult",
    "TaskStatus",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookSecret",
    "Worker",
]
