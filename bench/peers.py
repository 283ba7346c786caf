"""Side by side: this service against PgQueuer, Procrastinate and arq, interleaved in one run.

    .venv/bin/python bench/peers.py            # full run: 3 rounds (about 15 minutes)
    .venv/bin/python -m bench --quick          # smoke run: small counts, 1 round (under a minute)
    .venv/bin/python bench/peers.py --only drain,pickup --rounds 5

Needs PostgreSQL at 127.0.0.1:5432 (trust auth, user ``postgres``; each system
gets a database of its own, created here and dropped at the end), Redis at
127.0.0.1:6379 for arq (its keys carry this run's token and are deleted at the
end) and the ``bench`` extra (``pip install -e '.[bench]'``).

Every round runs each figure for every system, the order of the systems
rotating from round to round, so drift of a shared machine lands on all of
them alike. The table gives the median over the rounds with min-max, and the
ratio of ours to each peer (higher is better for rates, lower for latencies).

Figures (``--only`` picks some):
 drain   N queued (``--drain``, 5,000), one worker process at concurrency 10, started and
         warmed up (one job done) first: from the commit of one bulk enqueue (the jobs are
         queued) to every job verified done in the system's own tables;
 pickup  ``--pickup`` jobs (200) enqueued one by one 20 ms apart on the idle worker:
         client clock just before the enqueue call -> the start stamp in the
         system's own tables, p50/p95/p99;
 enqueue ``--enqueue`` jobs (1,000), 1 producer and 10 concurrent producers, no worker;
         ours through the service layer (``task_service.upload`` + commit, a 30-byte
         file) and through ``POST /api/v1/tasks/upload`` over HTTP with an API key;
 http    2 KB uploads at 32 connections for ``--http-seconds`` (10) with wrk (or an
         asyncio client if wrk is missing): the bare endpoint of ``bench/bare_upload.py``
         against our full upload, both under the same uvicorn settings;
 e2e     upload -> ``completed`` seen on a WebSocket subscribed to ``*``, one at a time,
         ``--e2e`` uploads (100), ``noop``, the API and one worker process;
 sqlite  drain and pickup on SQLite: the API process with its in-process pool at
         concurrency 10; drain = N / (last completion - first start), both stamped in
         the task rows; pickup = ``started_at - uploaded_at`` of uploads 20 ms apart;
 rss     once, after the rounds: the API's RSS after ``--rss-small`` (100) tasks and
         after ``--rss-large`` (10,000), uploaded over HTTP and completed by a worker
         process, a WebSocket subscriber to ``*`` connected throughout.
"""

from __future__ import annotations

import abc
import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent) not in sys.path:  # ``common`` under ``python -m bench``
    sys.path.append(str(Path(__file__).resolve().parent))

import asyncpg
import httpx
import websockets
from common import (
    ADMIN_URL,
    ROOT,
    bench_settings,
    create_owner,
    free_port,
    migrate,
    scratch_postgres,
    task_row,
)
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.api.live import MAX_FRAME_BYTES
from app.database import create_engine_for, create_session_factory
from app.events.bus import EventBus
from app.events.publish import QUEUE_CHANNEL
from app.models import Task, TaskQueue, TaskStatus, User
from app.models.base import utcnow
from app.services import storage
from app.services import tasks as task_service
from app.services.uploads import ReceivedFile, ReceivedForm
from app.services.users import create_api_key

CONCURRENCY = 10
PICKUP_GAP = 0.02
POLL = 0.02
UVICORN_OPTIONS = ("--loop", "uvloop", "--http", "httptools", "--backlog", "4096")
PEERS = ("pgqueuer", "procrastinate", "arq")
FIGURES = ("drain", "pickup", "enqueue", "http", "e2e", "sqlite", "rss")


# ---------------------------------------------------------------- helpers


def pct(values: Sequence[float], p: int) -> float:
    """The p-th percentile (statistics.quantiles, exclusive), or the one value."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(sorted(values), n=100)[p - 1]


def multipart(size: int, *, processor: str = "noop") -> tuple[bytes, str]:
    """A multipart body with one ``.txt`` file of ``size`` bytes and ``processor``."""
    boundary = uuid.uuid4().hex
    line = b"The quick brown fox jumps over the lazy dog.\n"
    data = (line * (size // len(line) + 1))[:size]
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="processor"\r\n\r\n'
            f'{processor}\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="bench.txt"\r\nContent-Type: text/plain\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


class Worker:
    """A worker child process, its output in a log file shown if it dies."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], logdir: Path) -> None:
        self.name = name
        self.log = logdir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
            )

    def check(self) -> None:
        if self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} exited ({self.process.returncode}):\n{tail}")

    async def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, 30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await asyncio.to_thread(self.process.wait)


async def wait_until(
    done: Callable[[], Awaitable[bool]], worker: Worker | None, limit: float, what: str
) -> None:
    deadline = time.perf_counter() + limit
    while not await done():
        if worker is not None:
            worker.check()
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{what}: not done after {limit:.0f} s")
        await asyncio.sleep(POLL)


