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
- many states at once (the start of a ``*`` subscription: up to 500 tasks; a
  resync) take one place in the queue as a ``Batch``, which the sender sends
  one message at a time: a client that reads never overflows because it
  follows many tasks, while one that stops reading still fills its queue.
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


class Batch(tuple[TaskEvent, ...]):
    """Several task events in one queue slot, sent one message each, in order."""

    __slots__ = ()


class Subscriber:
    """One live connection: what it follows and its bounded outbound queue."""

    def __init__(self, user_id: str, is_admin: bool, queue_size: int) -> None:
        self.user_id = user_id
        self.is_admin = is_admin
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size)
        self.tasks: set[str] = set()
        self.wildcard = False
        self.overflowed = False
        self.closing = False
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
        if self._hold(task_event):
            return
        if self._is_new(task_event):
            self.put(task_event)

    def offer_many(self, task_events: Iterable[TaskEvent]) -> None:
        """Like :meth:`offer` for each event, but what is sent takes one queue slot."""
        self._put_batch([e for e in task_events if not self._hold(e) and self._is_new(e)])

    def _hold(self, task_event: TaskEvent) -> bool:
        """Keep ``task_event`` back while its task's current state is being read."""
        held = self._held.get(task_event.task_id)
        if held is None and task_event.task_id not in self.tasks:
            held = self._held_all
        if held is None:
            return False
        held.append(task_event)
        return True

    def _is_new(self, task_event: TaskEvent, *, force: bool = False) -> bool:
        """Whether to send ``task_event`` (newer than what was sent), noting it as sent."""
        last = self._last_seq.get(task_event.task_id, 0)
        if task_event.seq <= last and not force:
            return False
        self._last_seq[task_event.task_id] = max(last, task_event.seq)
        return True

    def _put_batch(self, task_events: list[TaskEvent]) -> None:
        if len(task_events) == 1:
            self.put(task_events[0])
        elif task_events:
            self.put(Batch(task_events))

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
        self._put_batch([e for e in current if self._is_new(e, force=True)])
        self._put_batch([e for e in held if self.wants(e) and self._is_new(e)])

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
        self.closing = False
        self._empty = asyncio.Event()
        self._empty.set()

    def connect(self, user_id: str, is_admin: bool) -> Subscriber:
        subscriber = Subscriber(user_id, is_admin, self.queue_size)
        self._subscribers.add(subscriber)
        self._empty.clear()
        if self.closing:  # connected while the process stops: closed at once
            self._close(subscriber)
        return subscriber

    def disconnect(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)
        self._wildcard.discard(subscriber)
        for task_id in list(subscriber.tasks) + list(subscriber._held):
            self._unindex(subscriber, task_id)
        subscriber.tasks.clear()
        if not self._subscribers:
            self._empty.set()

    async def wait_empty(self) -> None:
        """Until no connection is left (after :meth:`close_all`)."""
        await self._empty.wait()

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
        targets = self._targets(task_event)
        for subscriber in targets:
            subscriber.offer(task_event)
        self.delivered += len(targets)

    def publish_many(self, task_events: Iterable[TaskEvent]) -> None:
        """Hand many events on at once: each subscriber's share takes one queue slot."""
        shares: dict[Subscriber, list[TaskEvent]] = defaultdict(list)
        for task_event in task_events:
            for subscriber in self._targets(task_event):
                shares[subscriber].append(task_event)
        for subscriber, share in shares.items():
            subscriber.offer_many(share)
            self.delivered += len(share)

    def _targets(self, task_event: TaskEvent) -> set[Subscriber]:
        targets = set(self._by_task.get(task_event.task_id, ()))
        for subscriber in self._wildcard:
            if subscriber.may_see(task_event):
                targets.add(subscriber)
        return targets

    def followed_tasks(self) -> set[str]:
        """Every task some subscriber follows by id."""
        return set(self._by_task)

    def has_wildcard(self) -> bool:
        return bool(self._wildcard)

    def subscribers(self) -> tuple[Subscriber, ...]:
        return tuple(self._subscribers)

    def close_all(self) -> None:
        """Ask every connection, and any that connects later, to end (shutdown)."""
        self.closing = True
        for subscriber in self.subscribers():
            self._close(subscriber)

    @staticmethod
    def _close(subscriber: Subscriber) -> None:
        """End a WebSocket through its signal (with ``closing`` set), an SSE stream by CLOSE."""
        subscriber.closing = True
        try:
            subscriber.queue.put_nowait(CLOSE)
        except asyncio.QueueFull:
            subscriber.overflowed = True
        subscriber.overflow_signal.set()
