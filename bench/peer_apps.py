"""The peers' worker-side code: one no-op job each, as their documentation sets it up.

Each peer's worker runs as its own process, started by ``bench/peers.py`` with
the peer's own command line (cwd = the project root, so ``bench.peer_apps`` is
importable):

- PgQueuer: ``python -m bench.peer_apps pgqueuer`` (``PGQ_BENCH_DSN``): what
  ``pgq run bench.peer_apps:pgqueuer_factory --batch-size 5 --max-concurrent-tasks 10``
  runs (its supervisor with the factory), without the CLI, whose log set-up
  fails under typer 0.29 (``'str' object has no attribute 'name'``); asyncpg
  driver, entrypoint ``noop``;
- Procrastinate: ``python -m procrastinate --app bench.peer_apps.procrastinate_app worker``
  (``PROCRASTINATE_BENCH_DSN``), psycopg connector, task ``noop``;
- arq: ``python -m arq bench.peer_apps.ArqWorker`` (``ARQ_BENCH_QUEUE``), Redis at
  127.0.0.1:6379, function ``noop``.

Concurrency 10: ``max_concurrent_tasks`` (PgQueuer; at least twice its batch
size, hence batches of 5), ``--concurrency`` (Procrastinate), ``max_jobs`` (arq).
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, ClassVar

import asyncpg
import procrastinate
from arq.connections import RedisSettings
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job

ARQ_REDIS = RedisSettings(host="127.0.0.1", port=6379)


@asynccontextmanager
async def pgqueuer_factory() -> AsyncIterator[PgQueuer]:
    """PgQueuer's documented factory shape: a connection, a driver, entrypoints."""
    connection = await asyncpg.connect(os.environ["PGQ_BENCH_DSN"])
    pgq = PgQueuer(AsyncpgDriver(connection))

    @pgq.entrypoint("noop")
    async def noop(job: Job) -> None:
        return None

    try:
        yield pgq
    finally:
        await connection.close()


procrastinate_app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(
        conninfo=os.environ.get("PROCRASTINATE_BENCH_DSN", "postgresql:///procrastinate")
    )
)


@procrastinate_app.task(name="noop")
async def procrastinate_noop() -> None:
    return None


async def arq_noop(ctx: dict[str, Any]) -> None:
    return None


class ArqWorker:
    """arq's ``WorkerSettings``: the functions, the queue, ``max_jobs``."""

    functions: ClassVar[list[Any]] = [arq_noop]
    redis_settings = ARQ_REDIS
    queue_name = os.environ.get("ARQ_BENCH_QUEUE", "arq:queue")
    max_jobs = 10


def main() -> None:
    if sys.argv[1:] != ["pgqueuer"]:
        raise SystemExit("usage: python -m bench.peer_apps pgqueuer")
    from pgqueuer.adapters.cli import supervisor
    from pgqueuer.adapters.cli.cli import asyncio_run

    asyncio_run(
        supervisor.run(
            pgqueuer_factory,
            batch_size=5,
            max_concurrent_tasks=10,
            dequeue_timeout=timedelta(seconds=30),
        )
    )


if __name__ == "__main__":
    main()