@asynccontextmanager
async def scratch_database(prefix: str) -> AsyncIterator[str]:
    """An empty PostgreSQL database (its libpq DSN), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        admin = await asyncpg.connect(ADMIN_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


# ---------------------------------------------------------------- the queues


class Queue(abc.ABC):
    """One system under test for drain, pickup and enqueue."""

    name: str
    logdir: Path

    @abc.abstractmethod
    async def open(self, stack: AsyncExitStack) -> None:
        """Create its database or keys and install its schema."""

    @abc.abstractmethod
    def worker(self) -> Worker:
        """Start its worker process (one, concurrency 10)."""

    @abc.abstractmethod
    async def enqueue_many(self, n: int) -> list[Any]:
        """Enqueue ``n`` no-op jobs the fastest way it offers; their keys."""

    @abc.abstractmethod
    async def enqueue_one(self) -> Any:
        """Enqueue one no-op job; its key."""

    @abc.abstractmethod
    async def done(self, keys: list[Any]) -> int:
        """How many jobs its own tables show done (``keys``: those enqueued so far)."""

    @abc.abstractmethod
    async def verify(self, keys: list[Any]) -> None:
        """Raise unless exactly ``keys`` are done, as its own tables record it."""

    @abc.abstractmethod
    async def start_times(self, keys: list[Any]) -> dict[Any, float]:
        """When each started job started (epoch seconds), from its own tables."""

    @abc.abstractmethod
    async def reset(self) -> None:
        """Empty its tables (its worker stopped)."""

    @abc.abstractmethod
    async def producer(self, stack: AsyncExitStack) -> Callable[[], Awaitable[Any]]:
        """A coroutine function enqueueing one job, safe to run 10 at a time."""


class Ours(Queue):
    """This service on PostgreSQL: ``python -m app.worker``, the ``noop`` processor."""

    name = "ours"

    async def open(self, stack: AsyncExitStack) -> None:
        self.upload_dir = Path(tempfile.mkdtemp(prefix="ntm-peers-", dir=self.logdir))
        self.database_url = await stack.enter_async_context(scratch_postgres())
        self.settings = bench_settings(self.database_url, self.upload_dir)
        self.owner = await create_owner(self.settings)
        self.engine = create_engine_for(self.settings)
        stack.push_async_callback(self.engine.dispose)
        self.sessions = create_session_factory(self.engine, EventBus())

    def worker(self) -> Worker:
        env = {"DATABASE_URL": self.database_url, "UPLOAD_DIR": str(self.upload_dir),
               "WORKER_CONCURRENCY": str(CONCURRENCY), "LOG_LEVEL": "WARNING",
               "LOG_FORMAT": "json", "SECRET_KEY": self.settings.secret_key}  # fmt: skip
        return Worker("ours-worker", [sys.executable, "-m", "app.worker"], env, self.logdir)

    async def enqueue_many(self, n: int) -> list[Any]:
        rows = [task_row(self.owner.id) for _ in range(n)]
        now = utcnow()
        async with self.sessions() as session, session.begin():
            await session.execute(insert(Task), rows)
            await session.execute(
                insert(TaskQueue),
                [{"task_id": r["id"], "priority": 5, "enqueued_at": now, "available_at": now,
                  "attempt": 0} for r in rows],
            )  # fmt: skip
            await session.execute(text("SELECT pg_notify(:c, '')"), {"c": QUEUE_CHANNEL})
        return [r["id"] for r in rows]

    async def enqueue_one(self) -> Any:
        """One task through the service layer, as the upload route makes it once a body is
        received: its file placed (the 30 bytes written and renamed in one thread call),
        its rows and its event in one statement, then the commit."""
        content = b"A manuscript of thirty bytes.\n"
        temp = storage.new_temp_path(self.upload_dir)
        received = ReceivedFile(filename="bench.txt", temp_path=temp, size=len(content))
        received.sha256.update(content)
        received.tail += content
        options = task_service.UploadOptions(project_id=None, priority=5, processor="noop")
        async with self.sessions() as session, ReceivedForm([received], {}) as form:
            tasks, _, _ = await task_service.create_tasks(
                session, self.settings, self.owner, form, options
            )
            await session.commit()
        return tasks[0].id

    async def done(self, keys: list[Any]) -> int:
        async with self.sessions() as session:
            query = (
                select(func.count()).select_from(Task).where(Task.status == TaskStatus.COMPLETED)
            )
            return int((await session.execute(query)).scalar_one())

    async def verify(self, keys: list[Any]) -> None:
        async with self.sessions() as session:
            row = (await session.execute(text(
                "SELECT (SELECT count(*) FROM tasks WHERE status = 'completed'),"
                " (SELECT count(*) FROM task_results), (SELECT count(*) FROM task_queue),"
                " (SELECT count(*) FROM task_logs WHERE attempt > 0)"
            ))).one()  # fmt: skip
        if (row[0], row[1], row[2]) != (len(keys), len(keys), 0) or row[3] < 2 * len(keys):
            raise AssertionError(f"ours: completed/results/queued/logs = {tuple(row)}")

    async def start_times(self, keys: list[Any]) -> dict[Any, float]:
        async with self.sessions() as session:
            rows = await session.execute(select(Task.id, Task.started_at).where(Task.id.in_(keys)))
            return {r.id: r.started_at.timestamp() for r in rows if r.started_at is not None}

    async def reset(self) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("TRUNCATE tasks CASCADE"))

    async def producer(self, stack: AsyncExitStack) -> Callable[[], Awaitable[Any]]:
        body, content_type = multipart(30)
        owner = self.owner

        async def chunks() -> AsyncIterator[bytes]:
            yield body

        async def upload_one() -> Any:
            async with self.sessions() as session:
                user = await session.get(User, owner.id)
                assert user is not None
                tasks, _, _ = await task_service.upload(
                    session, self.settings, user, chunks(), content_type=content_type,
                    idempotency_key=None, batch=False,
                )  # fmt: skip
                await session.commit()
                return tasks[0].id

        return upload_one


class PgQueuerQueue(Queue):
    """PgQueuer: its schema (``install``), ``pgq run`` with a factory, asyncpg."""

    name = "pgqueuer"

    async def open(self, stack: AsyncExitStack) -> None:
        from pgqueuer.db import AsyncpgDriver
        from pgqueuer.queries import Queries

        self.dsn = await stack.enter_async_context(scratch_database("ntm_bench_pgq"))
        self.conn = await asyncpg.connect(self.dsn)
        stack.push_async_callback(self.conn.close)
        self.queries = Queries(AsyncpgDriver(self.conn))
        await self.queries.install()

    def worker(self) -> Worker:
        # pgq run's supervisor: batches of 5, at most 10 jobs held (bench/peer_apps.py)
        command = [sys.executable, "-m", "bench.peer_apps", "pgqueuer"]  # fmt: skip
        return Worker("pgqueuer-worker", command, {"PGQ_BENCH_DSN": self.dsn}, self.logdir)

    async def enqueue_many(self, n: int) -> list[Any]:
        return list(await self.queries.enqueue(["noop"] * n, [None] * n, [0] * n))

    async def enqueue_one(self) -> Any:
        return (await self.queries.enqueue("noop", None))[0]

    async def done(self, keys: list[Any]) -> int:
        return int(
            await self.conn.fetchval(
                "SELECT count(*) FROM pgqueuer_log WHERE status = 'successful'"
            )
        )

    async def verify(self, keys: list[Any]) -> None:
        ok = await self.conn.fetchval(
            "SELECT count(DISTINCT job_id) FROM pgqueuer_log"
            " WHERE status = 'successful' AND job_id = ANY($1)", keys
        )  # fmt: skip
        left = await self.conn.fetchval("SELECT count(*) FROM pgqueuer")
        if (ok, left) != (len(keys), 0):
            raise AssertionError(f"pgqueuer: successful/left = {ok}/{left}")

    async def start_times(self, keys: list[Any]) -> dict[Any, float]:
        rows = await self.conn.fetch(
            "SELECT job_id, extract(epoch FROM created)::float8 AS at FROM pgqueuer_log"
            " WHERE status = 'picked' AND job_id = ANY($1)", keys
        )  # fmt: skip
        return {r["job_id"]: r["at"] for r in rows}

    async def reset(self) -> None:
        await self.conn.execute("TRUNCATE pgqueuer, pgqueuer_log, pgqueuer_statistics")

    async def producer(self, stack: AsyncExitStack) -> Callable[[], Awaitable[Any]]:
        from pgqueuer.db import AsyncpgPoolDriver
        from pgqueuer.queries import Queries

        pool = await asyncpg.create_pool(self.dsn, min_size=CONCURRENCY, max_size=CONCURRENCY)
        stack.push_async_callback(pool.close)
        queries = Queries(AsyncpgPoolDriver(pool))

        async def enqueue_one() -> Any:
            return (await queries.enqueue("noop", None))[0]

        return enqueue_one


class ProcrastinateQueue(Queue):
    """Procrastinate: its schema (``apply_schema``), ``procrastinate worker``, psycopg."""

    name = "procrastinate"

    async def open(self, stack: AsyncExitStack) -> None:
        import procrastinate

        self.dsn = await stack.enter_async_context(scratch_database("ntm_bench_procrastinate"))
        from bench.peer_apps import procrastinate_app

        connector = procrastinate.PsycopgConnector(
            conninfo=self.dsn, min_size=1, max_size=CONCURRENCY
        )
        stack.enter_context(procrastinate_app.replace_connector(connector))
        self.app = procrastinate_app
        await stack.enter_async_context(self.app.open_async())
        await self.app.schema_manager.apply_schema_async()
        self.conn = await asyncpg.connect(self.dsn)
        stack.push_async_callback(self.conn.close)
        self.task = self.app.configure_task(name="noop")

    def worker(self) -> Worker:
        command = [sys.executable, "-m", "procrastinate", "--app",
                   "bench.peer_apps.procrastinate_app", "worker", "--concurrency",
                   str(CONCURRENCY)]  # fmt: skip
        env = {"PROCRASTINATE_BENCH_DSN": self.dsn}
        return Worker("procrastinate-worker", command, env, self.logdir)

    async def enqueue_many(self, n: int) -> list[Any]:
        return list(await self.task.batch_defer_async(*({} for _ in range(n))))

    async def enqueue_one(self) -> Any:
        return await self.app.configure_task(name="noop").defer_async()

    async def done(self, keys: list[Any]) -> int:
        return int(
            await self.conn.fetchval(
                "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
            )
        )

    async def verify(self, keys: list[Any]) -> None:
        ok = await self.conn.fetchval(
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded' AND id = ANY($1)",
            keys,
        )
        if ok != len(keys):
            raise AssertionError(f"procrastinate: succeeded {ok} of {len(keys)}")

    async def start_times(self, keys: list[Any]) -> dict[Any, float]:
        rows = await self.conn.fetch(
            "SELECT job_id, extract(epoch FROM at)::float8 AS at FROM procrastinate_events"
            " WHERE type = 'started' AND job_id = ANY($1)", keys
        )  # fmt: skip
        return {r["job_id"]: r["at"] for r in rows}

    async def reset(self) -> None:
        await self.conn.execute("TRUNCATE procrastinate_jobs, procrastinate_workers CASCADE")

    async def producer(self, stack: AsyncExitStack) -> Callable[[], Awaitable[Any]]:
        async def enqueue_one() -> Any:
            return await self.app.configure_task(name="noop").defer_async()

        return enqueue_one


class ArqQueue(Queue):
    """arq: ``arq WorkerSettings`` with ``max_jobs = 10``, Redis; results kept by arq."""

    name = "arq"

    async def open(self, stack: AsyncExitStack) -> None:
        from arq import create_pool

        from bench.peer_apps import ARQ_REDIS

        self.token = f"ntm-bench-{uuid.uuid4().hex[:8]}"
        self.queue = f"arq:queue:{self.token}"
        self.redis = await create_pool(ARQ_REDIS, default_queue_name=self.queue)
        stack.push_async_callback(self.redis.aclose)
        stack.push_async_callback(self._delete_keys)
        self.count = 0

    async def _delete_keys(self) -> None:
        keys = [k async for k in self.redis.scan_iter(match=f"*{self.token}*", count=1000)]
        for i in range(0, len(keys), 1000):
            await self.redis.delete(*keys[i : i + 1000])

    def _ids(self, n: int) -> list[str]:
        self.count += n
        return [f"{self.token}-{i}" for i in range(self.count - n, self.count)]

    def worker(self) -> Worker:
        command = [sys.executable, "-m", "arq", "bench.peer_apps.ArqWorker"]
        return Worker("arq-worker", command, {"ARQ_BENCH_QUEUE": self.queue}, self.logdir)

    async def enqueue_many(self, n: int) -> list[Any]:
        ids = self._ids(n)
        for i in range(0, n, 100):
            await asyncio.gather(*(self.redis.enqueue_job("arq_noop", _job_id=j)
                                   for j in ids[i : i + 100]))  # fmt: skip
        return ids

    async def enqueue_one(self) -> Any:
        (job_id,) = self._ids(1)
        await self.redis.enqueue_job("arq_noop", _job_id=job_id)
        return job_id

    async def done(self, keys: list[Any]) -> int:
        total = 0
        for i in range(0, len(keys), 1000):
            total += await self.redis.exists(*(f"arq:result:{k}" for k in keys[i : i + 1000]))
        return total

    async def verify(self, keys: list[Any]) -> None:
        from arq.jobs import Job

        results = [await Job(k, self.redis, _queue_name=self.queue).result_info() for k in keys]
        ok = sum(1 for r in results if r is not None and r.success)
        if ok != len(keys):
            raise AssertionError(f"arq: {ok} of {len(keys)} succeeded")

    async def start_times(self, keys: list[Any]) -> dict[Any, float]:
        from arq.jobs import Job

        out = {}
        for k in keys:
            info = await Job(k, self.redis, _queue_name=self.queue).result_info()
            if info is not None:
                out[k] = info.start_time.timestamp()
        return out

    async def reset(self) -> None:
        await self._delete_keys()

    async def producer(self, stack: AsyncExitStack) -> Callable[[], Awaitable[Any]]:
        return self.enqueue_one


# ---------------------------------------------------------------- the figures


@dataclass
class Results:
    """figure -> system -> one value per round."""

    values: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, figure: str, system: str, value: float) -> None:
        self.values.setdefault(figure, {}).setdefault(system, []).append(value)


async def drain(q: Queue, n: int, results: Results) -> None:
    worker = q.worker()
    try:
        warm = [await q.enqueue_one()]
        await wait_until(lambda: _done(q, warm, 1), worker, 120, f"{q.name} warm-up")
        keys = await q.enqueue_many(n)  # one bulk enqueue, committed: now n are queued
        started = time.perf_counter()
        total = len(warm) + n
        await wait_until(lambda: _done(q, warm + keys, total), worker, 900, f"{q.name} drain")
        elapsed = time.perf_counter() - started
        await q.verify(warm + keys)
        results.add("drain jobs/s", q.name, n / elapsed)
        print(f"  {q.name:14} drain   {n} in {elapsed:6.2f} s = {n / elapsed:7.0f} jobs/s")
        await pickup_on(q, worker, results)
    finally:
        await worker.stop()
        await q.reset()


async def _done(q: Queue, keys: list[Any], total: int) -> bool:
    return await q.done(keys) >= total


PICKUP_COUNT = 200


async def pickup_on(q: Queue, worker: Worker, results: Results) -> None:
    enqueued: dict[Any, float] = {}
    for _ in range(PICKUP_COUNT):
        at = time.time()
        key = await q.enqueue_one()
        enqueued[key] = at
        await asyncio.sleep(PICKUP_GAP)
    keys = list(enqueued)

    async def all_started() -> bool:
        return len(await q.start_times(keys)) == len(keys)

    await wait_until(all_started, worker, 60, f"{q.name} pickup")
    starts = await q.start_times(keys)
    lat = [(starts[k] - enqueued[k]) * 1000 for k in keys]
    p50, p95, p99 = pct(lat, 50), pct(lat, 95), pct(lat, 99)
    results.add("pickup p50 ms", q.name, p50)
    results.add("pickup p95 ms", q.name, p95)
    results.add("pickup p99 ms", q.name, p99)
    print(f"  {q.name:14} pickup  p50 {p50:6.1f} / p95 {p95:6.1f} / p99 {p99:6.1f} ms")


async def run_producers(
    name: str, call: Callable[[], Awaitable[Any]], n: int, producers: int, results: Results
) -> None:
    per = n // producers

    async def loop() -> None:
        for _ in range(per):
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(producers)))
    rate = per * producers / (time.perf_counter() - started)
    results.add(f"enqueue x{producers} jobs/s", name, rate)
    print(f"  {name:14} enqueue {producers:2} producer(s): {rate:7.0f} jobs/s")


async def enqueue_figure(q: Queue, n: int, results: Results) -> None:
    async with AsyncExitStack() as stack:
        call = await q.producer(stack)
        await call()  # connections opened, statements prepared
        for producers in (1, CONCURRENCY):
            await run_producers(q.name if q.name != "ours" else "ours (service)", call, n,
                                producers, results)  # fmt: skip
    await q.reset()


# ---------------------------------------------------------------- the HTTP side


class Api:
    """``uvicorn app.main:app`` (no in-process workers) on ours' database, an API key."""

    def __init__(self, ours: Ours, env: dict[str, str] | None = None) -> None:
        self.ours = ours
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = env or {}

    async def __aenter__(self) -> Api:
        ours = self.ours
        async with ours.sessions() as session, session.begin():
            user = await session.get(User, ours.owner.id)
            assert user is not None
            _, self.key = await create_api_key(session, user, f"bench-{uuid.uuid4().hex[:6]}")
        env = {"DATABASE_URL": ours.database_url, "UPLOAD_DIR": str(ours.upload_dir),
               "SECRET_KEY": ours.settings.secret_key, "WORKER_CONCURRENCY": "0",
               "RATE_LIMIT": "100000000/minute", "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json",
               **self.env}  # fmt: skip
        self.server = serve("app.main:app", self.port, env, ours.logdir)
        await healthy(self.base, self.server)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.stop()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def serve(app: str, port: int, env: dict[str, str], logdir: Path) -> Worker:
    """``app`` under uvicorn with the settings every HTTP figure shares."""
    command = [sys.executable, "-m", "uvicorn", app, "--port", str(port),
               "--log-level", "warning", "--no-access-log", "--ws-max-size",
               str(MAX_FRAME_BYTES), *UVICORN_OPTIONS]  # fmt: skip
    return Worker(app.split(":")[0], command, env, logdir)


