"""Every analysis stage is linear in its input: adversarial texts at n and 4n characters.

A scaling check, not a timing assertion: each text is analysed at two sizes and
the ratio of the times must stay well under the square of the size ratio
(quadratic paths gave 14–16x for 4x the text). The stages run from the decoded
text (body, headings, language, the analysis pass, quality checks), so the
figures do not include decoding. Each time is the best of two runs, with a floor
so that timer noise on tiny runs cannot fail the check.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from app.processors.analyze.analysis import analyse
from app.processors.analyze.language import detect_language
from app.processors.analyze.quality import assess
from app.processors.analyze.sentences import split_sentences
from app.processors.analyze.structure import (
    find_body,
    find_headings,
    line_mode,
    segments,
    select_chapters,
)

SIZE = 25_000
FACTOR = 4
MAX_RATIO = 8.0
FLOOR_SECONDS = 0.05


def _pipeline(text: str) -> None:
    body = find_body(text)
    by_line = line_mode(body.text)
    headings = find_headings(body.text, aozora=body.boilerplate == "aozora", by_line=by_line)
    chapters, parts = select_chapters(headings)
    language = detect_language(body.text)
    analysis = analyse(
        body,
        segments(body.text, chapters, parts),
        language=language,
        by_line=by_line,
        progress=lambda fraction: None,
    )
    assess(body, analysis, language)


def _han(n: int) -> str:
    """n Han characters, no punctuation, no repeats nearby."""
    return "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(n))


CASES: dict[str, Callable[[int], str]] = {
    "dots then a letter": lambda n: "." * n + "x",
    "exclamations then lower case": lambda n: "!" * n + " a",
    "ellipses": lambda n: "…" * n + "x",
    "CJK marks then a quotation particle": lambda n: "。" * n + "と",
    "mixed Latin and CJK marks": lambda n: "!。" * (n // 2) + "と",
    "abbreviations": lambda n: "Mr. " * (n // 4),
    "no whitespace at all": lambda n: "a" * n,
    "one giant line of words": lambda n: "word " * (n // 5),
    "hyphens and apostrophes": lambda n: "a-b'" * (n // 4) + "-",
    "repeated BOOK headings": lambda n: "".join(f"BOOK {i}\n\n" for i in range(1, n // 9)),
    "distinct BOOK headings with prose": lambda n: "".join(
        f"\n\nBOOK {i % 9999 + 1}\n\nSome words here to read on.\n" for i in range(n // 44)
    ),
    "chapter headings": lambda n: "".join(
        f"\n\nCHAPTER {i % 9999 + 1}\n\n" for i in range(n // 16)
    ),
    "markdown headings": lambda n: "\n\n# Title\n\n" * (n // 11),
    "roman numeral lines": lambda n: "\n\nI\n\n" * (n // 5),
    "one word per line": lambda n: "a\n" * (n // 2),
    "a newline and spaces": lambda n: "\n" + " " * n + "x",
    "opening quotes": lambda n: "“" * n,
    "straight quotes": lambda n: '"' * n,
    "nested quotes": lambda n: "“‘“‘ “a” ’ ” ’" * (n // 14),
    "dialogue dashes": lambda n: "— " * (n // 2),
    "capitalised words": lambda n: " ".join(f"Name{i}" for i in range(n // 8)),
    "CJK without punctuation": _han,
    "a repeated CJK name": lambda n: "宝玉道" * (n // 3),
    "aozora heading attack": lambda n: "本文\n" + "［＃「" * (n // 3) + "」は中見出し］\n底本：x\n",
    "aozora headings": lambda n: (
        "本文\n" + "［＃「見出し」は中見出し］\n" * (n // 14) + "底本：x\n"
    ),
    "kana runs in Chinese": lambda n: _han(n // 2) + "あ" * (n // 2) + "x" + _han(n // 2),
    "gutenberg markers": lambda n: "*** " * (n // 4),
}


def _best_time(text: str) -> float:
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        _pipeline(text)
        best = min(best, time.perf_counter() - start)
    return max(best, FLOOR_SECONDS)


@pytest.mark.parametrize("make", CASES.values(), ids=list(CASES))
def test_analysis_scales_linearly(make: Callable[[int], str]) -> None:
    small, large = make(SIZE), make(SIZE * FACTOR)
    ratio = _best_time(large) / _best_time(small)
    assert ratio < MAX_RATIO, f"{FACTOR}x the text took {ratio:.1f}x the time"


def test_sentence_splitter_on_a_long_run_of_dots_is_fast_and_correct() -> None:
    # the reproduction: 30 KB of dots and a letter (23.7 s before)
    start = time.perf_counter()
    sentences = split_sentences("." * 30720 + "x")
    assert time.perf_counter() - start < 2.0
    assert sentences == ["." * 30720 + "x"]
    assert split_sentences("Wait... What? No!!! Yes.") == ["Wait...", "What?", "No!!!", "Yes."]
    assert split_sentences("「ああ！！」と言った。次だ。") == ["「ああ！！」と言った。", "次だ。"]
