"""The hub's queueing rules, without sockets: batches, held events, overflow, shutdown."""

from __future__ import annotations

import asyncio

from app.events.hub import CLOSE, WILDCARD, Batch, EventHub
from app.events.publish import TaskEvent


def _event(task_id: str, seq: int, owner: str = "u1", progress: int = 0) -> TaskEvent:
    return TaskEvent(
        task_id=task_id,
        owner_id=owner,
        seq=seq,
        status="pending",
        progress=progress,
        stage="queued",
        result_url=None,
        error_message=None,
    )


def _drain(queue: asyncio.Queue[object]) -> list[object]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


def test_a_wildcard_start_of_any_size_takes_one_slot_then_the_held_events_follow() -> None:
    hub = EventHub(queue_size=4)
    subscriber = hub.connect("u1", is_admin=False)
    hub.follow_all(subscriber)
    hub.publish(_event("t0", 2, progress=50))  # arrives while the states are read: held
    hub.publish(_event("t1", 1))  # not newer than its state below: dropped
    states = [_event(f"t{n}", 1) for n in range(600)]
    subscriber.release_all(states, {"type": "subscribed", "task_id": WILDCARD})
    assert not subscriber.overflowed
    subscribed, initial, held = _drain(subscriber.queue)
    assert subscribed == {"type": "subscribed", "task_id": WILDCARD}
    assert isinstance(initial, Batch)
    assert list(initial) == states
    assert held == _event("t0", 2, progress=50)


def test_a_resync_gives_each_subscriber_its_share_in_one_slot() -> None:
    hub = EventHub(queue_size=2)
    mine, admin, other = (hub.connect(u, is_admin=u == "admin") for u in ("u1", "admin", "u2"))
    for subscriber in (mine, admin, other):
        hub.follow_all(subscriber)
        subscriber.release_all([])
    hub.publish_many([_event(f"t{n}", 1, owner="u1") for n in range(300)])
    for subscriber in (mine, admin):
        (share,) = _drain(subscriber.queue)
        assert isinstance(share, Batch)
        assert len(share) == 300
    assert _drain(other.queue) == []  # another user's tasks never reach it
    hub.publish_many([_event("t0", 1, owner="u1")])  # already sent: nothing new
    assert _drain(mine.queue) == []


def test_a_client_that_does_not_read_still_overflows() -> None:
    hub = EventHub(queue_size=2)
    subscriber = hub.connect("u1", is_admin=False)
    hub.follow_all(subscriber)
    subscriber.release_all([_event(f"t{n}", 1) for n in range(10)])
    hub.publish(_event("t0", 2))
    assert not subscriber.overflowed
    hub.publish(_event("t0", 3))
    assert subscriber.overflowed
    assert subscriber.overflow_signal.is_set()
    assert not subscriber.closing  # a slow client (1013), not a shutdown (1001)


async def test_close_all_closes_everyone_and_anyone_who_connects_later() -> None:
    hub = EventHub(queue_size=2)
    before = hub.connect("u1", is_admin=False)
    hub.close_all()
    after = hub.connect("u2", is_admin=False)
    for subscriber in (before, after):
        assert subscriber.closing
        assert subscriber.overflow_signal.is_set()
        assert _drain(subscriber.queue) == [CLOSE]  # what ends an SSE stream
    waiting = asyncio.create_task(hub.wait_empty())
    await asyncio.sleep(0)
    assert not waiting.done()
    hub.disconnect(before)
    hub.disconnect(after)
    await asyncio.wait_for(waiting, timeout=1)
