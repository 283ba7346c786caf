"""Counting what the database sees: sessions that began a transaction, statements run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session


@dataclass
class Counts:
    sessions: list[Session] = field(default_factory=list)  # held: ids of dead ones are reused
    statements: list[str] = field(default_factory=list)
    transactions: int = 0  # transactions begun, in any session

    @property
    def figures(self) -> tuple[int, int]:
        """(sessions opened, statements run)."""
        return len(self.sessions), len(self.statements)


@contextmanager
def counting() -> Iterator[Counts]:
    """Count, in this process, the sessions that began a transaction and every statement.

    Listens on the classes for the duration only (a test's instrument, not the app's).
    """
    counts = Counts()

    def began(session: Session, _transaction: Any, _connection: Any) -> None:
        counts.transactions += 1
        if not any(seen is session for seen in counts.sessions):
            counts.sessions.append(session)

    def executed(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        counts.statements.append(statement.split(None, 1)[0].upper())

    event.listen(Session, "after_begin", began)
    event.listen(Engine, "before_cursor_execute", executed)
    try:
        yield counts
    finally:
        event.remove(Session, "after_begin", began)
        event.remove(Engine, "before_cursor_execute", executed)
