"""``python -m app.worker``: the worker pool alone, without HTTP.

Runs ``WORKER_CONCURRENCY`` workers (at least one) against ``DATABASE_URL``, and the
webhook delivery loop (``app.webhooks.delivery``).
SIGTERM or SIGINT: stop claiming, let running attempts finish within
``SHUTDOWN_GRACE_SECONDS``, hand the rest back to the queue, exit 0.
"""

from __future__ import annotations

import asyncio
import signal
from contextlib import AsyncExitStack

from pydantic import ValidationError

from app.config import Settings, describe_settings_error, get_settings
from app.log import configure_logging, get_logger
from app.queue.pool import WorkerPool
from app.runtime import open_runtime
from app.webhooks.delivery import DeliveryLoop

log = get_logger("app.worker")


async def run(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with AsyncExitStack() as stack:
        runtime = open_runtime(settings, stack, for_workers=True)
        await runtime.start_listener(stack)
        concurrency = max(1, settings.worker_concurrency)
        pool = WorkerPool(settings, runtime.sessions, runtime.bus, concurrency=concurrency)
        await pool.start()
        stack.push_async_callback(pool.stop)
        deliveries = DeliveryLoop(settings, runtime.sessions, runtime.bus)
        await deliveries.start()
        stack.push_async_callback(deliveries.stop)
        print(f"worker {pool.worker_id} ready", flush=True)
        await stop.wait()
        log.info("worker_stopping")


def main() -> None:
    try:
        settings = get_settings()
    except ValidationError as exc:
        raise SystemExit(describe_settings_error(exc)) from None
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
