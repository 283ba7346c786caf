"""The in-process fan-out of task events to live clients (WebSocket and SSE).

One ``EventHub`` per process receives every task event committed in the
process or, on PostgreSQL, in any other process (``app.events.listener``),
and hands it to the subscriptions that may see it:

- a ``Subscriber`` is one live connection of one user: a bounded queue of
  messages, filled without ever waiting (``put_nowait``). When a client stops
  reading and its queue fills up, the subscriber is marked ``overflowed`` and
  its connection is closed by its own handler; nobody else is slowed down.
- a subscriber follows single tasks and/or every task its user can see
  (``"*"``: the owner's tasks, every task for an admin).
- events are numbered per task (``seq``); a subscriber drops any event not
  newer than the last one it forwarded for that task, so each client sees the
  changes of a task in order and never twice, whatever path they arrive by.
- while a subscription reads the task's current state from the database, the
  events that arrive meanwhile are held back and released after it, so the
  current state always comes first.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from app.events.publish import TaskEvent

WILDCARD = "*"
DEFAULT_QUEUE_SIZE = 256
CLOSE = object()
"""Put in a subscriber's queue to end its connection (shutdown)."""


class Subscriber:
    """One live connection: what it follows and its bounded outbound queue."""

    def __init__(self, user_id: str, is_admin: bool, queue_size: int) -> None:
        self.user_id = user_id
        self.is_admin = is_admin
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size)
        self.tasks: set[str] = set()
        self.wildcard = False
        self.overflowed = False
        self._last_seq: dict[str, int] = {}
        self._held: dict[str, list[TaskEvent]] = {}
        self._held_all: list[TaskEvent] | None = None
        self.overflow_signal = asyncio.Event()

    def may_see(self, task_event: TaskEvent) -> bool:
        return self.is_admin or task_event.owner_id == self.user_id

    def wants(self, task_event: TaskEvent) -> bool:
        if task_event.task_id in self._held:
            return True
        if task_event.task_id in self.tasks:
            return True
        return self.wildcard and self.may_see(task_event)

    def offer(self, task_event: TaskEvent) -> None:
        held = self._held.get(task_event.task_id)
        if held is None and task_event.task_id not in self.tasks:
            held = self._held_all
        if held is not None:
            held.append(task_event)
            return
        self._forward(task_event)

    def _forward(self, task_event: TaskEvent, *, force: bool = False) -> None:
        last = self._last_seq.get(task_event.task_id, 0)
        if task_event.seq <= last and not force:
            return
        self._last_seq[task_event.task_id] = max(last, task_event.seq)
        self.put(task_event)

    def put(self, item: Any) -> None:
        """Queue ``item`` for the client, or mark the client too slow."""
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True
            self.overflow_signal.set()

    def hold(self, task_id: str) -> None:
        """Hold back ``task_id``'s events until :meth:`release` (reading its current state)."""
        self._held.setdefault(task_id, [])

    def release(self, task_id: str, current: TaskEvent | None, *before: Any) -> None:
        """Queue ``before`` messages, then ``current``, then the events held meanwhile."""
        held = self._held.pop(task_id, [])
        self._release(held, [] if current is None else [current], before)

    def hold_all(self) -> None:
        """Hold back wildcard events until :meth:`release_all`."""
        if self._held_all is None:
            self._held_all = []

    def release_all(self, current: Iterable[TaskEvent], *before: Any) -> None:
        """Queue ``before``, then the current states, then the wildcard events held meanwhile."""
        held, self._held_all = self._held_all or [], None
        self._release(held, current, before)

    def _release(
        self, held: list[TaskEvent], current: Iterable[TaskEvent], before: Iterable[Any]
    ) -> None:
        for message in before:
            self.put(message)
        for task_event in current:
            self._forward(task_event, force=True)
        for task_event in held:
            if self.wants(task_event):
                self._forward(task_event)

    def forget(self, task_id: str) -> None:
        self.tasks.discard(task_id)
        self._held.pop(task_id, None)


class EventHub:
    """Routes task events to subscribers; every method runs on the event loop thread."""

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._subscribers: set[Subscriber] = set()
        self._by_task: dict[str, set[Subscriber]] = defaultdict(set)
        self._wildcard: set[Subscriber] = set()
        self.delivered = 0

    def connect(self, user_id: str, is_admin: bool) -> Subscriber:
        subscriber = Subscriber(user_id, is_admin, self.queue_size)
        self._subscribers.add(subscriber)
        return subscriber

    def disconnect(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)
        self._wildcard.discard(subscriber)
        for task_id in list(subscriber.tasks) + list(subscriber._held):
            self._unindex(subscriber, task_id)
        subscriber.tasks.clear()

    def follow(self, subscriber: Subscriber, task_id: str) -> None:
        """Start routing ``task_id``'s events to ``subscriber`` (held until released)."""
        subscriber.hold(task_id)
        subscriber.tasks.add(task_id)
        self._by_task[task_id].add(subscriber)

    def unfollow(self, subscriber: Subscriber, task_id: str) -> None:
        subscriber.forget(task_id)
        self._unindex(subscriber, task_id)

    def follow_all(self, subscriber: Subscriber) -> None:
        """Route every event ``subscriber``'s user may see (held until ``release_all``)."""
        subscriber.hold_all()
        subscriber.wildcard = True
        self._wildcard.add(subscriber)

    def unfollow_all(self, subscriber: Subscriber) -> None:
        subscriber._held_all = None
        subscriber.wildcard = False
        self._wildcard.discard(subscriber)

    def _unindex(self, subscriber: Subscriber, task_id: str) -> None:
        followers = self._by_task.get(task_id)
        if followers is not None:
            followers.discard(subscriber)
            if not followers:
                del self._by_task[task_id]

    def publish(self, task_event: TaskEvent) -> None:
        """Hand ``task_event`` to everyone who follows it (never waits)."""
        targets = set(self._by_task.get(task_event.task_id, ()))
        for subscriber in self._wildcard:
            if subscriber.may_see(task_event):
                targets.add(subscriber)
        for subscriber in targets:
            subscriber.offer(task_event)
        self.delivered += len(targets)

    def followed_tasks(self) -> set[str]:
        """Every task some subscriber follows by id."""
        return set(self._by_task)

    def has_wildcard(self) -> bool:
        return bool(self._wildcard)

    def subscribers(self) -> tuple[Subscriber, ...]:
        return tuple(self._subscribers)

    def close_all(self) -> None:
        """Ask every connection to end (shutdown)."""
        for subscriber in self.subscribers():
            try:
                subscriber.queue.put_nowait(CLOSE)
            except asyncio.QueueFull:
                subscriber.overflowed = True
            subscriber.overflow_signal.set()
