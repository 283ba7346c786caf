"""Live progress: the WebSocket of API.md and the per-task Server-Sent Events stream.

Both are fed by the process's ``EventHub`` (``app.events.hub``). Every message
to a client goes through its subscriber's bounded queue and one sender, so
the replies to a client's frames and its task updates never interleave badly,
and a client that stops reading only ever loses its own connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, WebSocket
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.websockets import WebSocketDisconnect

from app.api.gate import authenticate, bearer_token, client_ip
from app.api.responses import problems
from app.errors import AppError, NotFound
from app.events import connections
from app.events.hub import CLOSE, WILDCARD, Batch, EventHub, Subscriber
from app.events.publish import TaskEvent
from app.log import get_logger
from app.models import User
from app.models.enums import TERMINAL_STATUSES
from app.services import live as live_service

from .deps import CurrentUser, SessionFactoryDep

log = get_logger(__name__)
router = APIRouter(tags=["live"])

SEND_TIMEOUT_SECONDS = 10.0
"""A send that the client's socket does not take within this time drops the client."""
MAX_SUBSCRIPTIONS = 1000
"""Tasks one WebSocket connection may follow by id."""
MAX_FRAME_CHARS = 4096
MAX_FRAME_BYTES = 4 * MAX_FRAME_CHARS
"""uvicorn's ``ws_max_size``: any frame of at most MAX_FRAME_CHARS fits, a larger one is
refused from its header (close 1009) instead of being read whole (uvicorn's default: 16 MiB)."""
CLOSE_POLICY_VIOLATION = 1008
CLOSE_GOING_AWAY = 1001
CLOSE_TRY_AGAIN_LATER = 1013


def _hub(connection: WebSocket | Request) -> EventHub:
    hub: EventHub = connection.app.state.hub
    return hub


def _error(code: str, detail: str) -> dict[str, str]:
    return {"type": "error", "code": code, "detail": detail}


async def _authenticate(websocket: WebSocket) -> User | str:
    """The user of the connection's credential, or why there is none (a close reason)."""
    token = bearer_token(websocket.headers) or websocket.query_params.get("token") or None
    if token is None:
        return "Not authenticated: pass ?token= or an Authorization header"
    try:
        state = websocket.app.state
        async with state.session_factory() as session:
            return await authenticate(session, state.settings, token)
    except AppError:
        return "Not authenticated: the token is invalid, expired or revoked"


async def _over_the_limit(websocket: WebSocket, user: User | str) -> str | None:
    """Count the connection like any request: per user, or per client IP when its
    credential failed (so tokens cannot be guessed over WebSocket either). A close
    reason when over the limit, else None."""
    state = websocket.app.state
    if isinstance(user, str):
        rate, key = state.settings.anonymous_rate_limit, f"anonymous:{client_ip(websocket.scope)}"
    else:
        rate, key = state.settings.rate_limit, f"user:{user.id}"
    decision = await state.rate_limiter.hit(rate, key)
    if decision.allowed:
        return None
    return f"Too many requests: retry in {max(1, decision.reset_seconds)} s"