async def healthy(base: str, server: Worker, path: str = "/health") -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(1200):
            server.check()
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(path)).status_code in (200, 405):
                    return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{base} did not start")


async def http_enqueue(api: Api, n: int, results: Results) -> None:
    body, content_type = multipart(30)
    headers = {**api.headers, "Content-Type": content_type}
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=api.base, limits=limits, timeout=60) as client:

        async def upload_one() -> Any:
            response = await client.post("/api/v1/tasks/upload", content=body, headers=headers)
            if response.status_code != 202:
                raise AssertionError(f"upload: {response.status_code} {response.text[:300]}")
            return response.json()["id"]

        await upload_one()
        for producers in (1, CONCURRENCY):
            await run_producers("ours (HTTP)", upload_one, n, producers, results)


WRK_SCRIPT = """
local f = io.open(os.getenv("WRK_BODY"), "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("WRK_CONTENT_TYPE")
local auth = os.getenv("WRK_AUTH")
if auth ~= nil and auth ~= "" then wrk.headers["Authorization"] = auth end
"""


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


async def load(
    url: str,
    headers: dict[str, str],
    body: bytes,
    content_type: str,
    seconds: float,
    logdir: Path,
) -> tuple[float, float, float, int]:
    """(req/s, p50 ms, p99 ms, non-2xx) of POSTs of ``body`` at 32 connections."""
    if shutil.which("wrk"):
        body_file = logdir / f"body-{uuid.uuid4().hex[:6]}"
        body_file.write_bytes(body)
        script = logdir / "upload.lua"
        script.write_text(WRK_SCRIPT)
        env = {**os.environ, "WRK_BODY": str(body_file), "WRK_CONTENT_TYPE": content_type,
               "WRK_AUTH": headers.get("Authorization", "")}  # fmt: skip
        command = ["wrk", "-t1", "-c32", f"-d{seconds:.0f}s", "--latency", "--timeout", "10s",
                   "-s", str(script), url]  # fmt: skip
        out = (await asyncio.to_thread(
            subprocess.run, command, env=env, capture_output=True, text=True, check=True
        )).stdout  # fmt: skip
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
        p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
        bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        errors = re.search(r"Socket errors:.*", out)
        if errors:
            print(f"    wrk: {errors.group(0)}")
        return rate, p50, p99, int(bad.group(1)) if bad else 0
    # no wrk: 32 asyncio clients in this process (the client's CPU counts against the server)
    latencies: list[float] = []
    bad = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def loop() -> None:
            nonlocal bad
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                r = await client.post(
                    url, content=body, headers={**headers, "Content-Type": content_type}
                )
                latencies.append((time.perf_counter() - t0) * 1000)
                bad += not 200 <= r.status_code < 300

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(32)))
        elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, pct(latencies, 50), pct(latencies, 99), bad


