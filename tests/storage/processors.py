"""A processor that lets a test act between a worker's read and its write (in a thread)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app.processors.base import OutputFile, ProcessorOutput, ProgressCallback

ON_RUN: list[Callable[[bytes], None]] = []
"""Called with the manuscript's bytes on each run, first registered first, one per run."""


class Gate:
    """Copies the manuscript into ``copy.txt`` after calling the next ``ON_RUN`` hook."""

    name = "gate"
    cpu_bound = False

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        data = input_path.read_bytes()
        if ON_RUN:
            ON_RUN.pop(0)(data)
        progress(50, "copying")
        (output_dir / "copy.txt").write_bytes(data)
        return ProcessorOutput(
            files=[OutputFile("copy.txt", "text/plain")], summary=f"{len(data)} bytes"
        )


gate = Gate()
