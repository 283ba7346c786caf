"""Processors for the browser tests (registered through the PROCESSORS setting).

``paced`` takes about two seconds in ten visible steps, so the dashboard can be
seen moving; ``steady`` takes ten seconds (screenshots of running tasks);
``slow`` runs for a minute, so it can be cancelled while running. They stop at
the next progress report once their attempt is cancelled.

``fails_once`` fails its first attempt for good and succeeds when retried (bulk
retry). ``reporter`` writes a small ``report.json`` of the shape docs/report-schema.md
documents for the ``analyze`` processor (schema_version 2, plus ``summary.md``),
from a naive reading of the text: the dashboard's report view is tested without
depending on ``analyze``. Whoever follows ``said`` is a character, whatever the
word (``said <b>Zed</b>.``), so markup in a name can be tested; a text ending
without a period fails the ``truncated`` check with an example.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from app.processors.base import OutputFile, PermanentError, ProcessorOutput, ProgressCallback


class Paced:
    cpu_bound = False

    def __init__(self, name: str, seconds: float) -> None:
        self.name = name
        self.seconds = seconds
        self.description = f"Counts the bytes, in ten steps over {seconds:g} seconds (tests)"

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
SPEAKER = re.compile(r"\bsaid (\S+?)[,.;!?]*(?=\s|$)")
QUOTED = re.compile(r'"[^"\n]*"')
PHRASE = re.compile(r"(?=\b([a-z]+ [a-z]+ [a-z]+)\b)")


def dialogue_ratio(text: str) -> float:
    """Characters inside double quotes over all characters (4 decimals)."""
    quoted = sum(len(m.group()) for m in QUOTED.finditer(text))
    return round(quoted / max(1, len(text)), 4)


def mentions(name: str, text: str) -> int:
    return len(re.findall(rf"(?<!\w){re.escape(name)}(?!\w)", text))


def naive_report(text: str) -> dict[str, Any]:
    """A report.json of the documented shape (schema_version 2)."""
    headings = list(HEADING.finditer(text))
    starts = [m.start() for m in headings] + [len(text)]
    spans = [text[match.end() : starts[index]] for index, match in enumerate(headings, start=1)]
    chapters: list[dict[str, Any]] = [
        {
            "index": index,
            "title": (match.group(1) or match.group(2)).strip(),
            "offset": match.start(),
            "words": len(WORD.findall(span)),
            "summary": [],
            "part": None,
            "sentences": len(re.findall(r"[.!?](?:\s|$)", span)),
            "paragraphs": len([p for p in span.split("\n\n") if p.strip()]),
            "dialogue_ratio": dialogue_ratio(span),
        }
        for index, (match, span) in enumerate(zip(headings, spans, strict=True), start=1)
    ]
    words = WORD.findall(text)
    body = HEADING.sub("", text)
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", body) if WORD.search(s)]
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    terms = Counter(w.lower() for w in words if len(w) > 2 and w.lower() not in STOP_WORDS)
    names = Counter(  # headings aside (``Chapter``)
        w for w in WORD.findall(body) if w[0].isupper() and w.lower() not in STOP_WORDS
    )
    speakers = Counter(s for s in SPEAKER.findall(text) if s not in names)
    characters = [n for n, _ in names.most_common(4)] + [s for s, _ in speakers.most_common(2)]
    presence = {n: [mentions(n, span) for span in spans] for n in characters}
    cast = sorted(characters, key=lambda n: (-mentions(n, text), n))
    lengths = [c["words"] for c in chapters]
    phrases = Counter(PHRASE.findall(text.lower()))
    ending = text.rstrip()[-40:]
    truncated = not text.rstrip().endswith((".", "!", "?", '"'))
    summary = sentences[:2]
    return {
        "schema_version": 2,
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
        "dialogue_ratio": dialogue_ratio(text),
        "lexical_diversity": round(len(terms) / max(1, len(words)), 3),
        "keywords": [{"term": t, "count": c} for t, c in terms.most_common(8)],
        "character_names": [
            {"name": n, "mentions": mentions(n, text), "chapter_mentions": presence[n]}
            for n in cast
        ],
        "summary": summary,
        "quality": {
            "score": 0.95,
            "checks": [
                {
                    "name": "replacement_chars",
                    "count": text.count("\ufffd"),
                    "passed": True,
                    "weight": 0.5,
                    "penalty": 0.0,
                    "examples": [],
                },
                {
                    "name": "truncated",
                    "count": int(truncated),
                    "passed": not truncated,
                    "weight": 0.2,
                    "penalty": 0.2 if truncated else 0.0,
                    "examples": [
                        {
                            "chapter": len(chapters) or None,
                            "offset": len(text.rstrip()) - len(ending),
                            "sample": ending,
                        }
                    ]
                    if truncated
                    else [],
                },
            ],
        },
        "writing": {
            "readability": {
                "formula": "Flesch reading ease",
                "score": 75.5,
                "words_per_sentence": round(len(words) / max(1, len(sentences)), 2),
                "syllables_per_word": 1.3,
            },
            "sentence_lengths": {
                "mean": round(len(words) / max(1, len(sentences)), 2),
                "median": 10,
                "p90": 14,
                "max": 20,
                "histogram": [{"min": 1, "max": None, "sentences": len(sentences)}],
            },
            "chapter_lengths": {
                "min": min(lengths),
                "max": max(lengths),
                "mean": round(sum(lengths) / len(lengths), 1),
                "stdev": 0.0,
            }
            if lengths
            else None,
            "overused_words": [
                {
                    "term": t,
                    "count": c,
                    "per_10k_words": round(c * 10_000 / max(1, len(words)), 1),
                    "first_offset": text.lower().find(t),
                    "chapters": [1] if chapters else [],
                }
                for t, c in terms.most_common(2)
            ],
            "repeated_phrases": [
                {
                    "phrase": p,
                    "count": c,
                    "first_offset": text.lower().find(p),
                    "chapters": [1] if chapters else [],
                }
                for p, c in phrases.most_common(2)
                if c >= 5
            ],
        },
    }


class Reporter:
    """Reports the stages of ``analyze`` over ``seconds``, then writes its report."""

    name = "reporter"
    description = "A small report.json and summary.md of the documented shape (tests)"
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


class FailsOnce:
    """Fails its first attempt for good (no automatic retry), succeeds once retried by a
    user: the state is this process's (the e2e server runs its workers in threads)."""

    name = "fails_once"
    description = "Fails the first time, succeeds when retried (tests)"
    cpu_bound = False

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        key = input_path.read_bytes().decode("utf-8", "replace")
        if key not in self.seen:
            self.seen.add(key)
            raise PermanentError("This manuscript fails the first time")
        progress(100, "done")
        return ProcessorOutput(summary="second time lucky")


fails_once = FailsOnce()
paced = Paced("paced", 2.0)
steady = Paced("steady", 10.0)
slow = Paced("slow", 60.0)
reporter = Reporter(3.0)

PROCESSORS_SETTING = ",".join(
    f"{name}=tests.e2e.processors:{name}"
    for name in ("paced", "steady", "slow", "reporter", "fails_once")
)
