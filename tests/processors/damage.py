"""Damaged copies of a manuscript, for the quality score's tests.

Each function takes a clean text and returns it with one kind of damage a
manuscript really suffers; all are deterministic (a fixed seed).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

_WORD = re.compile(r"[^\W\d_]+")


def gibberish(text: str, share: float = 0.3) -> str:
    """``share`` of the words replaced by random letter strings of the same length."""
    rng = random.Random(15)
    letters = "bcdfghjklmnpqrstvwxz"

    def swap(match: re.Match[str]) -> str:
        word = match.group()
        if rng.random() >= share:
            return word
        if "\u3400" <= word[0] <= "\u9fff":  # CJK: random rare ideographs
            return "".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in word)
        return "".join(rng.choice(letters) for _ in word)

    return _WORD.sub(swap, text)


def no_line_breaks(text: str) -> str:
    """Every line break removed (lines joined with a space, or nothing between CJK)."""
    return re.sub(r"\s*\n\s*", " ", text)


def truncated(text: str, at: float = 0.4) -> str:
    """Cut at ``at`` of the text, inside a word or just after one (mid-sentence)."""
    cut = int(len(text) * at)
    while cut < len(text) and not text[cut - 1].isalpha():
        cut += 1
    return text[:cut]


def pasted_twice(text: str) -> str:
    """The whole text, twice."""
    return text + "\n\n" + text


def mojibake(text: str) -> str:
    """UTF-8 bytes read as cp1252 (``é`` → ``Ã©``), what a wrong import does."""
    return text.encode("utf-8").decode("cp1252", errors="replace")


VARIANTS: dict[str, Callable[[str], str]] = {
    "gibberish": gibberish,
    "no_line_breaks": no_line_breaks,
    "truncated": truncated,
    "pasted_twice": pasted_twice,
    "mojibake": mojibake,
}
