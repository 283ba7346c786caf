"""Character classes and the tokenizer shared by every stage.

A *word* is one CJK character (Han ideograph, hiragana or katakana, the
ranges of the corpus ground truth) or one run of other letters and digits,
with inner apostrophes and hyphens (``didn’t``, ``waistcoat-pocket``).
Punctuation, ``々`` and markup characters are never words. The stdlib ``re``
is used rather than ``regex``: explicit ranges are about twice as fast.
"""

from __future__ import annotations

import re
from collections.abc import Callable

HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
KANA = "\u3040-\u309f\u30a0-\u30ff"
HANGUL = "\uac00-\ud7af\u1100-\u11ff\u3130-\u318f"
CJK = HAN + KANA
_NOT_LATIN = CJK + "々〆〇"

WORD_RE = re.compile(
    rf"[{CJK}]|[^\W_{_NOT_LATIN}]+(?:['’\-][^\W_{_NOT_LATIN}]+)*",
)
"""One word per match (see the module docstring)."""

LATIN_WORD_RE = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*")
"""``WORD_RE`` for a text without any CJK character: the same words, found faster."""
_CJK_OR_MARK_RE = re.compile(rf"[{_NOT_LATIN}]")


def word_finder(text: str) -> Callable[[str], list[str]]:
    """The fastest ``findall`` that finds ``WORD_RE``'s words in pieces of ``text``."""
    if _CJK_OR_MARK_RE.search(text):
        return WORD_RE.findall
    return LATIN_WORD_RE.findall


HAN_RUN_RE = re.compile(rf"[{HAN}]+")
HAN_CHAR_RE = re.compile(rf"[{HAN}]")
KANA_CHAR_RE = re.compile(rf"[{KANA}]")
HANGUL_CHAR_RE = re.compile(rf"[{HANGUL}]")
CYRILLIC_CHAR_RE = re.compile(r"[\u0400-\u04ff]")
LATIN_CHAR_RE = re.compile(r"[A-Za-z\u00c0-\u024f]")
KATAKANA_RUN_RE = re.compile(r"[\u30a1-\u30fa\u30fc]{3,}")

CJK_LANGUAGES = frozenset({"zh", "ja"})
"""Languages written without spaces: words are characters, summaries join without spaces."""


def count_words(text: str) -> int:
    """The number of words in ``text`` (see the module docstring)."""
    return len(WORD_RE.findall(text))


def is_cjk_char(char: str) -> bool:
    """True for a Han ideograph or a kana."""
    return bool(char) and (HAN_CHAR_RE.match(char) is not None or "\u3040" <= char <= "\u30ff")


def display(text: str) -> str:
    """One line for a person to read: line breaks become spaces, or nothing between CJK."""
    if "\n" not in text:
        return text.strip()
    lines = [line.strip() for line in text.split("\n")]
    out = ""
    for line in lines:
        if not line:
            continue
        if out and not (is_cjk_char(out[-1]) and is_cjk_char(line[0])):
            out += " "
        out += line
    return out
