"""Running processors off the event loop, with progress flowing back to it.

CPU-bound processors run in a process of their own per attempt, forked by
the forkserver (so nothing is forked from the running event loop) at a lower
CPU priority and under an address-space limit (``PROCESSOR_MEMORY_LIMIT_MB``);
see ``child.py``. Stopping such an attempt (cancel, timeout, lost lease,
shutdown) kills its process at once, whatever the processor is doing, and a
processor that dies (``os._exit``, a crash, memory exhaustion) fails only
its own attempt. Every attempt process is started by one long-lived thread,
which also started the forkserver: ``PR_SET_PDEATHSIG`` ties the forkserver
to that thread and the children to the forkserver, so a worker process that
dies, even by SIGKILL, takes them with it.

Other processors run in a thread and stop cooperatively: their next
``progress`` call raises ``AttemptCancelled``. The attempt gives up its slot
at once either way. A processor that says ``returns_at_once`` (``noop``) is
called on the event loop itself: handing it to a thread and its answer back
cost more than it does.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver
import os
import queue
import signal
import threading
from collections.abc import Callable
from multiprocessing import forkserver, popen_forkserver, reduction, spawn, util
from pathlib import Path
from typing import Any

from app.log import get_logger
from app.processors import registry
from app.processors.base import AttemptCancelled, ProcessorError, ProcessorOutput
from app.queue import child

OnProgress = Callable[[int, str], None]
log = get_logger(__name__)

CHILD_NICENESS = 10
"""Added to the attempt processes' nice value: when the cores are busy, the event
loop (API requests, heartbeats, progress) runs before CPU-bound analysis."""
EXIT_WAIT_SECONDS = 5.0
"""How long a child that sent its result may take to exit before it is killed."""
FORKSERVER_PRELOAD = ["app.queue.forkserver_init"]


class _ThreadCache:
    """Threads for the attempts of thread-run processors, reused when they come back.

    Unlike a pool's fixed set, it never makes an attempt wait: with no idle
    thread it starts one, so a processor that never returns keeps only its own
    thread. A thread idle for ``IDLE_SECONDS`` ends. Reuse spares each attempt
    a thread's creation (the bulk of a quick attempt's cost in the worker).
    """

    IDLE_SECONDS = 30.0

    def __init__(self) -> None:
        self._work: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, function: Callable[[], None]) -> None:
        with self._lock:
            if self._idle:
                self._idle -= 1  # that thread is now spoken for
                self._work.put(function)
                return
        threading.Thread(target=self._serve, args=(function,), name="attempt", daemon=True).start()

    def _serve(self, function: Callable[[], None]) -> None:
        while True:
            function()
            with self._lock:
                self._idle += 1
            try:
                function = self._work.get(timeout=self.IDLE_SECONDS)
            except queue.Empty:
                with self._lock:  # a submit may have counted on this thread just now
                    try:
                        function = self._work.get_nowait()
                    except queue.Empty:
                        self._idle -= 1
                        return


_threads = _ThreadCache()


class _Spawner:
    """The one thread that starts attempt processes (and, first, the forkserver).

    ``PR_SET_PDEATHSIG`` fires when the *thread* that forked a process ends, so
    the forkserver must be started by a thread that lives as long as the
    process: this one never returns.
    """

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]]
        self._requests = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, function: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="attempt-spawner", daemon=True
                )
                self._thread.start()
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._requests.put((function, future))
        return future

    def _serve(self) -> None:
        multiprocessing.get_context("forkserver").set_forkserver_preload(FORKSERVER_PRELOAD)
        while True:
            function, future = self._requests.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function())
            except BaseException as exc:  # handed to the waiting attempt
                future.set_exception(exc)


_spawner = _Spawner()


class _AttemptPopen(popen_forkserver.Popen):
    """The forkserver's ``Popen``, minus the main module.

    multiprocessing makes every child re-import the parent's ``__main__`` (the
    uvicorn script, ``app.worker`` and all it imports) before unpickling its
    target: a quarter of a second per attempt, for nothing, since an attempt's
    target lives in ``app.queue.child``, which the forkserver preloads. This is
    ``popen_forkserver.Popen._launch`` (CPython 3.11-3.13) without those two keys.
    """

    def _launch(self, process_obj: Any) -> None:
        prep_data = spawn.get_preparation_data(process_obj._name)
        prep_data.pop("init_main_from_name", None)
        prep_data.pop("init_main_from_path", None)
        buf = io.BytesIO()
        multiprocessing.context.set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            multiprocessing.context.set_spawning_popen(None)
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)  # type: ignore[attr-defined]
        _parent_w = os.dup(w)
        self.finalizer = util.Finalize(
            self,
            util.close_fds,  # type: ignore[attr-defined]
            (_parent_w, self.sentinel),
        )
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class _AttemptProcess(multiprocessing.context.ForkServerProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        return _AttemptPopen(process_obj)


def start_forkserver() -> concurrent.futures.Future[Any]:
    """Start the forkserver ahead of the first CPU-bound attempt (it preloads the analysis)."""
    return _spawner.submit(multiprocessing.forkserver.ensure_running)


def _call_soon(loop: asyncio.AbstractEventLoop, function: Callable[..., Any], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody is waiting
        loop.call_soon_threadsafe(function, *args)


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


class _Child:
    """One attempt's process and the worker's end of its control pipe."""

    def __init__(self, process: Any, control: Any) -> None:
        self.process = process
        self.control = control
        self.stopped = False
        self.exitcode: int | None = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.exitcode is None else None

    def kill(self) -> None:
        """Stop the child now (safe from any thread, before or after it started)."""
        with self._lock:
            self.stopped = True
            if self.exitcode is not None:
                return
            with contextlib.suppress(OSError):
                self.control.close()  # a child that has not started yet exits on start
            if getattr(self.process, "_popen", None) is not None:
                with contextlib.suppress(OSError, ValueError):
                    self.process.kill()

    def wait(self) -> int | None:
        """Wait for the child to exit (killing it if it lingers); its exit code."""
        self.process.join(EXIT_WAIT_SECONDS)
        if self.process.exitcode is None:
            self.kill()
            self.process.join()
        with self._lock:
            self.exitcode = self.process.exitcode
            with contextlib.suppress(OSError):
                self.control.close()
            with contextlib.suppress(ValueError):
                self.process.close()
        return self.exitcode


class ProcessorRunner:
    """One per worker pool; ``close()`` when the pool stops."""

    def __init__(self, extra_processors: dict[str, str], *, memory_limit_mb: int = 0) -> None:
        self._extra = extra_processors
        self._memory_limit_mb = memory_limit_mb
        self._children: dict[str, _Child] = {}
        self._thread_stops: dict[str, threading.Event] = {}

    def child_pid(self, key: str) -> int | None:
        """The PID of the process running attempt ``key``, if it runs in one."""
        running = self._children.get(key)
        return running.pid if running is not None else None

    async def run(
        self, key: str, name: str, input_path: Path, output_dir: Path, on_progress: OnProgress
    ) -> ProcessorOutput:
        """Run processor ``name``; cancelling the caller stops it (kills its process)."""
        processor = registry.get_processor(name)
        if processor.cpu_bound:
            return await self._run_in_process(key, name, input_path, output_dir, on_progress)
        if getattr(processor, "returns_at_once", False):  # no thread: it does no work
            output: ProcessorOutput = processor.run(input_path, output_dir, on_progress)
            return output
        try:
            return await self._run_in_thread(key, processor, input_path, output_dir, on_progress)
        except BaseException:
            self.stop(key)
            raise

    async def _run_in_process(
        self, key: str, name: str, input_path: Path, output_dir: Path, on_progress: OnProgress
    ) -> ProcessorOutput:
        context = multiprocessing.get_context("forkserver")
        control_r, control_w = context.Pipe(duplex=False)
        results_r, results_w = context.Pipe(duplex=False)
        process = _AttemptProcess(
            target=child.run_attempt,
            args=(
                control_r,
                results_w,
                name,
                str(input_path),
                str(output_dir),
                self._extra,
                self._memory_limit_mb,
                CHILD_NICENESS,
            ),
            name=f"attempt-{key}",
            daemon=True,
        )
        running = self._children[key] = _Child(process, control_w)

        def start() -> None:
            try:
                process.start()
                # Only this child's reader thread may read its exit status (the sentinel
                # pipe carries it once): keep it out of multiprocessing's own list, which
                # the next start() polls from this thread.
                multiprocessing.process._children.discard(process)  # type: ignore[attr-defined]
            finally:  # the child has its copies now
                control_r.close()
                results_w.close()

        loop = asyncio.get_running_loop()
        finished: asyncio.Future[tuple[tuple[Any, ...] | None, int | None]] = loop.create_future()
        started = _spawner.submit(start)
        try:
            try:
                await asyncio.wrap_future(started)
            except BaseException:
                results_r.close()
                raise
            threading.Thread(
                target=self._read,
                args=(running, results_r, loop, finished, on_progress),
                name="attempt-results",
                daemon=True,
            ).start()
            final, exitcode = await finished
        except BaseException:
            # also when the start is still under way: the child is killed once it exists
            started.add_done_callback(lambda _: running.kill())
            raise
        finally:
            self._children.pop(key, None)
        if running.stopped:
            raise AttemptCancelled(key)
        return self._outcome(name, final, exitcode)

    @staticmethod
    def _read(
        running: _Child,
        results: Any,
        loop: asyncio.AbstractEventLoop,
        finished: asyncio.Future[Any],
        on_progress: OnProgress,
    ) -> None:
        """Thread: forward progress to the loop, then hand over the final message and exit code."""
        final: tuple[Any, ...] | None = None
        try:
            while True:
                message = results.recv()
                if message[0] == "progress":
                    _call_soon(loop, on_progress, message[1], message[2])
                else:
                    final = message
                    break
        except (EOFError, OSError):
            pass  # the child died without a final message: its exit code tells why
        except Exception as exc:  # a final message that cannot be unpickled
            final = ("crashed", type(exc).__name__, "")
        finally:
            results.close()
        exitcode = running.wait()
        _call_soon(loop, _resolve, finished, (final, exitcode))

    def _outcome(
        self, name: str, final: tuple[Any, ...] | None, exitcode: int | None
    ) -> ProcessorOutput:
        kind = final[0] if final else None
        if kind == "done":
            output: ProcessorOutput = final[1]  # type: ignore[index]
            return output
        if kind == "error":
            error: ProcessorError = final[1]  # type: ignore[index]
            raise error
        if kind == "unknown":
            raise registry.UnknownProcessor(name)
        if kind == "memory" or exitcode == child.EXIT_OUT_OF_MEMORY:
            raise ProcessorError(
                "The processor needed more memory than a worker allows it "
                f"(PROCESSOR_MEMORY_LIMIT_MB = {self._memory_limit_mb}).",
                retryable=False,
            )
        if kind == "crashed":
            assert final is not None
            log.error("processor_crashed", error_type=final[1], traceback=final[2])
            raise ProcessorError(f"The processor stopped with an unexpected error ({final[1]}).")
        if exitcode is not None and exitcode < 0:
            signame = _signal_name(-exitcode)
            if -exitcode == signal.SIGKILL:
                raise ProcessorError(
                    f"The processor's process was killed ({signame}), "
                    "perhaps by the system for using too much memory."
                )
            raise ProcessorError(f"The processor's process died of signal {signame}.")
        raise ProcessorError(
            f"The processor's process exited unexpectedly (exit status {exitcode})."
        )

    async def _run_in_thread(
        self, key: str, processor: Any, input_path: Path, output_dir: Path, on_progress: OnProgress
    ) -> ProcessorOutput:
        """Run in a thread of ``_threads`` (never one of a fixed pool: a processor that
        never returns would hold a token of the pool for ever), abandoned when the
        attempt is stopped; the thread returns to the cache when the processor does."""
        loop = asyncio.get_running_loop()
        stopped = self._thread_stops[key] = threading.Event()
        finished: asyncio.Future[tuple[bool, Any]] = loop.create_future()

        def progress(percent: int, stage: str) -> None:
            if stopped.is_set():
                raise AttemptCancelled(key)
            _call_soon(loop, on_progress, int(percent), stage)

        def run() -> None:
            try:
                outcome: tuple[bool, Any] = (True, processor.run(input_path, output_dir, progress))
            except BaseException as exc:
                outcome = (False, exc)
            finally:  # the thread may outlive its attempt: it stops at its next progress call
                if self._thread_stops.get(key) is stopped:
                    del self._thread_stops[key]
            _call_soon(loop, _resolve, finished, outcome)

        _threads.submit(run)
        ok, value = await finished
        if not ok:
            raise value
        output: ProcessorOutput = value
        return output

    def stop(self, key: str) -> None:
        """Stop attempt ``key``: kill its process, or stop its thread at its next progress call."""
        stopped = self._thread_stops.get(key)
        if stopped is not None:
            stopped.set()
        running = self._children.get(key)
        if running is not None:
            running.kill()

    def close(self) -> None:
        """Kill every attempt process still running (the pool is stopping)."""
        for stopped in list(self._thread_stops.values()):
            stopped.set()
        for running in list(self._children.values()):
            running.kill()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)