async def http_figure(ours: Ours, seconds: float, order: list[str], results: Results) -> None:
    body, content_type = multipart(2048)
    for which in order:
        if which == "bare":
            port = free_port()
            bare_dir = Path(tempfile.mkdtemp(prefix="bare-", dir=ours.logdir))
            server = serve("bench.bare_upload:app", port, {"BARE_UPLOAD_DIR": str(bare_dir)},
                           ours.logdir)  # fmt: skip
            try:
                await healthy(f"http://127.0.0.1:{port}", server, "/upload")
                rate, p50, p99, bad = await load(f"http://127.0.0.1:{port}/upload", {}, body,
                                                 content_type, seconds, ours.logdir)  # fmt: skip
            finally:
                await server.stop()
                shutil.rmtree(bare_dir, ignore_errors=True)
            name = "bare endpoint"
        else:
            async with Api(ours) as api:
                url = f"{api.base}/api/v1/tasks/upload"
                rate, p50, p99, bad = await load(
                    url, api.headers, body, content_type, seconds, ours.logdir
                )
            await ours.reset()
            name = "ours (HTTP)"
        if bad:
            raise AssertionError(f"{name}: {bad} responses were not 2xx")
        results.add("http 2KB req/s", name, rate)
        results.add("http 2KB p50 ms", name, p50)
        results.add("http 2KB p99 ms", name, p99)
        print(f"  {name:14} http    {rate:7.0f} req/s, p50 {p50:6.1f} ms, p99 {p99:6.1f} ms")


