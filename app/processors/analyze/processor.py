"""The ``analyze`` processor: decode, structure, analyse, summarise, write."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.processors.analyze.analysis import analyse
from app.processors.analyze.decoding import decode
from app.processors.analyze.language import detect_language
from app.processors.analyze.quality import assess
from app.processors.analyze.report import build_report, dump_report, joiner, render_markdown
from app.processors.analyze.structure import (
    find_body,
    find_headings,
    line_mode,
    segments,
    select_chapters,
)
from app.processors.base import OutputFile, ProcessorOutput, ProgressCallback

REPORT = OutputFile("report.json", "application/json")
SUMMARY = OutputFile("summary.md", "text/markdown; charset=utf-8")

# where each stage starts, in percent; "analysing" advances with the text read
STAGES = {"decoding": 0, "structuring": 10, "analysing": 20, "summarising": 80, "writing": 95}


class _Progress:
    """Forwards progress, never going back and never repeating the same report (the
    worker pool clamps it to 0-100: ``app.queue.attempts.clamp_progress``)."""

    def __init__(self, callback: ProgressCallback) -> None:
        self.callback = callback
        self.percent = -1
        self.stage = ""

    def __call__(self, percent: int, stage: str) -> None:
        percent = max(self.percent, percent)
        if (percent, stage) != (self.percent, self.stage):
            self.percent, self.stage = percent, stage
            self.callback(percent, stage)

    def stage_start(self, stage: str) -> None:
        self(STAGES[stage], stage)

    def analysing(self, fraction: float) -> None:
        start, end = STAGES["analysing"], STAGES["summarising"]
        self(start + int((end - start) * fraction), "analysing")


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """Pause the cyclic garbage collector (restored after).

    The analysis allocates hundreds of thousands of small containers that stay
    alive until the report is written and hold no reference cycles; the
    collector would walk them again and again (about 5% of the run) and free
    nothing. Reference counting still frees everything as usual.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class AnalyzeProcessor:
    """Analyses a manuscript; see docs/report-schema.md for what it writes."""

    name = "analyze"
    description = (
        "Chapters, counts, characters, keywords, a summary and a quality score: "
        "report.json and summary.md"
    )
    cpu_bound = True

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        with _without_cycle_collection():
            return self._run(input_path, output_dir, progress)

    def _run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        report_progress = _Progress(progress)
        report_progress.stage_start("decoding")
        decoded = decode(input_path.read_bytes())

        report_progress.stage_start("structuring")
        body = find_body(decoded.text)
        by_line = line_mode(body.text)
        headings = find_headings(body.text, aozora=body.boilerplate == "aozora", by_line=by_line)
        chapters, parts = select_chapters(headings)
        language = detect_language(body.text)

        report_progress.stage_start("analysing")
        analysis = analyse(
            body,
            segments(body.text, chapters, parts),
            language=language,
            by_line=by_line,
            progress=report_progress.analysing,
            summarising=lambda: report_progress.stage_start("summarising"),
        )
        quality = assess(body, analysis, language)

        report_progress.stage_start("writing")
        report = build_report(decoded, body, language, by_line, parts, analysis, quality)
        (output_dir / REPORT.name).write_text(dump_report(report), encoding="utf-8")
        (output_dir / SUMMARY.name).write_text(render_markdown(report), encoding="utf-8")
        report_progress(100, "writing")
        return ProcessorOutput(
            files=[REPORT, SUMMARY],
            summary=joiner(language).join(analysis.summary),
            quality_score=quality.score,
            confidence_score=decoded.confidence,
            metrics={
                "words": analysis.words,
                "chapters": len(analysis.chapters),
                "sentences": analysis.sentences,
                "language": language,
                "encoding": decoded.encoding,
            },
        )


processor = AnalyzeProcessor()