@router.websocket("/ws/tasks/{client_id}")
async def task_updates(websocket: WebSocket, client_id: str) -> None:
    """Subscribe to tasks and receive their ``task_update`` messages (API.md)."""
    await websocket.accept()
    user = await _authenticate(websocket)
    refusal = await _over_the_limit(websocket, user)
    if refusal is not None:
        await websocket.close(CLOSE_TRY_AGAIN_LATER, refusal)
        return
    if isinstance(user, str):
        await websocket.close(CLOSE_POLICY_VIOLATION, user)
        return
    hub = _hub(websocket)
    subscriber = hub.connect(user.id, user.is_admin)
    connections.opened("websocket")
    log.info("websocket_opened", client_id=client_id[:100], user_id=user.id)
    tasks = [
        asyncio.create_task(_send_loop(websocket, subscriber)),
        asyncio.create_task(_receive_loop(websocket, hub, subscriber, user)),
        asyncio.create_task(subscriber.overflow_signal.wait()),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        await _stop(tasks)
        if subscriber.closing or tasks[2] in done:
            # the process stops (going away), or the client did not read its messages
            if subscriber.closing:
                code, reason = CLOSE_GOING_AWAY, "The server is shutting down"
            else:
                log.warning("websocket_slow_client_dropped", client_id=client_id[:100])
                code, reason = CLOSE_TRY_AGAIN_LATER, "Too slow: messages were not read"
            with contextlib.suppress(Exception):
                await asyncio.wait_for(websocket.close(code, reason), timeout=1)
    finally:
        await _stop(tasks)
        hub.disconnect(subscriber)
        connections.closed("websocket")
        log.info("websocket_closed", client_id=client_id[:100])


async def _stop(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(BaseException):
            await task


async def _send_loop(websocket: WebSocket, subscriber: Subscriber) -> None:
    while True:
        item = await subscriber.queue.get()
        if item is CLOSE:  # the process stops: the handler closes with 1001
            return
        # a batch (the start of a "*" subscription) takes one queue slot and is sent
        # a message at a time, each under the same send timeout as any other
        texts = (
            [event.message_text() for event in item]
            if isinstance(item, Batch)
            else [item.message_text() if isinstance(item, TaskEvent) else _json(item)]
        )
        try:
            for text in texts:
                # a timeout scope rather than wait_for: no extra task per message
                async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                    await websocket.send_text(text)
        except (TimeoutError, WebSocketDisconnect, RuntimeError, OSError):
            return


def _json(message: Any) -> str:
    return json.dumps(message, separators=(",", ":"))


async def _receive_loop(
    websocket: WebSocket, hub: EventHub, subscriber: Subscriber, user: User
) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            subscriber.put(_error("malformed_frame", "Binary frames are not accepted: send JSON"))
            continue
        frame = _parse(text)
        if isinstance(frame, str):
            subscriber.put(_error("malformed_frame", frame))
            continue
        await _handle(frame, websocket, hub, subscriber, user)


def _parse(text: str) -> dict[str, Any] | str:
    """The frame as a JSON object, or why it is not one."""
    if len(text) > MAX_FRAME_CHARS:
        return f"A frame may hold at most {MAX_FRAME_CHARS} characters"
    try:
        frame = json.loads(text)
    except ValueError:
        return "The frame is not valid JSON"
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        return 'A frame is a JSON object with a string "type"'
    return frame


async def _handle(
    frame: dict[str, Any], websocket: WebSocket, hub: EventHub, subscriber: Subscriber, user: User
) -> None:
    kind = frame["type"]
    if kind == "ping":
        subscriber.put({"type": "pong"})
        return
    if kind not in ("subscribe", "unsubscribe"):
        subscriber.put(
            _error("unknown_type", f"Unknown type {kind[:50]!r}: use subscribe, unsubscribe, ping")
        )
        return
    task_id = frame.get("task_id")
    if not isinstance(task_id, str) or not 0 < len(task_id) <= 100:
        subscriber.put(_error("invalid_task_id", 'task_id must be a task id or "*"'))
        return
    if kind == "unsubscribe":
        if task_id == WILDCARD:
            hub.unfollow_all(subscriber)
        else:
            hub.unfollow(subscriber, task_id)
        return
    factory = websocket.app.state.session_factory
    if task_id == WILDCARD:
        hub.follow_all(subscriber)
        async with factory() as session:
            states = await live_service.active_task_states(session, user)
        subscriber.release_all(states, {"type": "subscribed", "task_id": WILDCARD})
        return
    if task_id not in subscriber.tasks and len(subscriber.tasks) >= MAX_SUBSCRIPTIONS:
        subscriber.put(
            _error("too_many_subscriptions", f"At most {MAX_SUBSCRIPTIONS} tasks per connection")
        )
        return
    hub.follow(subscriber, task_id)
    try:
        async with factory() as session:
            current = await live_service.task_state(session, user, task_id)
    except NotFound:
        hub.unfollow(subscriber, task_id)
        subscriber.put(_error("task_not_found", f"Task {task_id} not found"))
        return
    subscriber.release(task_id, current, {"type": "subscribed", "task_id": task_id})


def _last_event_id(raw: str | None) -> int:
    try:
        return max(0, int(raw)) if raw else 0
    except ValueError:
        return 0


@router.get(
    "/tasks/{task_id}/events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`event: task_update` messages, `id:` = the task's event number",
        },
        **problems(404),
    },
)
async def task_events(
    task_id: str,
    request: Request,
    user: CurrentUser,
    factory: SessionFactoryDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventSourceResponse:
    """Server-Sent Events for one task: its current state, every change, then the end.

    Resume with ``Last-Event-ID``: changes already seen are not sent again.
    Browsers' EventSource may pass the credential as ``?token=``.
    """
    hub = _hub(request)
    subscriber = hub.connect(user.id, user.is_admin)
    hub.follow(subscriber, task_id)
    try:
        async with factory() as session:
            current = await live_service.task_state(session, user, task_id)
    except BaseException:
        hub.disconnect(subscriber)
        raise
    subscriber.release(task_id, current)
    seen = _last_event_id(last_event_id)
    return EventSourceResponse(
        _stream(hub, subscriber, seen),
        ping=15,
        send_timeout=SEND_TIMEOUT_SECONDS,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _stream(hub: EventHub, subscriber: Subscriber, seen: int) -> AsyncIterator[Any]:
    connections.opened("sse")
    first = True
    try:
        while not subscriber.overflowed:
            item = await subscriber.queue.get()
            if item is CLOSE or not isinstance(item, TaskEvent | Batch):
                return
            for task_event in item if isinstance(item, Batch) else (item,):
                terminal = task_event.status in TERMINAL_STATUSES
                # after a resume, only newer changes; but a finished task always says so
                if task_event.seq > seen or (first and terminal):
                    yield ServerSentEvent(
                        data=task_event.message_text(),
                        event="task_update",
                        id=str(task_event.seq),
                    )
                first = False
                if terminal:
                    return
    finally:
        hub.disconnect(subscriber)
        connections.closed("sse")
