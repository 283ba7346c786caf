"""Realtime benchmark: WebSocket fan-out latency from a state change to its receipt.

    .venv/bin/python bench/bench_realtime.py                      # both scenarios
    .venv/bin/python bench/bench_realtime.py --changes 5 --one 100 --tasks 2 --per-task 20  # smoke

It creates a scratch PostgreSQL database, starts the API (``uvicorn app.main:app``,
no workers) and opens WebSocket clients in this process:
- scenario A: ``--one`` subscribers (default 1,000) to one task;
- scenario B: ``--tasks`` tasks (default 10) with ``--per-task`` subscribers each (100).
This process then changes the tasks ``--changes`` times, the way a worker in
another process does (a committed UPDATE plus ``pg_notify``); the API receives
the notification and fans it out. Latency is receipt time minus commit time
(one machine, one clock), over every (change, subscriber) pair; the clients'
own parsing counts against the server, so figures are upper bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import websockets
from common import (
    bench_settings,
    create_owner,
    free_port,
    scratch_postgres,
    start_api,
    task_row,
    wait_healthy,
)

from app.database import create_engine_for, create_session_factory
from app.events.bus import EventBus
from app.events.publish import TaskEvent, publish_event
from app.models import Task, TaskStatus
from app.services import auth as auth_service


class Clients:
    """WebSocket clients that record when each task_update arrives."""

    def __init__(self) -> None:
        self.received: dict[tuple[str, int], list[float]] = {}
        self.sockets: list[websockets.ClientConnection] = []
        self.readers: list[asyncio.Task[None]] = []

    async def open(self, url: str, task_id: str, count: int) -> None:
        for _ in range(count):
            ws = await websockets.connect(url, max_size=2**16, ping_interval=None)
            await ws.send(json.dumps({"type": "subscribe", "task_id": task_id}))
            json.loads(await ws.recv())  # subscribed
            json.loads(await ws.recv())  # current state
            self.sockets.append(ws)
            self.readers.append(asyncio.create_task(self._read(ws)))

    async def _read(self, ws: websockets.ClientConnection) -> None:
        async for raw in ws:
            now = time.perf_counter()
            message = json.loads(raw)
            if message.get("type") == "task_update":
                key = (message["task_id"], message["progress"])
                self.received.setdefault(key, []).append(now)

    async def close(self) -> None:
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)


async def scenario(
    label: str,
    sessions: object,
    base_ws: str,
    task_ids: list[str],
    per_task: int,
    changes: int,
) -> None:
    clients = Clients()
    try:
        for task_id in task_ids:
            await clients.open(base_ws, task_id, per_task)
        sent: dict[tuple[str, int], float] = {}

        async def change(task_id: str, step: int) -> None:
            async with sessions() as session:  # type: ignore[operator]
                task = await session.get(Task, task_id)
                task.status = TaskStatus.PROCESSING
                task.progress = step
                task.event_seq += 1
                await publish_event(session, TaskEvent.from_task(task))
                sent[(task_id, step)] = time.perf_counter()
                await session.commit()

        async def delivered(expected: int) -> None:
            deadline = time.perf_counter() + 60
            while time.perf_counter() < deadline:
                if sum(len(v) for v in clients.received.values()) >= expected:
                    return
                await asyncio.sleep(0.005)

        # latency: changes spaced out, as a worker's throttled progress is
        for step in range(1, changes + 1):
            for task_id in task_ids:
                await change(task_id, step)
            await asyncio.sleep(0.1)
        expected = changes * len(task_ids) * per_task
        await delivered(expected)
        latencies = sorted(
            (at - sent[key]) * 1000 for key, times in clients.received.items() for at in times
        )
        got = len(latencies)
        q = statistics.quantiles(latencies, n=100) if got > 1 else [0.0] * 99
        # throughput: the same number of changes back to back
        clients.received.clear()
        started = time.perf_counter()
        for step in range(changes + 1, 2 * changes + 1):
            for task_id in task_ids:
                await change(task_id, step)
        await delivered(expected)
        burst = time.perf_counter() - started
        burst_got = sum(len(v) for v in clients.received.values())
        print(
            f"{label}: {len(task_ids)} task(s) x {per_task} subscribers, {changes} changes: "
            f"{got}/{expected} delivered; latency p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms, "
            f"max {latencies[-1] if latencies else 0:.1f} ms; back to back: "
            f"{burst_got}/{expected} in {burst:.2f} s = {burst_got / burst:.0f} messages/s"
        )
    finally:
        await clients.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--one", type=int, default=1000, help="subscribers of one task")
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--per-task", type=int, default=100)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--ws", default="auto", help="uvicorn's WebSocket implementation")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    upload_dir = Path(tempfile.mkdtemp(prefix="ntm-bench-"))
    async with scratch_postgres(args.admin_url) as database_url:
        settings = bench_settings(database_url, upload_dir)
        secret = settings.secret_key
        owner = await create_owner(settings)
        engine = create_engine_for(settings)
        sessions = create_session_factory(engine, EventBus())
        async with sessions() as session, session.begin():
            tasks = [Task(**task_row(owner.id)) for _ in range(1 + args.tasks)]
            session.add_all(tasks)
        token, _ = auth_service.create_access_token(settings, owner)
        port = free_port()
        env = {"DATABASE_URL": database_url, "UPLOAD_DIR": str(upload_dir), "SECRET_KEY": secret,
               "WORKER_CONCURRENCY": "0", "RATE_LIMIT": "100000/minute"}  # fmt: skip
        api = start_api(port, env, "--backlog", "4096", "--ws", args.ws)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                await wait_healthy(client)
            base_ws = f"ws://127.0.0.1:{port}/api/v1/ws/tasks/bench?token={token}"
            await scenario("A", sessions, base_ws, [tasks[0].id], args.one, args.changes)
            await scenario(
                "B", sessions, base_ws, [t.id for t in tasks[1:]], args.per_task, args.changes
            )
        finally:
            api.terminate()
            api.wait(timeout=30)
            await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
