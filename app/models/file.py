"""Files on disk that belong to a task: its upload and its result files."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at_column, id_column
from app.models.enums import FileKind, check_in


class FileStorage(Base):
    """One stored file. ``storage_type`` is its backend; ``storage_path`` its generated key:
    relative to ``UPLOAD_DIR`` (local) or the object key in ``storage_bucket`` (s3);
    ``name`` is what the API lists. Past ``expires_at`` the file is deleted from
    disk and ``deleted_at`` set, while the row keeps its metadata."""

    __tablename__ = "file_storage"
    __table_args__ = (
        CheckConstraint(check_in("kind", FileKind), name="kind"),
        CheckConstraint("storage_type IN ('local', 's3')", name="storage_type"),
        UniqueConstraint("task_id", "name"),
    )

    id: Mapped[str] = id_column()
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(255))
    storage_type: Mapped[str] = mapped_column(String(16), default="local")  # local | s3
    storage_bucket: Mapped[str | None] = mapped_column(String(255))  # s3: the bucket
    storage_path: Mapped[str] = mapped_column(String(500))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(127))
    checksum: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime | None] = mapped_column(index=True)
    deleted_at: Mapped[datetime | None]
