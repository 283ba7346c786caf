"""Processors used by the queue tests (registered through the PROCESSORS setting)."""

from __future__ import annotations

import os
import threading
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


class Fileless(Writer):
    """The writer, declaring that it writes no files: its attempt gets no directory."""

    name = "fileless"
    writes_files = False

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        if output_dir.exists():  # it must not have been created
            raise PermanentError(f"{output_dir.name} exists")
        data = input_path.read_bytes()
        progress(50, "reading")
        return ProcessorOutput(summary=f"{len(data)} bytes")


class Liar(Fileless):
    """Declares that it writes no files (as ``Fileless``), then returns one."""

    name = "liar"

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        return ProcessorOutput(files=[OutputFile("out.txt", "text/plain")])


class Instant:
    """Returns at once, on the event loop's thread: its summary names the thread."""

    name = "instant"
    cpu_bound = False
    writes_files = False
    returns_at_once = True

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        progress(60, "instant")
        return ProcessorOutput(summary=threading.current_thread().name)


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


class Spin:
    """CPU-bound and uncooperative: writes its PID to ``spin.pid``, then spins forever
    without ever calling ``progress``."""

    name = "spin"
    cpu_bound = True

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        (output_dir / "spin.pid.part").write_text(str(os.getpid()))
        (output_dir / "spin.pid.part").rename(output_dir / "spin.pid")
        count = 0
        while True:
            count += 1


class Hog:
    """Allocates memory without bound (10 MB at a time, touched) until something stops it."""

    name = "hog"
    cpu_bound = True

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        hoard = []
        while True:
            hoard.append(b"x" * (10 * 1024 * 1024))


class Exiter:
    """Ends its process with ``os._exit(3)`` in the middle of the work."""

    name = "exiter"
    cpu_bound = True

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        progress(10, "about to exit")
        os._exit(3)


class Crasher:
    """Raises an unexpected exception (not a ProcessorError) in its process."""

    name = "crasher"
    cpu_bound = True

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        raise ValueError("an internal detail the user should not see")


class Hang:
    """Runs in a thread and ignores stops: sleeps 5 s without calling ``progress``."""

    name = "hang"
    cpu_bound = False

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        time.sleep(5)
        return ProcessorOutput()


writer = Writer()
fileless = Fileless()
liar = Liar()
instant = Instant()
cpu_writer = CpuWriter()
slow = Slow()
flaky = Flaky()
broken = Broken()
rambling = Rambling()
spin = Spin()
hog = Hog()
exiter = Exiter()
crasher = Crasher()
hang = Hang()

PROCESSORS = {
    "writer": "tests.queue.processors:writer",
    "fileless": "tests.queue.processors:fileless",
    "liar": "tests.queue.processors:liar",
    "instant": "tests.queue.processors:instant",
    "cpu-writer": "tests.queue.processors:cpu_writer",
    "slow": "tests.queue.processors:slow",
    "flaky": "tests.queue.processors:flaky",
    "broken": "tests.queue.processors:broken",
    "rambling": "tests.queue.processors:rambling",
    "spin": "tests.queue.processors:spin",
    "hog": "tests.queue.processors:hog",
    "exiter": "tests.queue.processors:exiter",
    "crasher": "tests.queue.processors:crasher",
    "hang": "tests.queue.processors:hang",
}
PROCESSORS_SETTING = ",".join(f"{k}={v}" for k, v in PROCESSORS.items())
