"""Running processors off the event loop, with progress flowing back to it.

CPU-bound processors run in a process pool (forkserver, so no process is
forked from the running event loop) at a lower CPU priority; the others in a
thread. Progress calls
made inside the processor travel back through a queue read by one thread and
are handed to the attempt's callback on the event loop. Stopping an attempt
(cancel, timeout, lost lease) is cooperative: the processor's next
``progress`` call raises ``AttemptCancelled``.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import anyio

from app.processors import registry
from app.processors.base import AttemptCancelled, ProcessorOutput

OnProgress = Callable[[int, str], None]

_progress_queue: Any = None  # set in each pool process by _init_child


CHILD_NICENESS = 10
"""Added to the pool processes' nice value: when the cores are busy, the event
loop (API requests, heartbeats, progress) runs before CPU-bound analysis."""


def _init_child(progress_queue: Any, extra_processors: dict[str, str]) -> None:
    global _progress_queue
    _progress_queue = progress_queue
    with contextlib.suppress(OSError):  # not permitted everywhere; the work still runs
        os.nice(CHILD_NICENESS)
    registry.configure(extra_processors)


def _run_in_child(
    name: str, input_path: str, output_dir: str, key: str, cancelled: Any
) -> ProcessorOutput:
    def progress(percent: int, stage: str) -> None:
        if key in cancelled:
            raise AttemptCancelled(key)
        _progress_queue.put((key, int(percent), stage))

    return registry.get_processor(name).run(Path(input_path), Path(output_dir), progress)


class ProcessorRunner:
    """One per worker pool; ``close()`` when the pool stops."""

    def __init__(self, max_processes: int, extra_processors: dict[str, str]) -> None:
        self._max_processes = max(1, max_processes)
        self._extra = extra_processors
        self._executor: ProcessPoolExecutor | None = None
        self._manager: Any = None
        self._cancelled_remote: Any = None
        self._progress: Any = None
        self._reader: threading.Thread | None = None
        self._callbacks: dict[str, tuple[asyncio.AbstractEventLoop, OnProgress]] = {}
        self._cancelled_local: set[str] = set()

    def _start_processes(self) -> None:
        context = multiprocessing.get_context("forkserver")
        self._manager = context.Manager()
        self._cancelled_remote = self._manager.dict()
        self._progress = context.Queue()
        self._executor = ProcessPoolExecutor(
            max_workers=self._max_processes,
            mp_context=context,
            initializer=_init_child,
            initargs=(self._progress, self._extra),
        )
        self._reader = threading.Thread(target=self._read_progress, name="progress", daemon=True)
        self._reader.start()

    def _read_progress(self) -> None:
        while True:
            message = self._progress.get()
            if message is None:
                return
            key, percent, stage = message
            target = self._callbacks.get(key)
            if target is not None:
                loop, callback = target
                loop.call_soon_threadsafe(callback, percent, stage)

    async def run(
        self, key: str, name: str, input_path: Path, output_dir: Path, on_progress: OnProgress
    ) -> ProcessorOutput:
        """Run processor ``name``; cancelling the caller stops it at its next progress call."""
        processor = registry.get_processor(name)
        loop = asyncio.get_running_loop()
        self._callbacks[key] = (loop, on_progress)
        try:
            if processor.cpu_bound:
                if self._executor is None:
                    await anyio.to_thread.run_sync(self._start_processes)
                assert self._executor is not None
                future = loop.run_in_executor(
                    self._executor,
                    _run_in_child,
                    name,
                    str(input_path),
                    str(output_dir),
                    key,
                    self._cancelled_remote,
                )
                return await future
            return await self._run_in_thread(key, processor, input_path, output_dir, on_progress)
        except BaseException:
            self.stop(key)
            raise
        finally:
            self._callbacks.pop(key, None)

    async def _run_in_thread(
        self, key: str, processor: Any, input_path: Path, output_dir: Path, on_progress: OnProgress
    ) -> ProcessorOutput:
        loop = asyncio.get_running_loop()

        def progress(percent: int, stage: str) -> None:
            if key in self._cancelled_local:
                raise AttemptCancelled(key)
            loop.call_soon_threadsafe(on_progress, int(percent), stage)

        output: ProcessorOutput = await anyio.to_thread.run_sync(
            processor.run, input_path, output_dir, progress, abandon_on_cancel=True
        )
        return output

    def stop(self, key: str) -> None:
        """Ask a running processor to stop at its next progress call."""
        self._cancelled_local.add(key)
        if self._cancelled_remote is not None:
            with contextlib.suppress(OSError, EOFError, BrokenPipeError):
                self._cancelled_remote[key] = True

    def forget(self, key: str) -> None:
        self._cancelled_local.discard(key)
        if self._cancelled_remote is not None:
            with contextlib.suppress(OSError, EOFError, BrokenPipeError):
                self._cancelled_remote.pop(key, None)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._progress.put(None)
            self._manager.shutdown()
            self._executor = None
