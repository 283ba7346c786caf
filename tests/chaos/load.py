"""Load and live clients for the chaos suite.

``Loader`` uploads manuscripts like a careful client: every upload carries an
``Idempotency-Key`` and is retried with the same key after a 503/507, a
dropped connection or a timeout, so "exactly one task per accepted upload" is
checkable whatever the server went through. It records every answer.

``LiveWatcher`` is a WebSocket client following ``*`` (reconnecting with
backoff and reloading the task list after a reconnect, as the dashboard does)
plus Server-Sent Events streams on a few tasks (resuming with
``Last-Event-ID``). At the end each must know the final state of its tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets

from tests.conftest import CORPUS

TERMINAL = ("completed", "failed", "cancelled")
REQUEST_TIMEOUT = 15.0
CORPUS_FILES = (
    "pride_and_prejudice.en.utf8.txt",
    "moby_dick.en.utf8.txt",
    "alice_in_wonderland.en.utf8.txt",
    "hongloumeng.zh.utf8.txt",
)


def manuscripts(
    count: int, seed: int, min_chars: int = 2000, max_chars: int = 20000
) -> list[bytes]:
    """``count`` slices of the corpus, cut at line starts, 2-20 KB of real prose each."""
    rng = random.Random(seed)
    texts = [(CORPUS / name).read_text(encoding="utf-8") for name in CORPUS_FILES]
    slices = []
    for _ in range(count):
        text = rng.choice(texts)
        length = rng.randint(min_chars, max_chars)
        start = text.find("\n", rng.randint(0, max(0, len(text) - length))) + 1
        slices.append(text[start : start + length].encode("utf-8"))
    return slices


async def login(base_url: str, email: str, password: str) -> str:
    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT) as client:
        response = await client.post(
            "/api/v1/auth/login", data={"username": email, "password": password}
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token


@dataclass
class Upload:
    key: str
    processor: str
    name: str
    task_id: str | None = None
    batch_id: str | None = None
    answers: list[str] = field(default_factory=list)  # "202", "503", "timeout", …
    refused: bool = False


@dataclass
class Loader:
    base_url: str
    token: str
    give_up_after: float = 120.0
    uploads: list[Upload] = field(default_factory=list)
    answers: dict[str, int] = field(default_factory=dict)
    problems: list[dict[str, Any]] = field(default_factory=list)  # 5xx bodies and headers seen
    slowest: float = 0.0

    def _count(self, answer: str) -> None:
        self.answers[answer] = self.answers.get(answer, 0) + 1

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def upload(
        self,
        client: httpx.AsyncClient,
        content: bytes,
        processor: str,
        *,
        name: str = "book.txt",
        priority: int = 5,
        retry: bool = True,
    ) -> Upload:
        """Upload until accepted (retrying transient failures with the same key)."""
        item = Upload(key=uuid.uuid4().hex, processor=processor, name=name)
        self.uploads.append(item)
        deadline = time.monotonic() + self.give_up_after
        while True:
            started = time.monotonic()
            wait = 0.5
            try:
                response = await client.post(
                    "/api/v1/tasks/upload",
                    files={"file": (name, content, "text/plain")},
                    data={"processor": processor, "priority": str(priority)},
                    headers={**self.headers, "Idempotency-Key": item.key},
                    timeout=REQUEST_TIMEOUT,
                )
                answer = str(response.status_code)
            except httpx.TimeoutException:
                answer = "timeout"
                response = None
            except httpx.TransportError:
                answer = "connection_error"
                response = None
            self.slowest = max(self.slowest, time.monotonic() - started)
            item.answers.append(answer)
            self._count(answer)
            if response is not None and response.status_code in (200, 202):
                item.task_id = response.json()["id"]
                return item
            if response is not None:
                if response.status_code >= 500 or response.status_code == 429:
                    self.problems.append(_problem(response))
                retry_after = response.headers.get("retry-after", "")
                if retry_after.isdigit():
                    wait = min(float(retry_after), 5.0)
                if response.status_code not in (429, 503, 507):
                    item.refused = True
                    return item  # a definitive refusal: nothing to retry
            if not retry or time.monotonic() > deadline:
                item.refused = True
                return item
            await asyncio.sleep(wait)

    async def batch(
        self, client: httpx.AsyncClient, contents: list[bytes], processor: str
    ) -> list[Upload]:
        """One batch upload (retried on transient failures; batches have no idempotency key)."""
        deadline = time.monotonic() + self.give_up_after
        while True:
            try:
                response = await client.post(
                    "/api/v1/tasks/batch",
                    files=[
                        ("files", (f"part-{i}.txt", c, "text/plain"))
                        for i, c in enumerate(contents)
                    ],
                    data={"processor": processor},
                    headers=self.headers,
                    timeout=REQUEST_TIMEOUT,
                )
                answer = str(response.status_code)
            except httpx.TransportError:
                response, answer = None, "connection_error"
            self._count(answer)
            if response is not None and response.status_code in (200, 201, 202):
                body = response.json()
                items = []
                for task in body["tasks"]:
                    item = Upload(uuid.uuid4().hex, processor, task.get("file_name", "part"))
                    item.task_id, item.batch_id = task["id"], body.get("batch_id") or body.get("id")
                    item.answers.append(answer)
                    items.append(item)
                self.uploads.extend(items)
                return items
            if response is not None and response.status_code not in (429, 503, 507):
                raise AssertionError(f"batch refused: {response.status_code} {response.text[:500]}")
            if time.monotonic() > deadline:
                raise AssertionError("a batch upload was never accepted")
            await asyncio.sleep(0.5)

    @property
    def accepted(self) -> dict[str, str]:
        """Idempotency key → task id of every accepted upload."""
        return {u.key: u.task_id for u in self.uploads if u.task_id is not None}


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = {"raw": response.text[:300]}
    return {
        "status": response.status_code,
        "retry_after": response.headers.get("retry-after"),
        "content_type": response.headers.get("content-type"),
        "body": body,
    }


@dataclass
class LiveWatcher:
    """One WebSocket client on ``*`` and SSE streams on chosen tasks."""

    base_url: str
    token: str
    ws_states: dict[str, str] = field(default_factory=dict)
    sse_states: dict[str, str] = field(default_factory=dict)
    ws_connects: int = 0
    ws_closes: dict[str, int] = field(default_factory=dict)
    sse_connects: int = 0
    reloads: int = 0
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stopping: bool = False

    def start_ws(self) -> None:
        self._tasks.append(asyncio.create_task(self._ws_loop()))

    def follow_sse(self, task_id: str) -> None:
        self._tasks.append(asyncio.create_task(self._sse_loop(task_id), name=f"sse-{task_id}"))

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _apply(self, message: dict[str, Any], *, from_reload: bool = False) -> None:
        task_id, status = message.get("task_id") or message.get("id"), message.get("status")
        if not isinstance(task_id, str) or not isinstance(status, str):
            return
        if from_reload and self.ws_states.get(task_id) in TERMINAL:
            return  # the list may be older than an update that already arrived
        self.ws_states[task_id] = status

    async def _ws_loop(self) -> None:
        ws_url = self.base_url.replace("http://", "ws://") + "/api/v1/ws/tasks/"
        backoff = 0.2
        while not self._stopping:
            try:
                async with websockets.connect(
                    f"{ws_url}{uuid.uuid4()}?token={self.token}", open_timeout=10, max_size=None
                ) as ws:
                    self.ws_connects += 1
                    await ws.send(json.dumps({"type": "subscribe", "task_id": "*"}))
                    if self.ws_connects > 1:
                        await self.reload()
                    backoff = 0.2
                    async for raw in ws:
                        message = json.loads(raw)
                        for item in message.get("tasks", []) if isinstance(message, dict) else []:
                            self._apply(item)  # a snapshot of many tasks at once
                        self._apply(message)
                    code = ws.close_code
            except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                code = getattr(exc, "code", None) or getattr(
                    getattr(exc, "rcvd", None), "code", type(exc).__name__
                )
            self.ws_closes[str(code)] = self.ws_closes.get(str(code), 0) + 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    async def reload(self) -> None:
        """The task list over REST, as a reconnecting dashboard does."""
        self.reloads += 1
        async with httpx.AsyncClient(base_url=self.base_url, timeout=REQUEST_TIMEOUT) as client:
            page = 1
            while True:
                response = await client.get(
                    "/api/v1/tasks/",
                    params={"page": page, "page_size": 100},
                    headers={"Authorization": f"Bearer {self.token}"},
                )
                if response.status_code != 200:
                    return
                body = response.json()
                for task in body["items"]:
                    self._apply(task, from_reload=True)
                if page * 100 >= body["total"]:
                    return
                page += 1

    async def _sse_loop(self, task_id: str) -> None:
        last_id: str | None = None
        while not self._stopping and self.sse_states.get(task_id) not in TERMINAL:
            headers = {"Last-Event-ID": last_id} if last_id else {}
            try:
                async with (
                    httpx.AsyncClient(
                        base_url=self.base_url, timeout=httpx.Timeout(30, read=40)
                    ) as client,
                    client.stream(
                        "GET", f"/api/v1/tasks/{task_id}/events?token={self.token}", headers=headers
                    ) as response,
                ):
                    if response.status_code != 200:
                        await asyncio.sleep(0.5)
                        continue
                    self.sse_connects += 1
                    async for line in response.aiter_lines():
                        if line.startswith("id:"):
                            last_id = line[3:].strip()
                        elif line.startswith("data:"):
                            data = json.loads(line[5:].strip())
                            if isinstance(data.get("status"), str):
                                self.sse_states[task_id] = data["status"]
            except (httpx.TransportError, ValueError):
                pass
            await asyncio.sleep(0.3)

    async def converge(self, truth: dict[str, str], within: float) -> dict[str, list[str]]:
        """Wait up to ``within`` s for the clients to agree with ``truth`` (task id → status).

        Returns what still disagrees: {"websocket": [...], "sse": [...]}.
        """
        deadline = time.monotonic() + within
        while True:
            ws_wrong = [t for t, s in truth.items() if self.ws_states.get(t) != s]
            sse_wrong = [t for t in self.sse_states if self.sse_states[t] != truth.get(t)]
            sse_wrong += [t for t in self._sse_ids() if t not in self.sse_states]
            if (not ws_wrong and not sse_wrong) or time.monotonic() > deadline:
                return {
                    "websocket": [
                        f"{t}: saw {self.ws_states.get(t)}, is {truth[t]}" for t in ws_wrong
                    ],
                    "sse": [
                        f"{t}: saw {self.sse_states.get(t)}, is {truth.get(t)}" for t in sse_wrong
                    ],
                }
            await asyncio.sleep(0.2)

    def _sse_ids(self) -> list[str]:
        return [
            name.removeprefix("sse-")
            for name in (t.get_name() for t in self._tasks)
            if name.startswith("sse-")
        ]

    def figures(self) -> dict[str, Any]:
        return {
            "websocket_connects": self.ws_connects,
            "websocket_closes": dict(self.ws_closes),
            "sse_connects": self.sse_connects,
            "reloads_after_reconnect": self.reloads,
        }


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
