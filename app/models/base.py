"""The declarative base, shared column types and helpers for every table."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import DateTime, Dialect, MetaData, String, Table, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


_RANDOM_BLOCK = 4096
_random = bytearray()  # os.urandom bytes not handed out yet (this process's, see below)
_random_lock = threading.Lock()


def _forget_random() -> None:
    """A forked child must not hand out the bytes its parent will also hand out."""
    global _random
    _random = bytearray()


os.register_at_fork(after_in_child=_forget_random)


def random_bytes16() -> bytes:
    """16 bytes from ``os.urandom``, drawn 4 KiB at a time: one system call per 256 ids
    instead of one per id (``uuid4`` makes one each). Thread-safe and fork-safe."""
    global _random
    with _random_lock:
        if not _random:
            _random = bytearray(os.urandom(_RANDOM_BLOCK))
        taken = bytes(_random[-16:])
        del _random[-16:]
    return taken


def random_hex() -> str:
    """128 random bits as 32 hex digits (temp and stored file names)."""
    return random_bytes16().hex()


def new_id_hex() -> str:
    """A random (version 4) UUID as 32 hex digits, like ``uuid.uuid4().hex`` but cheaper."""
    raw = bytearray(random_bytes16())
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 9562 variant
    return raw.hex()


def new_id() -> str:
    """A random (version 4) UUID as text, like ``str(uuid.uuid4())`` but cheaper."""
    h = new_id_hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL stores ``timestamptz``; SQLite stores naive UTC text, which is
    given its UTC offset back on the way out, so comparisons and ISO output
    behave the same on both.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


E = TypeVar("E", bound=StrEnum)


class EnumText(TypeDecorator[E]):
    """A ``StrEnum`` stored as its text (a CHECK constraint lists the values): rows come
    back as members of the enum, not bare strings."""

    impl = String(16)
    cache_ok = True

    def __init__(self, enum: type[E]) -> None:
        super().__init__()
        self.enum = enum

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012


def id_column() -> Mapped[str]:
    return mapped_column(String(36), primary_key=True, default=new_id)


def created_at_column() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), default=utcnow, nullable=False)


def table_of(model: Any) -> Table:
    """A mapped class's Core ``Table``, for statements built once with bound parameters."""
    table = model.__table__
    assert isinstance(table, Table)
    return table
