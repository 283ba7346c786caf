"""The process's event bus: what happened, handed to whoever subscribed, by plain calls.

Two kinds of event travel on it:

- ``TaskEvent`` (``app.events.publish``): a task's state after a change; the
  live hub (WebSocket and SSE clients) and the worker pool (a running attempt
  that was cancelled) subscribe to it;
- ``TaskPending``: a task can be claimed; worker pools subscribe to wake up.

An event reaches the bus when the transaction that made it commits (the unit
of work's ``on_commit``, ``app.database``) or, on PostgreSQL, when the listener
hears that another process committed one (``app.events.listener``). There is
one bus per process, built by ``app.runtime`` with the session factory that
delivers to it; handlers run on the event loop thread and never wait.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class TaskPending:
    """A task can be claimed: workers that sleep should look for work."""


TASK_PENDING = TaskPending()


class EventBus:
    def __init__(self) -> None:
        self._handlers: defaultdict[type, list[Callable[[Any], None]]] = defaultdict(list)

    def subscribe(self, kind: type[E], handler: Callable[[E], None]) -> None:
        """Call ``handler`` with every event of type ``kind`` published from now on."""
        if handler not in self._handlers[kind]:
            self._handlers[kind].append(handler)

    def unsubscribe(self, kind: type[E], handler: Callable[[E], None]) -> None:
        if handler in self._handlers[kind]:
            self._handlers[kind].remove(handler)

    def publish(self, event: object) -> None:
        """Hand ``event`` to the handlers of its type, in the order they subscribed."""
        for handler in list(self._handlers.get(type(event), ())):
            handler(event)

    def publish_all(self, events: Iterable[object]) -> None:
        for event in events:
            self.publish(event)
