"""Writing metrics: readability, sentence lengths, pacing, overused words, repeated phrases."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from app.processors.analyze.writing import readability, sentence_lengths
from tests.processors.helpers import analyze_text

STORY = [
    "Margaret suddenly walked along the quiet harbour wall at dusk.",
    "The fishing boats suddenly came home late, one after another, in the rain.",
    "At the end of the day she climbed the stairs of the lighthouse.",
    "Her brother mended the nets while the gulls circled over the water.",
]


def _novel() -> str:
    chapters = []
    for number in range(1, 5):
        body = " ".join(STORY * (number + 1))
        chapters.append(f"Chapter {number}\n\n{body}\n\n{body}\n\n")
    return "".join(chapters)


def test_writing_metrics_end_to_end(tmp_path: Path) -> None:
    text = _novel()
    report = analyze_text(text, tmp_path).report
    writing = report["writing"]
    assert list(writing) == [
        "readability",
        "sentence_lengths",
        "chapter_lengths",
        "overused_words",
        "repeated_phrases",
    ]
    readable = writing["readability"]
    assert readable["formula"] == "Flesch reading ease"
    assert 50 < readable["score"] < 100  # plain prose
    lengths = writing["sentence_lengths"]
    assert lengths["max"] == 13
    assert lengths["median"] == 12
    assert sum(b["sentences"] for b in lengths["histogram"]) == report["counts"]["sentences"]
    words = [c["words"] for c in report["chapters"]]
    assert writing["chapter_lengths"]["min"] == min(words)
    assert writing["chapter_lengths"]["max"] == max(words)
    # "suddenly" is common in English, but not twice in every four sentences
    overused = {w["term"]: w for w in writing["overused_words"]}
    assert "suddenly" in overused
    suddenly = overused["suddenly"]
    assert suddenly["count"] == text.count("suddenly")
    assert suddenly["first_offset"] == text.index("suddenly")
    assert suddenly["chapters"][0] == 4  # the longest chapter uses it most
    phrases = {p["phrase"]: p for p in writing["repeated_phrases"]}
    assert len(phrases) == 10  # all repeated alike: the first ten, alphabetically
    assert list(phrases) == sorted(phrases)
    assert phrases["came home late"]["count"] == text.count("came home late")
    assert phrases["came home late"]["chapters"] == [4, 3, 2]
    assert all(c["dialogue_ratio"] == 0.0 for c in report["chapters"])


def test_readability_per_language_and_none_without_a_formula() -> None:
    words = Counter({"the": 10, "cat": 5, "sat": 5, "on": 5, "mat": 5})
    english = readability(words, 5, 30, "en")
    assert english is not None
    assert english["score"] > 90
    assert readability(words, 5, 30, "zh") is None
    assert readability(Counter(), 0, 0, "en") is None
    french = readability(Counter({"extraordinairement": 3}), 1, 3, "fr")
    assert french is not None
    assert french["formula"] == "Kandel–Moles"
    assert french["score"] < 0  # a long word in a short sentence: hard


def test_sentence_length_percentiles() -> None:
    lengths = sentence_lengths(Counter({3: 5, 10: 4, 70: 1}))
    assert (lengths["median"], lengths["p90"], lengths["max"]) == (3, 10, 70)
    assert lengths["histogram"][-1] == {"min": 61, "max": None, "sentences": 1}
