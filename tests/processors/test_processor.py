"""The processor as a whole: report schema, summary.md, summaries, quality checks,
progress, failures, and the tricky inputs of the issue."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from app.processors.analyze import processor
from app.processors.analyze.quality import assess
from app.processors.base import PermanentError
from tests.processors.helpers import Run, analyze_bytes, analyze_text

REPORT_KEYS = [
    "schema_version", "encoding", "language", "counts", "chapters", "reading_time_minutes",
    "average_sentence_length", "dialogue_ratio", "lexical_diversity", "keywords",
    "character_names", "summary", "quality", "writing", "structure",
]  # fmt: skip
CHAPTER_KEYS = [
    "index", "title", "offset", "words", "summary", "part", "sentences", "paragraphs",
    "dialogue_ratio",
]  # fmt: skip
SENTENCES = [
    "At dusk Margaret opened the heavy door of the lighthouse and climbed the stairs.",
    "The lamp at the top had not been lit for many years.",
    "She cleaned the glass slowly while the storm gathered over the grey sea.",
    "Far below, the fishing boats were racing back towards the harbour.",
    "When the first boat reached the rocks Margaret struck a match.",
    "The old lamp caught at once and threw its beam across the water.",
]


def chapter(number: int, sentences: int = 6) -> str:
    body = " ".join(f"{SENTENCES[i % 6]}" for i in range(sentences))
    return f"Chapter {number}\n\n{body} Part {number} ends here now.\n\n"


def novel(chapters: int) -> str:
    return "".join(chapter(n) for n in range(1, chapters + 1))


def test_report_schema_and_result(tmp_path: Path) -> None:
    run = analyze_text(novel(3), tmp_path)
    assert list(run.report) == REPORT_KEYS
    assert run.report["schema_version"] == 2
    assert list(run.report["encoding"]) == ["name", "confidence", "bom"]
    assert list(run.report["counts"]) == [
        "words",
        "sentences",
        "paragraphs",
        "chapters",
        "parts",
        "characters",
        "segmented_words",
    ]
    assert all(list(c) == CHAPTER_KEYS for c in run.report["chapters"])
    assert list(run.report["quality"]) == ["score", "checks"]
    assert all(
        list(c) == ["name", "count", "passed", "weight", "penalty", "examples"]
        for c in run.report["quality"]["checks"]
    )
    assert list(run.report["structure"]) == [
        "boilerplate",
        "body_offset",
        "body_length",
        "paragraph_mode",
        "parts",
    ]
    assert run.report_bytes.endswith(b"}\n")
    assert [f.name for f in run.output.files] == ["report.json", "summary.md"]
    assert run.output.metrics == {
        "words": run.report["counts"]["words"],
        "chapters": 3,
        "sentences": run.report["counts"]["sentences"],
        "language": "en",
        "encoding": "utf-8",
    }
    assert (run.output.confidence_score, run.output.quality_score) == (1.0, 1.0)


def test_summary_markdown_layout(tmp_path: Path) -> None:
    run = analyze_text(novel(2), tmp_path)
    md = run.markdown
    assert md.startswith(
        "# Manuscript analysis\n\n| | |\n|---|---|\n| Encoding | utf-8 (confidence 1.00) |\n"
    )
    headings = [line for line in md.splitlines() if line.startswith("#")]
    assert headings == [
        "# Manuscript analysis",
        "## Summary",
        "## Main characters",
        "## Keywords",
        "## Writing",
        "## Chapters",
        f"### 1. Chapter 1 ({run.report['chapters'][0]['words']:,} words, 0% dialogue)",
        f"### 2. Chapter 2 ({run.report['chapters'][1]['words']:,} words, 0% dialogue)",
        "## Quality checks",
    ]
    assert (
        "\n".join(
            [
                "| Check | Count | Passed | Where |",
                "|---|---:|---|---|",
                "| replacement_chars | 0 | yes |  |",
            ]
        )
        in md
    )
    assert " ".join(run.report["summary"]) in md
    assert "- Margaret (4 mentions, in 2 of 2 chapters)" in md
    assert "| Readability | " in md
    assert "| 11–15 | " in md


def test_summary_limits_order_and_determinism(tmp_path: Path) -> None:
    run = analyze_text(novel(14), tmp_path)
    chapters = run.report["chapters"]
    assert len(chapters) == 14
    assert all(len(c["summary"]) == 3 for c in chapters)
    assert len(run.report["summary"]) == 10
    for c in chapters:
        positions = [
            [*SENTENCES, f"Part {c['index']} ends here now."].index(s) for s in c["summary"]
        ]
        assert positions == sorted(positions)
    again = analyze_text(novel(14), tmp_path / "again")
    assert again.report_bytes == run.report_bytes


def test_no_chapters_gives_ten_slices(tmp_path: Path) -> None:
    text = "\n\n".join(" ".join(SENTENCES) for _ in range(30)) + "\n"
    report = analyze_text(text, tmp_path).report
    assert report["chapters"] == []
    assert report["counts"]["chapters"] == 0
    assert len(report["summary"]) == 10


def test_one_giant_line(tmp_path: Path) -> None:
    text = " ".join(f"Sentence number {n} says something about the sea." for n in range(6000))
    run = analyze_text(text, tmp_path)
    report = run.report
    assert report["counts"]["paragraphs"] == 1
    assert report["counts"]["sentences"] == 6000
    assert report["counts"]["words"] == 6000 * 8
    assert len(report["summary"]) == 10  # slices of the line, not one paragraph
    checks = {c["name"]: c for c in report["quality"]["checks"]}
    assert (checks["long_paragraphs"]["count"], checks["long_paragraphs"]["passed"]) == (1, False)
    assert checks["missing_paragraph_breaks"]["count"] == 6000 * 8
    # a long paragraph (0.2) and missing paragraph breaks (0.4): 0.8 × 0.6
    assert report["quality"]["score"] == 0.48


def test_crlf_and_lf_give_the_same_report(tmp_path: Path) -> None:
    lf = analyze_text(novel(3), tmp_path / "lf")
    crlf = analyze_text(novel(3).replace("\n", "\r\n"), tmp_path / "crlf")
    cr = analyze_text(novel(3).replace("\n", "\r"), tmp_path / "cr")
    assert crlf.report == lf.report == cr.report


def test_bom_with_a_wrongly_declared_encoding(tmp_path: Path) -> None:
    text = "<!-- charset=iso-8859-1 -->\n\n" + novel(2).replace("Margaret", "Mélisande")
    run = analyze_bytes(codecs.BOM_UTF8 + text.encode("utf-8"), tmp_path)
    assert run.report["encoding"] == {"name": "utf-8", "confidence": 1.0, "bom": True}
    assert run.report["character_names"][0]["name"] == "Mélisande"
    assert run.report["chapters"][0]["offset"] == text.index("Chapter 1")


def test_legacy_encoding_end_to_end(tmp_path: Path) -> None:
    text = novel(2).replace("Margaret", "Hélène").replace("stairs", "escaliers “hauts”")
    utf8 = analyze_text(text, tmp_path / "utf8").report
    legacy = analyze_text(text, tmp_path / "cp1252", encoding="cp1252").report
    assert legacy["encoding"]["name"] == "cp1252"
    assert {k: v for k, v in legacy.items() if k != "encoding"} == {
        k: v for k, v in utf8.items() if k != "encoding"
    }


def test_progress_stages(tmp_path: Path) -> None:
    run = analyze_text(novel(5), tmp_path)
    stages = list(dict.fromkeys(stage for _, stage in run.progress))
    assert stages == ["decoding", "structuring", "analysing", "summarising", "writing"]
    assert run.progress[:2] == [(0, "decoding"), (10, "structuring")]
    assert run.progress[-2:] == [(95, "writing"), (100, "writing")]
    assert [p for p, _ in run.progress] == sorted(p for p, _ in run.progress)
    assert len(run.progress) == len(set(run.progress))


def test_an_undecodable_file_fails_permanently(tmp_path: Path) -> None:
    source = tmp_path / "binary.txt"
    source.write_bytes(bytes(range(256)) * 50)
    out = tmp_path / "out"
    out.mkdir()
    stages: list[str] = []
    with pytest.raises(PermanentError) as caught:
        processor.run(source, out, lambda _, stage: stages.append(stage))
    assert caught.value.retryable is False
    assert caught.value.message == "The file does not look like text: it contains NUL bytes."
    assert stages == ["decoding"]
    assert list(out.iterdir()) == []


def test_an_empty_file_gives_an_empty_report(tmp_path: Path) -> None:
    run = analyze_bytes(b"", tmp_path)
    assert run.report["counts"]["words"] == 0
    assert run.report["summary"] == []
    assert run.output.summary == ""
    assert "_(no sentences)_" in run.markdown


def checks_of(run: Run) -> dict[str, tuple[int, bool]]:
    return {c["name"]: (c["count"], c["passed"]) for c in run.report["quality"]["checks"]}


def test_quality_checks_each_count_their_problem(tmp_path: Path) -> None:
    clean = analyze_text(novel(4), tmp_path / "clean")
    assert clean.report["quality"]["score"] == 1.0
    assert all(passed for _, passed in checks_of(clean).values())

    dirty = (
        novel(2)
        + "Bad \ufffd bytes \ufffd here and a bell \x07 there.\n\n"
        + "CafÃ© and donâ€™t are mojibake, twice: Ã©.\n\n"
        + "This whole paragraph is repeated word for word later on.\n\n" * 3
        + "The line was hard\n\nwrapped in the middle of a sentence.\n\n"
        + "Chapter 3\n\n"
        + chapter(4)
    )
    run = analyze_text(dirty, tmp_path / "dirty")
    checks = checks_of(run)
    assert checks == {
        "replacement_chars": (2, False),
        "control_chars": (1, False),
        "mojibake": (3, False),
        "duplicate_paragraphs": (2, False),
        "broken_lines": (1, False),
        "empty_chapters": (1, False),
        "long_paragraphs": (0, True),
        "missing_paragraph_breaks": (0, True),
        "gibberish": (2, True),  # "CafÃ" and "donâ": 2 of the text's 400-odd words
        "truncated": (0, True),
        "chapter_numbering": (0, True),
    }
    score = run.report["quality"]["score"]
    product = 1.0
    for check in run.report["quality"]["checks"]:
        product *= 1 - check["penalty"]
    assert score == round(product, 4)
    assert 0.0 <= score < 0.5


def test_chinese_mojibake_is_kana_or_cyrillic_amid_han(tmp_path: Path) -> None:
    text = "宝玉听了，忙笑道：这是什么话。黛玉不答，只是冷笑。\n" * 20 + "荼コ花开了。\n" * 3
    run = analyze_text(text, tmp_path)
    assert run.report["language"] == "zh"
    assert checks_of(run)["mojibake"] == (3, False)


def test_quality_score_stays_in_range_for_garbage() -> None:
    from app.processors.analyze.analysis import Analysis
    from app.processors.analyze.keywords import Unknown
    from app.processors.analyze.structure import Body

    text = "\ufffd\x01Ã©" * 1000
    analysis = Analysis(
        paragraphs=10, duplicate_paragraphs=10, broken_paragraphs=10, long_paragraphs=10
    )
    analysis.empty_chapters = 5
    analysis.words = analysis.run_on_words = 10_000
    analysis.unknown = Unknown(count=100, checked=100)
    analysis.last_paragraph = "and then"
    analysis.chapter_numbers = [(1, None), (3, None)]
    quality = assess(Body(text, 0, "none"), analysis, "en")
    assert 0.0 <= quality.score < 0.01
    assert [c.passed for c in quality.checks] == [False] * 11
