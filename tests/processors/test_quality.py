"""The quality score means something: damaged copies of real novels score clearly lower.

Each novel is analysed clean and with each damage of :mod:`tests.processors.damage`;
every damaged copy must score at least 0.15 below the clean one, and the check that
fails must say where (chapter, offset, a sample).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.processors.analyze.decoding import decode
from tests.processors.damage import VARIANTS
from tests.processors.helpers import CORPUS, analyze_text

NOVELS = ["alice_in_wonderland.en.utf8.txt", "madame_bovary.fr.cp1252.txt"]
EXPECTED_CHECK = {
    "gibberish": "gibberish",
    "no_line_breaks": "missing_paragraph_breaks",
    "truncated": "truncated",
    "pasted_twice": "duplicate_paragraphs",
    "mojibake": "mojibake",
}


@pytest.fixture(scope="module", params=NOVELS)
def novel(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, Any]]:
    text = decode((CORPUS / request.param).read_bytes()).text
    clean = analyze_text(text, tmp_path_factory.mktemp("clean")).report
    return text, clean


def test_a_clean_novel_scores_at_least_0_8(novel: tuple[str, dict[str, Any]]) -> None:
    _, clean = novel
    assert clean["quality"]["score"] >= 0.8


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_damaged_copy_scores_clearly_lower_and_says_where(
    novel: tuple[str, dict[str, Any]], variant: str, tmp_path: Path
) -> None:
    text, clean = novel
    damaged = analyze_text(VARIANTS[variant](text), tmp_path).report
    score = damaged["quality"]["score"]
    assert score <= clean["quality"]["score"] - 0.15, (variant, score)
    checks = {c["name"]: c for c in damaged["quality"]["checks"]}
    failing = checks[EXPECTED_CHECK[variant]]
    assert not failing["passed"]
    assert failing["penalty"] > 0
    assert failing["examples"], failing
    example = failing["examples"][0]
    assert set(example) == {"chapter", "offset", "sample"}
    assert example["sample"]
    assert 0 <= example["offset"] < damaged["counts"]["characters"]


def test_chapter_numbering_gaps_are_found(tmp_path: Path) -> None:
    chapters = [1, 2, 3, 5, 6, 6, 7]
    text = "".join(
        f"Chapter {n}\n\nShe walked along the river and thought about the day, the rain "
        "and the long road home.\n\n"
        for n in chapters
    )
    report = analyze_text(text, tmp_path).report
    check = next(c for c in report["quality"]["checks"] if c["name"] == "chapter_numbering")
    assert check["count"] == 2  # the gap before 5 and the repeated 6
    assert [e["chapter"] for e in check["examples"]] == [4, 6]
    assert check["examples"][0]["sample"].startswith("Chapter 5")


def test_a_text_ending_mid_sentence_is_truncated(tmp_path: Path) -> None:
    whole = "The end came slowly. She smiled and closed the book.\n"
    assert _failing(analyze_text(whole, tmp_path).report) == []
    cut = "The end came slowly. She smiled and closed the"
    assert _failing(analyze_text(cut, tmp_path).report) == ["truncated"]
    ending = "The end came slowly. She smiled and closed the book.\n\nTHE END\n"
    assert _failing(analyze_text(ending, tmp_path).report) == []
    signed = "The end came slowly. She smiled and closed the book.\n\nRouen, 1856\n"
    assert _failing(analyze_text(signed, tmp_path).report) == []


def _failing(report: dict[str, Any]) -> list[str]:
    return [c["name"] for c in report["quality"]["checks"] if not c["passed"]]