class Subscriber:
    """A WebSocket client subscribed to ``*``, noting when each task is seen completed."""

    def __init__(self) -> None:
        self.completed: dict[str, float] = {}
        self.seen: dict[str, asyncio.Event] = {}

    async def open(self, api: Api) -> None:
        url = f"ws://127.0.0.1:{api.port}/api/v1/ws/tasks/bench?token={api.key}"
        self.ws = await websockets.connect(url, max_size=2**20, ping_interval=None)
        await self.ws.send(json.dumps({"type": "subscribe", "task_id": "*"}))
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            now = time.perf_counter()
            message = json.loads(raw)
            if message.get("type") == "task_update" and message.get("status") == "completed":
                self.completed.setdefault(message["task_id"], now)
                self.seen.setdefault(message["task_id"], asyncio.Event()).set()

    async def wait(self, task_id: str, limit: float = 30) -> float:
        async with asyncio.timeout(limit):
            await self.seen.setdefault(task_id, asyncio.Event()).wait()
        return self.completed[task_id]

    async def close(self) -> None:
        self.reader.cancel()
        await self.ws.close()


async def e2e_figure(ours: Ours, n: int, results: Results) -> None:
    body, content_type = multipart(2048)
    headers_ct = {"Content-Type": content_type}
    async with Api(ours) as api, httpx.AsyncClient(base_url=api.base, timeout=30) as client:
        worker = ours.worker()
        subscriber = Subscriber()
        await subscriber.open(api)
        try:
            latencies = []
            for i in range(n + 1):
                started = time.perf_counter()
                r = await client.post("/api/v1/tasks/upload", content=body,
                                      headers={**api.headers, **headers_ct})  # fmt: skip
                if r.status_code != 202:
                    raise AssertionError(f"upload: {r.status_code} {r.text[:300]}")
                seen = await subscriber.wait(r.json()["id"], 120 if i == 0 else 30)
                if i:  # the first one waits for the worker to start
                    latencies.append((seen - started) * 1000)
                worker.check()
        finally:
            await subscriber.close()
            await worker.stop()
    await ours.reset()
    p50, p99 = pct(latencies, 50), pct(latencies, 99)
    results.add("e2e upload->completed p50 ms", "ours", p50)
    results.add("e2e upload->completed p99 ms", "ours", p99)
    print(f"  {'ours':14} e2e     p50 {p50:6.1f} / p99 {p99:6.1f} ms over {n}")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def rss_figure(ours: Ours, small: int, large: int, results: Results) -> None:
    body, content_type = multipart(30)
    headers_ct = {"Content-Type": content_type}
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with (
        Api(ours) as api,
        httpx.AsyncClient(base_url=api.base, timeout=60, limits=limits) as client,
    ):
        worker = ours.worker()
        subscriber = Subscriber()
        await subscriber.open(api)
        uploaded = 0

        async def upload_until(total: int) -> None:
            nonlocal uploaded

            async def loop() -> None:
                nonlocal uploaded
                while uploaded < total:
                    uploaded += 1
                    r = await client.post("/api/v1/tasks/upload", content=body,
                                          headers={**api.headers, **headers_ct})  # fmt: skip
                    if r.status_code != 202:
                        raise AssertionError(f"upload: {r.status_code} {r.text[:300]}")

            await asyncio.gather(*(loop() for _ in range(CONCURRENCY)))

            async def all_seen() -> bool:
                return len(subscriber.completed) >= total

            await wait_until(all_seen, worker, 1800, "rss uploads")
            await asyncio.sleep(1.0)

        try:
            await upload_until(small)
            before = rss_kib(api.server.process.pid)
            await upload_until(large)
            after = rss_kib(api.server.process.pid)
        finally:
            await subscriber.close()
            await worker.stop()
    await ours.reset()
    results.add(f"API RSS MiB after {small} tasks", "ours", before / 1024)
    results.add(f"API RSS MiB after {large} tasks", "ours", after / 1024)
    results.add("API RSS growth %", "ours", (after - before) / before * 100)
    growth = (after - before) / before * 100
    print(f"  {'ours':14} rss     {before / 1024:.1f} MiB after {small}, "
          f"{after / 1024:.1f} MiB after {large} ({growth:+.1f} %)")  # fmt: skip


