"""Processors for the browser tests (registered through the PROCESSORS setting).

``paced`` takes about two seconds in ten visible steps, so the dashboard can be
seen moving; ``steady`` takes ten seconds (screenshots of running tasks);
``slow`` runs for a minute, so it can be cancelled while running. They stop at
the next progress report once their attempt is cancelled.

``reporter`` writes a small ``report.json`` of the shape API.md documents for
the ``analyze`` processor (plus ``summary.md``), from a naive reading of the
text: the dashboard's report view is tested without depending on ``analyze``.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from app.processors.base import OutputFile, ProcessorOutput, ProgressCallback


class Paced:
    cpu_bound = False

    def __init__(self, name: str, seconds: float) -> None:
        self.name = name
        self.seconds = seconds

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        steps = max(10, int(self.seconds / 0.2))
        for step in range(1, steps):
            time.sleep(self.seconds / steps)
            progress(step * 100 // steps, f"step {step} of {steps}")
        size = input_path.stat().st_size
        (output_dir / "size.txt").write_text(f"{size} bytes\n")
        return ProcessorOutput(
            files=[OutputFile("size.txt", "text/plain")],
            summary=f"{size} bytes read",
            metrics={"bytes": size},
        )


HEADING = re.compile(r"^(?:#+\s*(.+)|(Chapter\s+\S+.*))$", re.MULTILINE)
WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
STOP_WORDS = frozenset({"and", "her", "his", "into", "said", "the", "was", "were", "where"})


def naive_report(text: str) -> dict[str, Any]:
    """A report.json of the documented shape (schema_version 1)."""
    headings = list(HEADING.finditer(text))
    starts = [m.start() for m in headings] + [len(text)]
    chapters: list[dict[str, Any]] = [
        {
            "index": index,
            "title": (match.group(1) or match.group(2)).strip(),
            "offset": match.start(),
            "words": len(WORD.findall(text, match.end(), starts[index])),
            "summary": [],
        }
        for index, match in enumerate(headings, start=1)
    ]
    words = WORD.findall(text)
    body = HEADING.sub("", text)
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", body) if WORD.search(s)]
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    terms = Counter(w.lower() for w in words if len(w) > 2 and w.lower() not in STOP_WORDS)
    names = Counter(w for w in words if w[0].isupper() and w.lower() not in STOP_WORDS)
    summary = sentences[:2]
    return {
        "schema_version": 1,
        "encoding": {"name": "utf-8", "confidence": 1.0, "bom": False},
        "language": "en",
        "counts": {
            "words": len(words),
            "sentences": len(sentences),
            "paragraphs": len(paragraphs),
            "chapters": len(chapters),
            "characters": len(text),
        },
        "chapters": chapters,
        "reading_time_minutes": max(1, len(words) // 250),
        "average_sentence_length": round(len(words) / max(1, len(sentences)), 2),
        "dialogue_ratio": round(text.count('"') / 2 / max(1, len(sentences)), 3),
        "lexical_diversity": round(len(terms) / max(1, len(words)), 3),
        "keywords": [{"term": t, "count": c} for t, c in terms.most_common(8)],
        "character_names": [{"name": n, "mentions": c} for n, c in names.most_common(3)],
        "summary": summary,
        "quality": {
            "score": 0.95,
            "checks": [
                {"name": "replacement_characters", "count": text.count("\ufffd"), "passed": True},
                {"name": "duplicated_paragraphs", "count": 0, "passed": True},
            ],
        },
    }


class Reporter:
    """Reports the stages of ``analyze`` over ``seconds``, then writes its report."""

    name = "reporter"
    cpu_bound = False

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        text = input_path.read_text(encoding="utf-8")
        stages = ("decoding", "structuring", "analysing", "summarising", "writing")
        for step, stage in enumerate(stages):
            progress(step * 20, stage)
            time.sleep(self.seconds / len(stages))
        report = naive_report(text)
        (output_dir / "report.json").write_text(
            json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        (output_dir / "summary.md").write_text(
            "# Summary\n\n" + " ".join(report["summary"]) + "\n", encoding="utf-8"
        )
        return ProcessorOutput(
            files=[
                OutputFile("report.json", "application/json"),
                OutputFile("summary.md", "text/markdown"),
            ],
            summary=" ".join(report["summary"]),
            quality_score=report["quality"]["score"],
            confidence_score=report["encoding"]["confidence"],
            metrics={
                "words": report["counts"]["words"],
                "chapters": report["counts"]["chapters"],
            },
        )


paced = Paced("paced", 2.0)
steady = Paced("steady", 10.0)
slow = Paced("slow", 60.0)
reporter = Reporter(3.0)

PROCESSORS_SETTING = ",".join(
    f"{name}=tests.e2e.processors:{name}" for name in ("paced", "steady", "slow", "reporter")
)
