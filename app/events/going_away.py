"""Live connections end with "going away" (1001) when the process is told to stop.

uvicorn, on SIGTERM or SIGINT, stops accepting connections and then fails
every open WebSocket with 1012 ("service restart") before the application's
lifespan shutdown runs; SSE streams are cut the same way. The README and
API.md promise 1001 and cleanly ended streams, so while the app runs, the stop
signals first reach this module: it asks the hub to close every live
connection (WebSocket 1001, SSE end of stream), waits until they are closed
(at most ``CLOSE_WAIT_SECONDS``), then calls the handler that was installed
before it (uvicorn's), and shutdown carries on as usual. A second signal goes
straight on (a second Ctrl-C still forces uvicorn's exit).

Nothing is chained when there is no server's handler to chain to (another
thread, Python's default handlers): tests and tools are left alone.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import Any, TypeGuard

from app.events.hub import EventHub
from app.log import get_logger

log = get_logger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
CLOSE_WAIT_SECONDS = 2.0
"""How long a stop signal waits for live connections to close before uvicorn's shutdown."""

Handler = Callable[[int, FrameType | None], Any]


def _chainable(handler: Any) -> TypeGuard[Handler]:
    return callable(handler) and handler is not signal.default_int_handler


@contextmanager
def close_live_connections_on_stop(hub: EventHub) -> Iterator[None]:
    """While active, a stop signal closes ``hub``'s connections, then reaches the server."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    previous: dict[int, Handler] = {
        sig: handler for sig in STOP_SIGNALS if _chainable(handler := signal.getsignal(sig))
    }
    stopping = False
    closing: set[asyncio.Task[None]] = set()

    def on_signal(sig: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            previous[sig](sig, frame)
            return
        stopping = True
        loop.call_soon_threadsafe(_start_closing, sig)

    def _start_closing(sig: int) -> None:
        task = loop.create_task(_close_then_stop(hub, previous[sig], sig))
        closing.add(task)
        task.add_done_callback(closing.discard)

    for sig in previous:
        signal.signal(sig, on_signal)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            if signal.getsignal(sig) is on_signal:
                signal.signal(sig, handler)
        for task in closing:
            task.cancel()


async def _close_then_stop(hub: EventHub, handler: Handler, sig: int) -> None:
    try:
        hub.close_all()
        log.info("live_connections_closing", connections=len(hub.subscribers()))
        with suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_WAIT_SECONDS):
                await hub.wait_empty()
    finally:
        handler(sig, None)
