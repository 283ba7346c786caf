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
from functools import cache

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


_HIGH_LEADS = tuple(bytes([lead]) for lead in (*range(0xE3, 0xEA), *range(0xEF, 0xF5)))
"""The UTF-8 lead bytes of U+3000–U+9FFF and of U+F000 upwards: every CJK character and
mark (:data:`_NOT_LATIN`) and every character past the Basic Multilingual Plane."""
_LEAD_CHUNK = 1 << 20


def _may_be_high(text: str) -> bool:
    """False when ``text`` holds no character of :data:`_HIGH_LEADS`' ranges: none of
    their lead bytes is in its UTF-8 form (a ``memchr`` per lead byte, where a
    character-class search costs a Unicode table lookup per character). Encoded a
    megabyte at a time, so the copy stays small."""
    if text.isascii():
        return False
    for start in range(0, len(text), _LEAD_CHUNK):
        encoded = text[start : start + _LEAD_CHUNK].encode("utf-8", "surrogatepass")
        if any(map(encoded.__contains__, _HIGH_LEADS)):
            return True
    return False


_C1_CONTROL = re.compile(rb"\xc2[\x80-\x9f]")


def count_controls(text: str, ascii_controls: bytes) -> int:
    """How many characters of ``text`` are among ``ascii_controls`` (code points below
    0x80, as bytes) or C1 controls (U+0080–U+009F), counted on its UTF-8 form a
    megabyte at a time: ``bytes.translate`` deletes the first (one byte each), and the
    second are ``\\xc2`` then 0x80–0x9F, searched only where ``\\xc2`` occurs. Both
    run in C, without the Unicode lookup a character-class search makes per
    character (half the time of one on a 10 MB text)."""
    count = 0
    for start in range(0, len(text), _LEAD_CHUNK):
        encoded = text[start : start + _LEAD_CHUNK].encode("utf-8", "surrogatepass")
        count += len(encoded) - len(encoded.translate(None, ascii_controls))
        if b"\xc2" in encoded:
            count += len(_C1_CONTROL.findall(encoded))
    return count


def word_finder(text: str) -> Callable[[str], list[str]]:
    """The fastest ``findall`` of the two patterns that finds ``WORD_RE``'s words in
    pieces of ``text``."""
    if _may_be_high(text) and _CJK_OR_MARK_RE.search(text):
        return WORD_RE.findall
    return LATIN_WORD_RE.findall


@cache
def _bmp_latin_word_re() -> re.Pattern[str]:
    """``LATIN_WORD_RE`` for a text of the Basic Multilingual Plane: the same pattern
    with ``[^\\W_]`` written out as the ranges of the plane's characters it matches
    (found by the engine itself, so the same set). The engine reads such a class with
    one table lookup per character instead of a Unicode category check: about 25 %
    faster. Built once (~15 ms), on first use."""
    plane = "".join(map(chr, range(0x10000)))
    spans = [(m.start(), m.end() - 1) for m in re.finditer(r"[^\W_]+", plane)]
    letters = "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in spans)
    return re.compile(rf"[{letters}]+(?:['’\-][{letters}]+)*")


def bulk_word_finder(text: str) -> Callable[[str], list[str]]:
    """:func:`word_finder` for tokenising a long text piece by piece: the same words,
    found with the written-out class of :func:`_bmp_latin_word_re` when ``text`` has
    no CJK character and no character past the Basic Multilingual Plane (the class
    leaves those out)."""
    if _may_be_high(text):
        return word_finder(text)
    return _bmp_latin_word_re().findall


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
