"""Processors used by the queue tests (registered through the PROCESSORS setting)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from app.processors.base import (
    OutputFile,
    PermanentError,
    ProcessorError,
    ProcessorOutput,
    ProgressCallback,
)


class Writer:
    """Writes one file with the input's length, reporting a few progress steps."""

    name = "writer"
    cpu_bound = False

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        data = input_path.read_bytes()
        for percent in (10, 40, 70):
            progress(percent, "working")
        (output_dir / "out.txt").write_text(
            f"{len(data)} bytes by pid {os.getpid()} at nice {os.nice(0)}\n"
        )
        return ProcessorOutput(
            files=[OutputFile("out.txt", "text/plain")],
            summary=f"{len(data)} bytes",
            quality_score=1.0,
            confidence_score=0.5,
            metrics={"bytes": len(data)},
        )


class CpuWriter(Writer):
    """The same, run in the process pool."""

    name = "cpu-writer"
    cpu_bound = True


class Slow:
    """Sleeps in small steps, reporting progress, for ``NTM_TEST_SLOW_SECONDS`` (default 30)."""

    name = "slow"
    cpu_bound = False

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        seconds = float(os.environ.get("NTM_TEST_SLOW_SECONDS", "30"))
        steps = max(1, int(seconds / 0.05))
        for step in range(steps):
            time.sleep(seconds / steps)
            progress(min(99, step * 100 // steps), "sleeping")
        (output_dir / "slow.txt").write_text(f"done by pid {os.getpid()}\n")
        return ProcessorOutput(
            files=[OutputFile("slow.txt", "text/plain")], summary=str(os.getpid())
        )


class Flaky:
    """Fails with a retryable error every time."""

    name = "flaky"
    cpu_bound = False

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        progress(5, "trying")
        raise ProcessorError("The service it needs is unavailable.")


class Broken:
    """Fails permanently."""

    name = "broken"
    cpu_bound = True

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        raise PermanentError("The file cannot be decoded.")


class Rambling:
    """Fails permanently with a message of 20,000 characters."""

    name = "rambling"
    cpu_bound = False

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        raise PermanentError("This manuscript cannot be read: " + "no, really; " * 1700)


writer = Writer()
cpu_writer = CpuWriter()
slow = Slow()
flaky = Flaky()
broken = Broken()
rambling = Rambling()

PROCESSORS = {
    "writer": "tests.queue.processors:writer",
    "cpu-writer": "tests.queue.processors:cpu_writer",
    "slow": "tests.queue.processors:slow",
    "flaky": "tests.queue.processors:flaky",
    "broken": "tests.queue.processors:broken",
    "rambling": "tests.queue.processors:rambling",
}
PROCESSORS_SETTING = ",".join(f"{k}={v}" for k, v in PROCESSORS.items())
