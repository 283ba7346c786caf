"""The worker pool: ``concurrency`` attempts at a time, woken on enqueue.

One loop claims work whenever a slot is free and something was enqueued
(in-process signal, NOTIFY from other processes, or a slow safety poll);
each claimed task runs as its own asyncio task. A heartbeat loop renews the
leases of running attempts and stops those that were fenced out; a
maintenance loop reclaims expired leases, deletes expired files and dead
workers. ``stop()`` stops claiming, waits ``SHUTDOWN_GRACE_SECONDS`` for
running attempts, then hands the rest back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.events.publish import TaskEvent, add_sink, remove_sink
from app.log import get_logger
from app.metrics import TASK_DURATION
from app.models import TaskStatus
from app.models.base import new_id
from app.processors import registry
from app.processors.base import AttemptCancelled, ProcessorError
from app.queue import attempts, maintenance
from app.queue.attempts import Claimed
from app.queue.enqueue import register_waiter, unregister_waiter
from app.queue.runner import ProcessorRunner
from app.services import storage

log = get_logger(__name__)
CLAIM_COALESCE_SECONDS = 0.002
"""How long a busy pool waits before claiming, to fill several free slots at once."""
PROGRESS_INTERVAL = 0.25  # at most four progress writes per second per task


class _Attempt:
    """A running attempt and its throttled progress writer."""

    def __init__(self, claimed: Claimed) -> None:
        self.claimed = claimed
        self.task: asyncio.Task[None] | None = None
        self.key = f"{claimed.task_id}:{claimed.attempt}"
        self.latest: tuple[int, str] = (0, "starting")
        self.written: tuple[int, str] = (0, "starting")
        self.changed = asyncio.Event()
        self.fenced_out = False


class WorkerPool:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        *,
        concurrency: int | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.concurrency = concurrency or settings.worker_concurrency
        self.worker_id = new_id()
        self.running: dict[str, _Attempt] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._runner = ProcessorRunner(self.concurrency, settings.processors)
        registry.configure(settings.processors)

    # lifecycle
    async def start(self) -> None:
        await maintenance.register_worker(self.sessions, self.worker_id, self.concurrency)
        register_waiter(self._wake)
        add_sink(self._on_event)
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="claim"),
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
            asyncio.create_task(self._maintenance_loop(), name="maintenance"),
        ]
        log.info("worker_pool_started", worker_id=self.worker_id, concurrency=self.concurrency)

    async def stop(self, grace: float | None = None) -> None:
        """Stop claiming; give running attempts ``grace`` seconds, then hand them back."""
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        self._stopping.set()
        self._wake.set()
        running = [a.task for a in self.running.values() if a.task is not None]
        if running:
            log.info("worker_pool_draining", running=len(running), grace=grace)
            await asyncio.wait(running, timeout=grace)
        for attempt in list(self.running.values()):
            if attempt.task is not None and not attempt.task.done():
                attempt.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await attempt.task
                await attempts.hand_back(self.sessions, attempt.claimed)
                log.info("attempt_handed_back", task_id=attempt.claimed.task_id)
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        remove_sink(self._on_event)
        unregister_waiter(self._wake)
        self._runner.close()
        await maintenance.unregister_worker(self.sessions, self.worker_id)
        log.info("worker_pool_stopped", worker_id=self.worker_id)

    async def run_until_idle(self) -> None:
        """Claim and run until nothing is claimable and nothing runs (tests, benchmarks).

        Callers bound it with ``asyncio.timeout``.
        """
        while True:
            await self._claim_free_slots()
            if not self.running:
                if not await self._claim_free_slots():
                    return
                continue
            await asyncio.wait(
                [a.task for a in self.running.values() if a.task is not None],
                return_when=asyncio.FIRST_COMPLETED,
            )

    # loops
    async def _claim_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            if 0 < len(self.running) < self.concurrency:
                # busy: let the attempts finishing right now free their slots too,
                # so one claim takes several tasks (an idle pool claims at once)
                await asyncio.sleep(CLAIM_COALESCE_SECONDS)
            try:
                await self._claim_free_slots()
            except Exception:
                log.exception("claim_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.worker_poll_seconds)

    async def _claim_free_slots(self) -> int:
        free = self.concurrency - len(self.running)
        if free <= 0 or self._stopping.is_set():
            return 0
        claimed = await attempts.claim(self.sessions, self.settings, self.worker_id, free)
        for item in claimed:
            attempt = _Attempt(item)
            self.running[item.task_id] = attempt
            attempt.task = asyncio.create_task(self._run(attempt), name=f"attempt-{attempt.key}")
        return len(claimed)

    async def _heartbeat_loop(self) -> None:
        interval = max(self.settings.task_lease_seconds / 3, 0.1)
        while True:
            await asyncio.sleep(interval)
            try:
                lost = await maintenance.heartbeat(
                    self.sessions,
                    self.settings,
                    self.worker_id,
                    self.concurrency,
                    {tid: a.claimed.attempt for tid, a in self.running.items()},
                )
            except Exception:
                log.exception("heartbeat_failed")
                continue
            for task_id in lost:
                self._fence_out(task_id, "lease lost")

    async def _maintenance_loop(self) -> None:
        interval = max(self.settings.task_lease_seconds / 2, 0.2)
        while True:
            try:
                await maintenance.run_maintenance(self.sessions, self.settings)
            except Exception:
                log.exception("maintenance_failed")
            await asyncio.sleep(interval)

    # events from anywhere: a cancelled task stops at once
    def _on_event(self, event: TaskEvent) -> None:
        attempt = self.running.get(event.task_id)
        if attempt is not None and event.status == TaskStatus.CANCELLED:
            self._fence_out(event.task_id, "cancelled")
        elif event.status == TaskStatus.PENDING and len(self.running) < self.concurrency:
            self._wake.set()

    def _fence_out(self, task_id: str, reason: str) -> None:
        attempt = self.running.get(task_id)
        if attempt is None or attempt.fenced_out:
            return
        attempt.fenced_out = True
        self._runner.stop(attempt.key)
        if attempt.task is not None:
            attempt.task.cancel()
        log.info("attempt_stopped", task_id=task_id, attempt=attempt.claimed.attempt, reason=reason)

    # one attempt
    async def _run(self, attempt: _Attempt) -> None:
        claimed = attempt.claimed
        attempt_dir = (
            storage.task_dir(self.settings.upload_dir, claimed.task_id)
            / f"attempt-{claimed.attempt}.tmp"
        )
        started = time.monotonic()
        outcome = "failed"
        with structlog.contextvars.bound_contextvars(
            task_id=claimed.task_id, attempt=claimed.attempt, worker_id=self.worker_id
        ):
            writer = asyncio.create_task(self._write_progress(attempt))
            try:
                outcome = await self._execute(attempt, attempt_dir)
            except asyncio.CancelledError:
                outcome = "stopped"
                if not attempt.fenced_out:
                    raise  # the pool is stopping: stop() hands the task back
            finally:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
                await storage.remove(attempt_dir)
                self._runner.forget(attempt.key)
                self.running.pop(claimed.task_id, None)
                TASK_DURATION.labels(claimed.processor, outcome).observe(time.monotonic() - started)
                self._wake.set()

    async def _execute(self, attempt: _Attempt, attempt_dir: Path) -> str:
        claimed = attempt.claimed
        await storage.empty_dir(attempt_dir)  # one thread hop: the fast path is hot
        input_path = storage.absolute(self.settings.upload_dir, claimed.upload_path)

        def on_progress(percent: int, stage: str) -> None:
            percent = max(0, min(100, percent))
            if percent >= attempt.latest[0]:
                attempt.latest = (percent, stage)
                attempt.changed.set()

        try:
            output = await asyncio.wait_for(
                self._runner.run(
                    attempt.key, claimed.processor, input_path, attempt_dir, on_progress
                ),
                timeout=self.settings.task_timeout_seconds,
            )
        except TimeoutError:
            message = f"The attempt took longer than {self.settings.task_timeout_seconds:g} s."
            return await self._failed(claimed, message, retryable=True)
        except AttemptCancelled:
            raise asyncio.CancelledError from None
        except ProcessorError as exc:
            return await self._failed(claimed, exc.message, retryable=exc.retryable)
        except registry.UnknownProcessor:
            message = f"No processor named {claimed.processor!r} is installed on this worker."
            return await self._failed(claimed, message, retryable=True)
        except Exception as exc:
            log.exception("processor_crashed")
            message = f"The processor stopped with an unexpected error ({type(exc).__name__})."
            return await self._failed(claimed, message, retryable=True)
        await self._flush_progress(attempt)
        if await attempts.complete(self.sessions, self.settings, claimed, output, attempt_dir):
            log.info("attempt_completed")
            return "completed"
        log.info("attempt_fenced_out")
        return "fenced_out"

    async def _failed(self, claimed: Claimed, message: str, *, retryable: bool) -> str:
        status = await attempts.fail(
            self.sessions, self.settings, claimed, message, retryable=retryable
        )
        log.warning("attempt_failed", error=message[:500], retryable=retryable, status=status)
        return "retried" if status == TaskStatus.PENDING else "failed"

    async def _write_progress(self, attempt: _Attempt) -> None:
        """Write the latest progress at most every PROGRESS_INTERVAL; stop the attempt if fenced."""
        while True:
            await attempt.changed.wait()
            attempt.changed.clear()
            await self._flush_progress(attempt)
            await asyncio.sleep(PROGRESS_INTERVAL)

    async def _flush_progress(self, attempt: _Attempt) -> None:
        latest = attempt.latest
        if latest == attempt.written or latest[0] >= 100:
            return  # 100 is written with the completion itself
        attempt.written = latest
        owned = await attempts.report_progress(self.sessions, attempt.claimed, *latest)
        if not owned:
            self._fence_out(attempt.claimed.task_id, "fenced out")
