"""The worker pool: ``concurrency`` attempts at a time, woken on enqueue.

One loop claims work whenever a slot is free and something was enqueued
(in-process signal, NOTIFY from other processes, or a slow safety poll);
each claimed task runs as its own asyncio task. A heartbeat loop renews the
leases of running attempts and stops those that were fenced out; a
maintenance loop reclaims expired leases, deletes expired files and dead
workers. ``stop()`` stops claiming, waits ``SHUTDOWN_GRACE_SECONDS`` for
running attempts, then hands the rest back to the queue.

An attempt is *running* while its processor runs, then *finishing* while it
writes its outcome (complete, fail, retry) with a fenced UPDATE, which alone
decides whether it still owned the task. Only a running attempt can be
stopped from outside (cancel, lost lease, shutdown); a finishing one is never
interrupted by the heartbeat. Its slot is released by a done-callback of its
asyncio task, which runs however the task ended, so no cancellation can skip it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Coroutine
from functools import partial
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.events.bus import EventBus, TaskPending
from app.events.publish import TaskEvent
from app.log import get_logger
from app.metrics import TASK_DURATION
from app.models import TaskStatus
from app.models.base import new_id
from app.processors import registry
from app.processors.base import AttemptCancelled, ProcessorError, ProcessorOutput, writes_files
from app.queue import attempts, maintenance
from app.queue.attempts import Claimed
from app.queue.runner import ProcessorRunner, start_forkserver
from app.services import storage

log = get_logger(__name__)
CLAIM_COALESCE_SECONDS = 0.002
"""How long a busy pool waits before claiming, to fill several free slots at once."""
PROGRESS_INTERVAL = 0.25  # at most four progress writes per second per task
COMPLETION_BATCH = 100
"""At most this many completions are written in one transaction."""
FINISH_WAIT_SECONDS = 5.0
"""On shutdown, how long an attempt already writing its outcome may take beyond the grace."""

_live_pools: set[WorkerPool] = set()
Finished = tuple[Claimed, ProcessorOutput, Path]
"""An attempt whose processor returned: what it claimed, produced, and where."""


def _retrieve(future: asyncio.Future[bool]) -> None:
    """Mark a completion's error as seen: its attempt may have stopped waiting for it."""
    if not future.cancelled():
        future.exception()


