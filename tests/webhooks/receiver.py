"""A real webhook receiver on loopback: a uvicorn server the test starts and stops.

It records every request (headers, body, time) and answers from a script of
responses (then 200), so tests can make it fail, throttle or redirect.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    script: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/hook") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def answer(self, *responses: tuple[int, dict[str, str]]) -> None:
        """The next requests' answers (status, headers), in order; then 200."""
        self.script.extend(responses)

    def on(self, path: str) -> list[Received]:
        return [request for request in self.requests if request.path == path]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {key.decode().lower(): value.decode() for key, value in scope["headers"]}
        self.requests.append(Received(scope["path"], headers, body, time.monotonic()))
        self.arrived.set()
        status, extra = self.script.popleft() if self.script else (200, {})
        raw = [(key.encode(), value.encode()) for key, value in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": b"ok"})


async def start(receiver: Receiver) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    config = uvicorn.Config(
        receiver, host=receiver.host, port=0, lifespan="off", access_log=False,
        log_config=None,  # leave the process's logging alone (later tests read it)
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            await asyncio.sleep(0.01)
    receiver.port = server.servers[0].sockets[0].getsockname()[1]
    return server, task


async def stop(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    server.should_exit = True
    async with asyncio.timeout(10):
        await task
