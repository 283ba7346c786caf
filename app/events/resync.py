"""After the LISTEN connection comes back, re-send what live clients may have missed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.events.hub import EventHub
from app.events.listener import PgListener
from app.services.live import states_to_resync

MARGIN = timedelta(seconds=2)
"""Look back a little before the drop: clocks of processes and the database differ."""


def resync_hook(
    hub: EventHub, listener: PgListener, sessions: async_sessionmaker[AsyncSession]
) -> Callable[[], Awaitable[None]]:
    """A ``PgListener.on_reconnect`` hook: publish the current state of followed tasks.

    Tasks followed by id are re-read; with a ``*`` subscriber, so are the tasks
    changed since the connection dropped. Subscribers drop what they already had.
    """

    async def resync() -> None:
        followed = hub.followed_tasks()
        since = listener.lost_at - MARGIN if hub.has_wildcard() and listener.lost_at else None
        if not followed and since is None:
            return
        async with sessions() as session:
            states = await states_to_resync(session, followed, since)
        hub.publish_many(states)  # one queue slot per subscriber, however many tasks

    return resync
