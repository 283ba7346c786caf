"""Misbehaving processors for the chaos suite (registered through ``PROCESSORS``).

Each one is CPU-bound, so it runs in the worker's process pool, where a
misbehaving child is the pool's problem and not the event loop's:

- ``chaos-raise``: fails with a retryable error every time;
- ``chaos-hang``: sleeps far past ``TASK_TIMEOUT_SECONDS`` without reporting progress;
- ``chaos-hog``: allocates memory without bound, 64 MiB at a time;
- ``chaos-exit``: kills its own process with ``os._exit``.

``chaos-hang`` and ``chaos-hog`` write their pid into ``CHAOS_PID_DIR`` (when set),
so the test can check that a stopped attempt's computation really stopped.
``chaos-hog`` stops by itself at ``SAFETY_CEILING_BYTES``: a service that does not
limit a child's memory then sees the task *complete* (and the test fails, saying
so) instead of the machine running out of memory.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from app.processors.base import OutputFile, ProcessorError, ProcessorOutput, ProgressCallback

CHUNK_BYTES = 64 * 1024 * 1024
SAFETY_CEILING_BYTES = 3 * 1024 * 1024 * 1024
HANG_SECONDS = 3600.0


def _note_pid(kind: str) -> None:
    folder = os.environ.get("CHAOS_PID_DIR")
    if folder:
        Path(folder, f"{kind}-{os.getpid()}-{time.monotonic_ns()}").write_text(str(os.getpid()))


class Raising:
    name = "chaos-raise"
    cpu_bound = True

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        progress(10, "about to fail")
        raise ProcessorError("The chaos processor failed on purpose.")


class Hanging:
    name = "chaos-hang"
    cpu_bound = True

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        progress(5, "hanging")
        _note_pid("hang")
        time.sleep(HANG_SECONDS)  # no progress call: only killing the child stops it
        return ProcessorOutput(summary="woke up after an hour")


class Hog:
    name = "chaos-hog"
    cpu_bound = True

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        progress(5, "allocating")
        _note_pid("hog")
        held: list[bytearray] = []
        total = 0
        while total < SAFETY_CEILING_BYTES:
            block = bytearray(CHUNK_BYTES)
            block[::4096] = b"x" * len(block[::4096])  # touch every page
            held.append(block)
            total += CHUNK_BYTES
        (output_dir / "unbounded.txt").write_text(f"allocated {total} bytes without a limit\n")
        return ProcessorOutput(
            files=[OutputFile("unbounded.txt", "text/plain")],
            summary=f"allocated {total} bytes: the child's memory is not limited",
        )


class Exiting:
    name = "chaos-exit"
    cpu_bound = True

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        progress(5, "exiting")
        os._exit(3)


raising = Raising()
hanging = Hanging()
hog = Hog()
exiting = Exiting()

PROCESSORS = {
    "chaos-raise": "tests.chaos.processors:raising",
    "chaos-hang": "tests.chaos.processors:hanging",
    "chaos-hog": "tests.chaos.processors:hog",
    "chaos-exit": "tests.chaos.processors:exiting",
}
PROCESSORS_SETTING = ",".join(f"{k}={v}" for k, v in PROCESSORS.items())