async def sqlite_figure(logdir: Path, n: int, pickups: int, results: Results) -> None:
    """Ours on SQLite: the API with its in-process pool (one process), drain then pickup."""
    folder = Path(tempfile.mkdtemp(prefix="sqlite-", dir=logdir))
    database_url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    await migrate(database_url)
    settings = bench_settings(database_url, folder / "uploads")
    owner = await create_owner(settings)
    engine = create_engine_for(settings)
    sessions = create_session_factory(engine, EventBus())
    try:
        ids = await _sqlite_fill(sessions, owner.id, n)
        port = free_port()
        async with sessions() as session, session.begin():
            user = await session.get(User, owner.id)
            assert user is not None
            _, key = await create_api_key(session, user, "bench")
        env = {"DATABASE_URL": database_url, "UPLOAD_DIR": str(folder / "uploads"),
               "SECRET_KEY": settings.secret_key, "WORKER_CONCURRENCY": str(CONCURRENCY),
               "RATE_LIMIT": "100000000/minute", "LOG_LEVEL": "WARNING",
               "LOG_FORMAT": "json"}  # fmt: skip
        server = serve("app.main:app", port, env, logdir)
        try:
            await healthy(f"http://127.0.0.1:{port}", server)

            async def drained() -> bool:
                async with sessions() as session:
                    query = (
                        select(func.count())
                        .select_from(Task)
                        .where(Task.status == TaskStatus.COMPLETED)
                    )
                    return int((await session.execute(query)).scalar_one()) >= n

            await wait_until(drained, server, 900, "sqlite drain")
            async with sessions() as session:
                first, last = (await session.execute(
                    select(func.min(Task.started_at), func.max(Task.completed_at))
                    .where(Task.id.in_(ids))
                )).one()  # fmt: skip
            rate = n / (last - first).total_seconds()
            results.add("drain jobs/s", "ours (SQLite)", rate)
            print(f"  {'ours (SQLite)':14} drain   {n} at {rate:7.0f} jobs/s")

            body, content_type = multipart(30)
            headers = {"Authorization": f"Bearer {key}", "Content-Type": content_type}
            uploaded = []
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                for _ in range(pickups):
                    r = await client.post("/api/v1/tasks/upload", content=body, headers=headers)
                    if r.status_code != 202:
                        raise AssertionError(f"upload: {r.status_code} {r.text[:300]}")
                    uploaded.append(r.json()["id"])
                    await asyncio.sleep(PICKUP_GAP)

            async def started() -> bool:
                async with sessions() as session:
                    query = (
                        select(func.count())
                        .select_from(Task)
                        .where(Task.id.in_(uploaded), Task.started_at.is_not(None))
                    )
                    return int((await session.execute(query)).scalar_one()) == len(uploaded)

            await wait_until(started, server, 60, "sqlite pickup")
            async with sessions() as session:
                rows = (await session.execute(
                    select(Task.uploaded_at, Task.started_at).where(Task.id.in_(uploaded))
                )).all()  # fmt: skip
            lat = [(s - u).total_seconds() * 1000 for u, s in rows]
            for p in (50, 95, 99):
                results.add(f"pickup p{p} ms", "ours (SQLite)", pct(lat, p))
            print(f"  {'ours (SQLite)':14} pickup  p50 {pct(lat, 50):6.1f} / p95 "
                  f"{pct(lat, 95):6.1f} / p99 {pct(lat, 99):6.1f} ms")  # fmt: skip
        finally:
            await server.stop()
    finally:
        await engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)


