"""Every table, importable from one place (Alembic reads ``Base.metadata`` from here)."""

from app.models.base import Base
from app.models.enums import FileKind, LogLevel, Role, TaskStatus
from app.models.file import FileStorage
from app.models.project import Batch, Project
from app.models.queue import TaskQueue, Worker
from app.models.task import Task, TaskLog, TaskResult
from app.models.user import ApiKey, User

__all__ = [
    "ApiKey",
    "Base",
    "Batch",
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
    "Worker",
]
