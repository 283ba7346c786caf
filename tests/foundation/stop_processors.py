"""A processor for the clean-stop test: CPU-bound, busy until stopped (at most a minute)."""

from __future__ import annotations

import time
from pathlib import Path

from app.processors.base import OutputFile, ProcessorOutput, ProgressCallback


class Busy:
    name = "busy"
    cpu_bound = True

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        deadline = time.monotonic() + 60
        step = 0
        while time.monotonic() < deadline:
            sum(range(20_000))  # keep a core busy between progress calls
            step += 1
            if step % 200 == 0:
                progress(min(99, step // 200), "busy")
        (output_dir / "out.txt").write_text("done\n")
        return ProcessorOutput(
            files=[OutputFile("out.txt", "text/plain")],
            summary="busy",
            quality_score=1.0,
            confidence_score=1.0,
            metrics={},
        )


busy = Busy()
PROCESSORS_SETTING = "busy=tests.foundation.stop_processors:busy"
