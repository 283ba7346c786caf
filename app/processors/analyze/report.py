"""``report.json`` and ``summary.md``: the contract of API.md, documented in
docs/report-schema.md. Nothing here depends on the clock or the machine, so the
same input always gives byte-identical files."""

from __future__ import annotations

import json
import math
from typing import Any

from app.processors.analyze.analysis import (
    DEFAULT_READING_SPEED,
    READING_SPEED,
    Analysis,
)
from app.processors.analyze.decoding import Decoded
from app.processors.analyze.quality import Quality
from app.processors.analyze.structure import Body, Heading
from app.processors.analyze.text import CJK_LANGUAGES

SCHEMA_VERSION = 2


def reading_time_minutes(words: int, language: str) -> int:
    """Whole minutes, rounded up, at the language's reading speed."""
    if not words:
        return 0
    return math.ceil(words / READING_SPEED.get(language, DEFAULT_READING_SPEED))


def build_report(
    decoded: Decoded,
    body: Body,
    language: str,
    by_line: bool,
    parts: list[Heading],
    analysis: Analysis,
    quality: Quality,
) -> dict[str, Any]:
    """The report as a JSON-ready dict (key order is part of its stable form)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "encoding": {
            "name": decoded.encoding,
            "confidence": decoded.confidence,
            "bom": decoded.bom,
        },
        "language": language,
        "counts": {
            "words": analysis.words,
            "sentences": analysis.sentences,
            "paragraphs": analysis.paragraphs,
            "chapters": len(analysis.chapters),
            "parts": len(parts),
            "characters": len(decoded.text),
            "segmented_words": analysis.segmented_words,
        },
        "chapters": [
            {
                "index": chapter.index,
                "title": chapter.title,
                "offset": chapter.offset,
                "words": chapter.words,
                "summary": chapter.summary,
                "part": chapter.part,
                "sentences": chapter.sentences,
                "paragraphs": chapter.paragraphs,
                "dialogue_ratio": chapter.dialogue_ratio,
            }
            for chapter in analysis.chapters
        ],
        "reading_time_minutes": reading_time_minutes(analysis.words, language),
        "average_sentence_length": analysis.average_sentence_length,
        "dialogue_ratio": analysis.dialogue_ratio,
        "lexical_diversity": analysis.lexical_diversity,
        "keywords": [{"term": term, "count": count} for term, count in analysis.keywords],
        "character_names": [
            {
                "name": character.name,
                "mentions": character.mentions,
                "chapter_mentions": [
                    character.chapters.get(chapter.index, 0) for chapter in analysis.chapters
                ],
            }
            for character in analysis.characters
        ],
        "summary": analysis.summary,
        "quality": {
            "score": quality.score,
            "checks": [
                {
                    "name": check.name,
                    "count": check.count,
                    "passed": check.passed,
                    "weight": check.weight,
                    "penalty": check.penalty,
                    "examples": [
                        {"chapter": e.chapter, "offset": e.offset, "sample": e.sample}
                        for e in check.examples
                    ],
                }
                for check in quality.checks
            ],
        },
        "writing": analysis.writing,
        "structure": {
            "boilerplate": body.boilerplate,
            "body_offset": body.offset,
            "body_length": len(body.text),
            "paragraph_mode": "lines" if by_line else "blank_lines",
            "parts": [{"title": part.title, "offset": body.offset + part.start} for part in parts],
        },
    }


def dump_report(report: dict[str, Any]) -> str:
    """Stable JSON text: UTF-8 characters kept, two-space indent, a final newline."""
    return json.dumps(report, ensure_ascii=False, indent=2) + "\n"


def joiner(language: str) -> str:
    """How sentences are joined into one text: no space for Chinese and Japanese."""
    return "" if language in CJK_LANGUAGES else " "


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _where(example: dict[str, Any]) -> str:
    chapter = f"chapter {example['chapter']}, " if example["chapter"] else ""
    return f"{chapter}offset {example['offset']:,}: “{example['sample']}”"


def _readability_rows(report: dict[str, Any]) -> list[str]:
    readable = report["writing"]["readability"]
    if readable is None:
        return []
    return [f"| Readability | {readable['score']} ({readable['formula']}) |"]


def _writing_lines(writing: dict[str, Any]) -> list[str]:
    """The ``## Writing`` section: sentence lengths, pacing, overused words, phrases."""
    lengths = writing["sentence_lengths"]
    if not lengths["max"]:
        return []
    lines = [
        "## Writing",
        "",
        f"Sentences: {lengths['mean']} words on average, median {lengths['median']}, "
        f"90 % under {lengths['p90']}, longest {lengths['max']}.",
        "",
        "| Words per sentence | Sentences |",
        "|---|---:|",
    ]
    for bucket in lengths["histogram"]:
        span = f"{bucket['min']}–{bucket['max']}" if bucket["max"] else f"{bucket['min']}+"
        lines.append(f"| {span} | {bucket['sentences']:,} |")
    lines.append("")
    pacing = writing["chapter_lengths"]
    if pacing:
        lines += [
            f"Chapters: {pacing['min']:,} to {pacing['max']:,} words, "
            f"{pacing['mean']:,} on average (standard deviation {pacing['stdev']:,}).",
            "",
        ]
    if writing["overused_words"]:
        lines += ["Overused words (count, per 10,000 words, chapters where most used):", ""]
        lines += [
            f"- {w['term']}: {w['count']:,} ({w['per_10k_words']}), "
            f"chapters {_chapter_list(w['chapters'])}"
            for w in writing["overused_words"]
        ]
        lines.append("")
    if writing["repeated_phrases"]:
        lines += ["Repeated phrases:", ""]
        lines += [
            f"- “{p['phrase']}” × {p['count']:,}, chapters {_chapter_list(p['chapters'])}"
            for p in writing["repeated_phrases"]
        ]
        lines.append("")
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    """``summary.md``: the report for a person to read (layout in docs/report-schema.md).

    The processor only sees the stored file, whose name is generated, so the
    title does not name the manuscript."""
    counts = report["counts"]
    encoding = report["encoding"]
    quality = report["quality"]
    join = joiner(report["language"])
    lines = [
        "# Manuscript analysis",
        "",
        "| | |",
        "|---|---|",
        f"| Encoding | {encoding['name']} (confidence {encoding['confidence']:.2f}"
        f"{', BOM' if encoding['bom'] else ''}) |",
        f"| Language | {report['language']} |",
        f"| Words | {counts['words']:,} |",
        *(
            [f"| Words (segmented) | {counts['segmented_words']:,} |"]
            if counts.get("segmented_words") is not None
            else []
        ),
        f"| Sentences | {counts['sentences']:,} |",
        f"| Paragraphs | {counts['paragraphs']:,} |",
        f"| Chapters | {counts['chapters']:,} |",
        f"| Reading time | {report['reading_time_minutes']:,} min |",
        f"| Average sentence length | {report['average_sentence_length']} words |",
        f"| Dialogue | {report['dialogue_ratio']:.0%} |",
        f"| Lexical diversity | {report['lexical_diversity']} |",
        *_readability_rows(report),
        f"| Quality score | {quality['score']:.2f} |",
        "",
        "## Summary",
        "",
        join.join(report["summary"]) or "_(no sentences)_",
        "",
    ]
    if report["character_names"]:
        lines += ["## Main characters", ""]
        chapters = len(report["chapters"])
        for n in report["character_names"][:10]:
            present = sum(1 for m in n["chapter_mentions"] if m)
            where = f", in {present} of {chapters} chapters" if chapters else ""
            lines.append(f"- {n['name']} ({n['mentions']:,} mentions{where})")
        lines.append("")
    if report["keywords"]:
        lines += ["## Keywords", ""]
        lines.append(", ".join(f"{k['term']} ({k['count']:,})" for k in report["keywords"]))
        lines.append("")
    lines += _writing_lines(report["writing"])
    if report["chapters"]:
        lines += ["## Chapters", ""]
        for chapter in report["chapters"]:
            part = f"{chapter['part']} — " if chapter["part"] else ""
            lines.append(
                f"### {chapter['index']}. {part}{chapter['title']} ({chapter['words']:,} words, "
                f"{chapter['dialogue_ratio']:.0%} dialogue)"
            )
            lines.append("")
            if chapter["summary"]:
                lines.append(join.join(chapter["summary"]))
                lines.append("")
    lines += [
        "## Quality checks",
        "",
        "| Check | Count | Passed | Where |",
        "|---|---:|---|---|",
    ]
    for check in quality["checks"]:
        passed = "yes" if check["passed"] else "no"
        where = "; ".join(_where(e) for e in check["examples"])
        lines.append(f"| {_cell(check['name'])} | {check['count']:,} | {passed} | {_cell(where)} |")
    lines.append("")
    return "\n".join(lines)


def _chapter_list(chapters: list[int]) -> str:
    """Chapter numbers as ``3, 7, 12``, or a dash when there are none."""
    return ", ".join(map(str, chapters)) or "–"