async def _sqlite_fill(sessions: async_sessionmaker[AsyncSession], owner: str, n: int) -> list[str]:
    rows = [task_row(owner) for _ in range(n)]
    now = utcnow()
    async with sessions() as session, session.begin():
        await session.execute(insert(Task), rows)
        await session.execute(
            insert(TaskQueue),
            [{"task_id": r["id"], "priority": 5, "enqueued_at": now, "available_at": now,
              "attempt": 0} for r in rows],
        )  # fmt: skip
    return [str(r["id"]) for r in rows]


# ---------------------------------------------------------------- the table


def summary(results: Results) -> str:
    """The table: median (min-max) over the rounds, one row per figure and variant of ours,
    then ours / each other system (for a latency, below 1 is better)."""
    others: list[str] = []
    for per in results.values.values():
        others.extend(s for s in per if not s.startswith("ours") and s not in others)
    lines = [
        "| figure | ours | " + " | ".join(others) + " | ours / other |",
        "|---|---|" + "---|" * len(others) + "---|",
    ]
    for figure, per in results.values.items():
        variants = [s for s in per if s.startswith("ours")] or [""]
        for variant in variants:
            label = figure if variant in ("ours", "") else f"{figure}, {variant[6:-1]}"
            cells = [_cell(per.get(variant, []))] + [_cell(per.get(o, [])) for o in others]
            ours = statistics.median(per[variant]) if variant else None
            ratios = [
                f"{ours / statistics.median(per[o]):.2f}x {o}"
                for o in others
                if ours is not None and per.get(o) and statistics.median(per[o])
            ]
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {', '.join(ratios)} |")
    return "\n".join(lines)