def _seen(task: asyncio.Task[bool]) -> None:
    """Log a shielded progress write that failed after its attempt stopped waiting."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.warning("progress_write_failed", error=type(error).__name__)


def _needs_directory(claimed: Claimed) -> bool:
    """Whether an attempt needs its directory: unless its processor writes no files
    and its upload is read where it is stored (one in a bucket is copied there)."""
    if storage.Stored.of(claimed.upload_path).backend != storage.LOCAL:
        return True
    try:
        return writes_files(registry.get_processor(claimed.processor))
    except Exception:  # unknown, or it will not load: the attempt reports it as before
        return True


def live_pools() -> list[WorkerPool]:
    """The worker pools started in this process and not yet stopped."""
    return list(_live_pools)


class AttemptState(enum.Enum):
    RUNNING = "running"  # the processor runs; cancel, lease loss and shutdown stop it
    FINISHING = "finishing"  # writing its outcome; the fenced UPDATE decides
    DONE = "done"


FINISHING_SLOTS = 1
"""Per slot, how many more attempts may be writing their outcome: a slot whose processor
has returned takes the next task while its outcome is written (in the completion batch),
so claiming and completing overlap; at most ``concurrency * (1 + FINISHING_SLOTS)``
attempts are held at once, and never more than ``concurrency`` processors run."""


class _Attempt:
    """A claimed attempt, its state and its throttled progress writer.

    ``directory`` is where its processor writes; with ``has_directory`` False (a
    processor that writes no files, reading a local upload) it is never created,
    so there is nothing to empty beforehand nor to remove afterwards.
    """

    def __init__(self, claimed: Claimed, directory: Path, *, has_directory: bool = True) -> None:
        self.claimed = claimed
        self.directory = directory
        self.has_directory = has_directory
        self.task: asyncio.Task[None] | None = None
        self.key = f"{claimed.task_id}:{claimed.attempt}"
        self.state = AttemptState.RUNNING
        self.latest: tuple[int, str] = (0, "starting")
        self.written: tuple[int, str] = (0, "starting")
        self.changed = asyncio.Event()
        self.writer: asyncio.Task[None] | None = None
        """Its progress writer, started by the first progress below 100 (never for a
        processor that only reports its end: 100 is written with the completion)."""
        self.fenced_out = False
        self.cleaned = not has_directory
        self.outcome = "failed"
        self.started = time.monotonic()


class WorkerPool:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
        *,
        concurrency: int | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.bus = bus
        self.concurrency = concurrency or settings.worker_concurrency
        self.worker_id = new_id()
        self.running: dict[str, _Attempt] = {}  # by attempt key, "task_id:attempt"
        self._by_task: dict[str, _Attempt] = {}  # the newest attempt of each task
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._leftovers = False  # an attempt directory could not be removed: sweep again
        self._finished: list[tuple[Finished, asyncio.Future[bool]]] = []  # to complete
        self._completion_writer: asyncio.Task[Any] | None = None
        self.last_claim_at = self._last_release_at = time.monotonic()
        self._runner = ProcessorRunner(
            settings.processors, memory_limit_mb=settings.processor_memory_limit_mb
        )
        registry.configure(settings.processors)

    # lifecycle
    async def start(self) -> None:
        await maintenance.register_worker(self.sessions, self.worker_id, self.concurrency)
        start_forkserver()  # in the background: the first CPU-bound attempt need not wait
        self.bus.subscribe(TaskPending, self._on_pending)
        self.bus.subscribe(TaskEvent, self._on_event)
        self._leftovers = True  # directories of attempts that died with an earlier process
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="claim"),
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
            asyncio.create_task(self._maintenance_loop(), name="maintenance"),
        ]
        self.last_claim_at = time.monotonic()
        _live_pools.add(self)
        log.info("worker_pool_started", worker_id=self.worker_id, concurrency=self.concurrency)

    async def stop(self, grace: float | None = None) -> None:
        """Stop claiming; give running attempts ``grace`` seconds, then hand them back."""
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        self._stopping.set()
        self._wake.set()
        _live_pools.discard(self)
        await self._end_claiming()
        running = self._tasks()
        if running:
            log.info("worker_pool_draining", running=len(running), grace=grace)
            await asyncio.wait(running, timeout=grace)
        finishing = self._tasks(AttemptState.FINISHING)
        if finishing:  # already writing their outcome: let them, briefly
            await asyncio.wait(finishing, timeout=FINISH_WAIT_SECONDS)
        # what is left stops now, its processes first: nothing below may keep them alive
        left = [a for a in self.running.values() if a.task is not None and not a.task.done()]
        for attempt in left:
            self._runner.stop(attempt.key)
            assert attempt.task is not None
            attempt.task.cancel()
        self._runner.close()
        if left:
            await asyncio.wait(
                [a.task for a in left if a.task is not None], timeout=FINISH_WAIT_SECONDS
            )
        for attempt in left:
            try:
                await attempts.hand_back(self.sessions, attempt.claimed)
            except Exception as exc:  # the database is away: its lease will run out instead
                log.warning(
                    "hand_back_failed", task_id=attempt.claimed.task_id, error=type(exc).__name__
                )
            else:
                log.info("attempt_handed_back", task_id=attempt.claimed.task_id)
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        self.bus.unsubscribe(TaskEvent, self._on_event)
        self.bus.unsubscribe(TaskPending, self._on_pending)
        if self._background:  # directory clean-ups of the last attempts, the start-up sweep
            await asyncio.wait(list(self._background), timeout=FINISH_WAIT_SECONDS)
        try:
            await maintenance.unregister_worker(self.sessions, self.worker_id)
        except Exception as exc:  # maintenance forgets dead workers anyway
            log.warning("unregister_worker_failed", error=type(exc).__name__)
        log.info("worker_pool_stopped", worker_id=self.worker_id)

    async def _end_claiming(self) -> None:
        """Let the claim loop leave on its own (it sees ``_stopping``), so that a claim
        already committed registers its attempts, which are then handed back like any
        other; cancelling it there would strand them in ``processing`` until their
        lease ran out. A claim that hangs (the database is away) is cancelled after
        ``FINISH_WAIT_SECONDS``: its transaction rolls back, or its leases run out."""
        claim_loop = next((loop for loop in self._loops if loop.get_name() == "claim"), None)
        if claim_loop is None or claim_loop.done():
            return
        await asyncio.wait([claim_loop], timeout=FINISH_WAIT_SECONDS)
        if not claim_loop.done():
            claim_loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await claim_loop

    def _tasks(self, state: AttemptState | None = None) -> list[asyncio.Task[None]]:
        return [
            a.task
            for a in self.running.values()
            if a.task is not None and not a.task.done() and (state is None or a.state is state)
        ]

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _sweep(self) -> bool:
        """Remove stale attempt directories; False when the sweep could not finish."""
        try:
            _, left = await maintenance.sweep_attempt_dirs(self.sessions, self.settings)
        except OSError as exc:  # the storage still refuses: the next tick tries again
            log.warning("attempt_dir_sweep_failed", error=storage.describe_write_error(exc))
            return False
        except Exception:
            log.exception("attempt_dir_sweep_failed")
            return False
        return left == 0

    # health
    def stall(self, due_for: float) -> str | None:
        """Why this pool looks stalled, or None.

        Stalled: it has a free slot, and neither claimed nor finished anything for
        longer than ``WORKER_STALL_SECONDS``, while claimable work has been due
        (``due_for`` seconds) that long too. Free slots are counted from the
        attempts' asyncio tasks that really run, not from the pool's bookkeeping,
        so a slot that leaked out of it counts as free (and the pool as stalled).
        """
        threshold = self.settings.worker_stall_seconds
        free = self.concurrency - len(self._tasks(AttemptState.RUNNING))
        if self._stopping.is_set() or free <= 0:
            return None
        idle = time.monotonic() - max(self.last_claim_at, self._last_release_at)
        if idle < threshold or due_for < threshold:
            return None
        return (
            f"worker pool {self.worker_id} has {free} of {self.concurrency} slots free and "
            f"work has been due for {due_for:.0f} s, but it has neither claimed nor finished "
            f"an attempt for {idle:.0f} s"
        )

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
            await asyncio.wait(self._tasks(), return_when=asyncio.FIRST_COMPLETED)
            await asyncio.sleep(0)  # let the done-callbacks release the slots

    # loops
    async def _claim_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            if 0 < self._busy() < self.concurrency:
                # busy: let the attempts finishing right now free their slots too,
                # so one claim takes several tasks (an idle pool claims at once)
                await asyncio.sleep(CLAIM_COALESCE_SECONDS)
            try:
                await self._claim_free_slots()
            except Exception:
                log.exception("claim_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.worker_poll_seconds)

    def _busy(self) -> int:
        """Attempts whose processor still runs (those writing their outcome hold no slot)."""
        return sum(1 for a in self.running.values() if a.state is AttemptState.RUNNING)

    def free_slots(self) -> int:
        """Slots that may take a task now: free of a running processor, and within the
        bound on attempts still writing their outcome (see FINISHING_SLOTS)."""
        held = self.concurrency * (1 + FINISHING_SLOTS) - len(self.running)
        return min(self.concurrency - self._busy(), held)

    def _finishing(self, attempt: _Attempt) -> None:
        """The attempt's processor is done: its slot may take the next task."""
        attempt.state = AttemptState.FINISHING
        self._wake.set()

    async def _claim_free_slots(self) -> int:
        free = self.free_slots()
        if free <= 0 or self._stopping.is_set():
            return 0
        claimed = await attempts.claim(self.sessions, self.settings, self.worker_id, free)
        if claimed:
            self.last_claim_at = time.monotonic()
        for item in claimed:
            stale = self._by_task.get(item.task_id)
            if stale is not None:  # this worker lost it (lease) and claimed it again
                self._fence_out(stale, "claimed again")
            directory = storage.attempt_dir(self.settings.upload_dir, item.task_id, item.attempt)
            attempt = _Attempt(item, directory, has_directory=_needs_directory(item))
            self.running[attempt.key] = attempt
            self._by_task[item.task_id] = attempt
            task = asyncio.create_task(self._run(attempt), name=f"attempt-{attempt.key}")
            attempt.task = task
            task.add_done_callback(partial(self._release, attempt))
        return len(claimed)

    def _release(self, attempt: _Attempt, task: asyncio.Task[None]) -> None:
        """Give the attempt's slot back: runs however its task ended (a done-callback)."""
        attempt.state = AttemptState.DONE
        if self.running.get(attempt.key) is attempt:
            del self.running[attempt.key]
        if self._by_task.get(attempt.claimed.task_id) is attempt:
            del self._by_task[attempt.claimed.task_id]
        if not attempt.cleaned:  # its clean-up was interrupted or failed: finish it
            self._spawn(self._clean(attempt))
        outcome = "stopped" if task.cancelled() else attempt.outcome
        TASK_DURATION.labels(attempt.claimed.processor, outcome).observe(
            time.monotonic() - attempt.started
        )
        self._last_release_at = time.monotonic()
        self._wake.set()

    async def _heartbeat_loop(self) -> None:
        interval = max(self.settings.task_lease_seconds / 3, 0.1)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.heartbeat()
            except Exception:
                log.exception("heartbeat_failed")

    async def heartbeat(self) -> None:
        """Renew the leases of this pool's attempts; stop the running ones that lost theirs.

        What the database says is judged when it answers: an attempt that began
        writing its outcome meanwhile is no longer running, and its own fenced
        write decides whether it still owned the task.
        """
        lost = await maintenance.heartbeat(
            self.sessions,
            self.settings,
            self.worker_id,
            self.concurrency,
            [(a.claimed.task_id, a.claimed.attempt) for a in self.running.values()],
        )
        for task_id, number in lost:
            attempt = self.running.get(f"{task_id}:{number}")
            if attempt is not None:
                self._fence_out(attempt, "lease lost")

    async def _maintenance_loop(self) -> None:
        interval = max(self.settings.task_lease_seconds / 2, 0.2)
        while True:
            try:
                await maintenance.run_maintenance(self.sessions, self.settings)
            except Exception:
                log.exception("maintenance_failed")
            if self._leftovers:  # until a sweep gets through
                self._leftovers = not await self._sweep()
            await asyncio.sleep(interval)

    # events from anywhere: new work wakes the claim loop, a cancelled task stops at once
    def _on_pending(self, _event: TaskPending) -> None:
        self._wake.set()

    def _on_event(self, event: TaskEvent) -> None:
        attempt = self._by_task.get(event.task_id)
        if attempt is not None and event.status == TaskStatus.CANCELLED:
            self._fence_out(attempt, "cancelled")
        elif event.status == TaskStatus.PENDING and len(self.running) < self.concurrency:
            self._wake.set()

    def _fence_out(self, attempt: _Attempt, reason: str) -> None:
        """Stop a running attempt that no longer owns its task (a finishing one decides itself)."""
        if attempt.state is not AttemptState.RUNNING or attempt.fenced_out:
            return
        attempt.fenced_out = True
        self._runner.stop(attempt.key)
        if attempt.task is not None:
            attempt.task.cancel()
        log.info(
            "attempt_stopped",
            task_id=attempt.claimed.task_id,
            attempt=attempt.claimed.attempt,
            reason=reason,
        )

    # one attempt
    async def _run(self, attempt: _Attempt) -> None:
        """One attempt; the slot is released by ``_release`` (a done-callback), not here."""
        claimed = attempt.claimed
        with structlog.contextvars.bound_contextvars(
            task_id=claimed.task_id, attempt=claimed.attempt, worker_id=self.worker_id
        ):
            try:
                attempt.outcome = await self._execute(attempt, attempt.directory)
            except asyncio.CancelledError:
                attempt.outcome = "stopped"
                if not attempt.fenced_out:
                    raise  # the pool is stopping: stop() hands the task back
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
            finally:
                attempt.state = AttemptState.DONE
                if attempt.writer is not None:
                    attempt.writer.cancel()
                await self._clean(attempt)

    async def _clean(self, attempt: _Attempt) -> None:
        """Remove the attempt's directory; if the storage refuses (full, read-only), leave
        it to the next maintenance sweep instead of failing whoever asked."""
        if attempt.cleaned:  # never created (a processor that writes no files)
            return
        try:
            left = await storage.remove(attempt.directory)
        except OSError as exc:
            left, error = [attempt.directory], storage.describe_write_error(exc)
        else:
            error = "The server's storage refused to remove it."
        if left:
            self._leftovers = True
            log.warning("attempt_dir_not_removed", error=error)
        else:
            attempt.cleaned = True

    async def _execute(self, attempt: _Attempt, attempt_dir: Path) -> str:
        claimed = attempt.claimed
        try:
            if attempt.has_directory:
                await storage.empty_dir(attempt_dir)  # one thread hop: the fast path is hot
        except OSError as exc:
            return await self._failed(attempt, storage.describe_write_error(exc), retryable=True)
        try:  # the upload itself, or its copy from the bucket in the attempt's directory
            input_path = await storage.fetch_input(self.settings, claimed.upload_path, attempt_dir)
        except OSError as exc:
            return await self._failed(attempt, storage.describe_read_error(exc), retryable=True)

        def on_progress(percent: int, stage: str) -> None:
            percent = attempts.clamp_progress(percent)
            if percent >= attempt.latest[0]:
                attempt.latest = (percent, stage)
                attempt.changed.set()
                if (
                    attempt.writer is None
                    and percent < 100
                    and attempt.state is AttemptState.RUNNING
                ):
                    attempt.writer = asyncio.create_task(self._write_progress(attempt))

        try:
            output = await asyncio.wait_for(
                self._runner.run(
                    attempt.key, claimed.processor, input_path, attempt_dir, on_progress
                ),
                timeout=self.settings.task_timeout_seconds,
            )
        except TimeoutError:
            message = f"The attempt took longer than {self.settings.task_timeout_seconds:g} s."
            return await self._failed(attempt, message, retryable=True)
        except AttemptCancelled:
            raise asyncio.CancelledError from None
        except ProcessorError as exc:
            return await self._failed(attempt, exc.message, retryable=exc.retryable)
        except registry.UnknownProcessor:
            message = f"No processor named {claimed.processor!r} is installed on this worker."
            return await self._failed(attempt, message, retryable=True)
        except Exception as exc:
            if isinstance(exc, OSError) and exc.errno in storage.UNWRITABLE:
                message = storage.describe_write_error(exc)  # the disk, not the processor
            else:
                log.exception("processor_crashed")
                message = f"The processor stopped with an unexpected error ({type(exc).__name__})."
            return await self._failed(attempt, message, retryable=True)
        if output.files and not attempt.has_directory:
            message = "The processor returned result files although it declares it writes none."
            return await self._failed(attempt, message, retryable=False)
        self._finishing(attempt)
        await self._flush_progress(attempt)
        try:
            completed = await self._complete((claimed, output, attempt_dir))
        except OSError as exc:  # the results could not be moved into place: nothing was kept
            return await self._failed(attempt, storage.describe_write_error(exc), retryable=True)
        if completed:
            log.info("attempt_completed")
            return "completed"
        log.info("attempt_fenced_out")
        return "fenced_out"

    async def _complete(self, finished: Finished) -> bool:
        """Write a finished attempt's completion, batched with the others finishing now.

        One writer at a time drains what has finished: while it writes one
        transaction, the next completions gather for the one after (group commit,
        with no wait when the pool is quiet). The write goes on even if the
        attempt is stopped meanwhile, as an unbatched one would have.
        """
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        self._finished.append((finished, future))
        if self._completion_writer is None or self._completion_writer.done():
            self._completion_writer = self._spawn(self._write_completions())
        return await asyncio.shield(future)

    async def _write_completions(self) -> None:
        batch: list[tuple[Finished, asyncio.Future[bool]]] = []
        try:
            while self._finished:
                batch = self._finished[:COMPLETION_BATCH]
                del self._finished[:COMPLETION_BATCH]
                await self._write_batch(batch)
        except BaseException:  # cancelled: whoever waits is stopped too, nothing is left hanging
            for _, future in [*batch, *self._finished]:
                future.cancel()
            self._finished.clear()
            raise

    async def _write_batch(self, batch: list[tuple[Finished, asyncio.Future[bool]]]) -> None:
        error: Exception | None = None
        try:
            outcomes = await attempts.complete_many(
                self.sessions, self.settings, [finished for finished, _ in batch]
            )
        except OSError as exc:
            if len(batch) > 1:  # one attempt's files would not move: the others on their own
                for one in batch:
                    await self._write_batch([one])
                return
            outcomes, error = [], exc
        except Exception as exc:  # the database: each attempt meets it as if alone
            outcomes, error = [], exc
        for index, (_, future) in enumerate(batch):
            if future.done():
                continue
            if error is None:
                future.set_result(outcomes[index])
            else:
                future.set_exception(error)

    async def _failed(self, attempt: _Attempt, message: str, *, retryable: bool) -> str:
        self._finishing(attempt)
        status = await attempts.fail(
            self.sessions, self.settings, attempt.claimed, message, retryable=retryable
        )
        if status is None:
            log.info("attempt_fenced_out")
            return "fenced_out"
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
        # Shielded: the writer is cancelled whenever its attempt ends, and a statement
        # cancelled mid-flight costs the connection (the driver closes it, and on
        # SQLite that close can outlive the event loop); the write itself is quick.
        write = self._spawn(attempts.report_progress(self.sessions, attempt.claimed, *latest))
        write.add_done_callback(_seen)
        owned = await asyncio.shield(write)
        if not owned:
            self._fence_out(attempt, "fenced out")
