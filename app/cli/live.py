"""Following tasks live: one WebSocket for all of them, else one SSE stream each.

``follow`` yields every ``task_update`` (the payload of the API's WebSocket
and SSE events) until each task followed is completed, failed or cancelled.
The WebSocket (``/api/v1/ws/tasks/{client_id}``, the credential in the
``Authorization`` header) is tried first; when it cannot be opened (a proxy
that does not pass WebSockets, say) or drops, the tasks still running are
followed over Server-Sent Events (``/api/v1/tasks/{id}/events``), one
stream per task in a thread of its own, with ``httpx-sse``.
"""

from __future__ import annotations

import json
import queue
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import websockets
from httpx_sse import connect_sse
from websockets.sync.client import connect as ws_connect

from app.cli.client import TERMINAL, Api, CliError, describe

WS_OPEN_TIMEOUT = 10.0
RECEIVE_TIMEOUT = 1.0


class WebSocketUnavailable(Exception):
    """The WebSocket could not be used (refused, unsupported, dropped)."""


def _ws_url(api: Api) -> str:
    base = api.base_url
    scheme = "wss" if base.startswith("https") else "ws"
    return f"{scheme}{base[base.index(':') :]}/api/v1/ws/tasks/{uuid.uuid4()}"


def follow_websocket(api: Api, task_ids: list[str]) -> Iterator[dict[str, Any]]:
    """Yield updates of ``task_ids`` over one WebSocket until every one is terminal."""
    open_ids = set(task_ids)
    headers = {"Authorization": f"Bearer {api.credentials.token}"}
    try:
        connection = ws_connect(
            _ws_url(api),
            additional_headers=headers,
            open_timeout=WS_OPEN_TIMEOUT,
            user_agent_header="ntm",
        )
    except (OSError, websockets.exceptions.WebSocketException, TimeoutError) as exc:
        raise WebSocketUnavailable(str(exc) or type(exc).__name__) from None
    with connection:
        try:
            for task_id in task_ids:
                connection.send(json.dumps({"type": "subscribe", "task_id": task_id}))
            while open_ids:
                try:
                    raw = connection.recv(timeout=RECEIVE_TIMEOUT)
                except TimeoutError:
                    continue
                message = json.loads(raw)
                if message.get("type") == "error":
                    raise CliError(f"{message.get('detail')} ({message.get('code')})")
                if message.get("type") != "task_update":
                    continue
                if message.get("task_id") not in open_ids:
                    continue
                if message.get("status") in TERMINAL:
                    open_ids.discard(message["task_id"])
                yield message
        except websockets.exceptions.ConnectionClosed as exc:
            raise WebSocketUnavailable(f"the connection closed ({exc})") from None


def _sse_reader(api: Api, task_id: str, out: queue.Queue[tuple[str, Any]]) -> None:
    """Thread: put every event of one task's stream on ``out``, then ``("end", task_id)``."""
    headers = {"Authorization": f"Bearer {api.credentials.token}", "User-Agent": "ntm"}
    timeout = httpx.Timeout(60.0, connect=10.0)  # the server sends a keep-alive every 15 s
    try:
        with (
            httpx.Client(headers=headers, timeout=timeout) as http,
            connect_sse(http, "GET", f"{api.base_url}/api/v1/tasks/{task_id}/events") as source,
        ):
            if source.response.status_code >= 400:
                source.response.read()
                out.put(("error", describe(source.response)))
                return
            for event in source.iter_sse():
                if event.event == "task_update":
                    out.put(("update", json.loads(event.data)))
    except httpx.HTTPError as exc:
        out.put(("error", CliError(f"lost the event stream of task {task_id}: {exc}")))
        return
    out.put(("end", task_id))


def follow_sse(api: Api, task_ids: list[str]) -> Iterator[dict[str, Any]]:
    """Yield updates of ``task_ids`` from one SSE stream each until every one is terminal."""
    out: queue.Queue[tuple[str, Any]] = queue.Queue()
    open_ids = set(task_ids)
    for task_id in task_ids:
        threading.Thread(
            target=_sse_reader, args=(api, task_id, out), name=f"sse-{task_id}", daemon=True
        ).start()
    while open_ids:
        kind, value = out.get()
        if kind == "error":
            raise value
        if kind == "end":
            if value in open_ids:  # a stream that ended early: ask where the task is
                open_ids.discard(value)
                yield {"type": "task_update", "task_id": value, **_state(api.task(value))}
            continue
        if value.get("status") in TERMINAL:
            open_ids.discard(value.get("task_id"))
        yield value


def _state(task: dict[str, Any]) -> dict[str, Any]:
    keys = ("status", "progress", "stage", "result_url", "error_message")
    return {key: task.get(key) for key in keys}


def follow(api: Api, task_ids: list[str], transport: str = "auto") -> Iterator[dict[str, Any]]:
    """Updates of ``task_ids`` until all are terminal: WebSocket first, SSE as the fallback."""
    remaining = list(task_ids)
    if not remaining:
        return
    if transport in {"auto", "websocket"}:
        try:
            for update in follow_websocket(api, remaining):
                if update.get("status") in TERMINAL:
                    remaining.remove(update["task_id"])
                yield update
            return
        except WebSocketUnavailable as exc:
            if transport == "websocket":
                raise CliError(f"the WebSocket failed: {exc}") from None
    if remaining:
        yield from follow_sse(api, remaining)
