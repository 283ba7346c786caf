"""``noop``: completes at once and writes no files (benchmarks and smoke checks)."""

from __future__ import annotations

from pathlib import Path

from app.processors.base import ProcessorOutput, ProgressCallback


class NoopProcessor:
    name = "noop"
    description = "Completes at once and writes no files (benchmarks and smoke checks)"
    cpu_bound = False
    writes_files = False  # no attempt directory: see app.processors.base.writes_files
    returns_at_once = True

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        progress(100, "done")
        return ProcessorOutput(summary="")


processor = NoopProcessor()