def _cell(values: list[float]) -> str:
    if not values:
        return ""
    spread = f" ({_num(min(values))}\u2013{_num(max(values))})" if len(values) > 1 else ""
    return f"{_num(statistics.median(values))}{spread}"


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def versions() -> str:
    names = ("fastapi", "uvicorn", "uvloop", "httptools", "sqlalchemy", "asyncpg", "pgqueuer",
             "procrastinate", "psycopg", "arq", "redis")  # fmt: skip
    found = []
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found.append(f"{name} {metadata.version(name)}")
    pg = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "SHOW server_version"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    redis = subprocess.run(["redis-cli", "-h", "127.0.0.1", "INFO", "server"],
                           capture_output=True, text=True).stdout  # fmt: skip
    redis_version = re.search(r"redis_version:(\S+)", redis)
    wrk = "wrk" if shutil.which("wrk") else "asyncio httpx client (no wrk)"
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())  # fmt: skip
    load = os.getloadavg()
    return (f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, "
            f"PostgreSQL {pg or '?'}, Redis {redis_version.group(1) if redis_version else '?'}, "
            f"load client {wrk}; {', '.join(found)}; load average at the end "
            f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")  # fmt: skip


# ---------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> Results:
    global PICKUP_COUNT
    PICKUP_COUNT = args.pickup
    only = set(args.only.split(",")) if args.only else set(FIGURES)
    unknown = only - set(FIGURES)
    if unknown:
        raise SystemExit(f"unknown figure(s): {', '.join(sorted(unknown))}")
    results = Results()
    logdir = Path(tempfile.mkdtemp(prefix="ntm-peers-"))
    queues: list[Queue] = [Ours(), PgQueuerQueue(), ProcrastinateQueue(), ArqQueue()]
    queues = [q for q in queues if q.name == "ours" or q.name in args.peers.split(",")]
    try:
        async with AsyncExitStack() as stack:
            for q in queues:
                q.logdir = logdir
                await q.open(stack)
            ours = queues[0]
            assert isinstance(ours, Ours)
            for r in range(args.rounds):
                shift = r % len(queues)
                order = queues[shift:] + queues[:shift]
                print(f"round {r + 1}/{args.rounds}: {', '.join(q.name for q in order)}",
                      flush=True)  # fmt: skip
                if only & {"drain", "pickup"}:
                    for q in order:
                        await drain(q, args.drain, results)
                if "enqueue" in only:
                    for q in order:
                        await enqueue_figure(q, args.enqueue, results)
                        if q is ours:
                            async with Api(ours) as api:
                                await http_enqueue(api, args.enqueue, results)
                            await ours.reset()
                if "http" in only:
                    await http_figure(ours, args.http_seconds,
                                      ["bare", "ours"] if r % 2 == 0 else ["ours", "bare"],
                                      results)  # fmt: skip
                if "e2e" in only:
                    await e2e_figure(ours, args.e2e, results)
                if "sqlite" in only:
                    await sqlite_figure(logdir, args.drain, args.pickup, results)
            if "rss" in only:
                await rss_figure(ours, args.rss_small, args.rss_large, results)
    finally:
        await asyncio.to_thread(shutil.rmtree, logdir, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small counts, 1 round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--drain", type=int, default=5000, help="jobs queued for the drain")
    parser.add_argument("--pickup", type=int, default=200, help="jobs enqueued 20 ms apart")
    parser.add_argument("--enqueue", type=int, default=1000, help="jobs per enqueue run")
    parser.add_argument("--http-seconds", type=float, default=10.0)
    parser.add_argument("--e2e", type=int, default=100, help="uploads seen completed")
    parser.add_argument("--rss-small", type=int, default=100)
    parser.add_argument("--rss-large", type=int, default=10_000)
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--only", default="", help=f"comma-separated: {','.join(FIGURES)}")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.drain, args.pickup, args.enqueue = 1, 200, 20, 50
        args.http_seconds, args.e2e, args.rss_small, args.rss_large = 2.0, 10, 20, 100
    started = time.perf_counter()
    results = asyncio.run(run(args))
    print()
    print(summary(results))
    print()
    print(f"machine: {versions()}")
    print(f"took {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results.values, indent=1))


if __name__ == "__main__":
    main()
