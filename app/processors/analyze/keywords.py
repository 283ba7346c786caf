"""Distinctive keywords: what this book says more than its language does.

Each candidate term is scored by *keyness*, ``count × log2(p_book / p_language)``,
where ``p_book`` is its share of the book's words and ``p_language`` its
frequency in the language in general (``wordfreq``'s lists, 40 languages,
bundled with the package; floored at :data:`FREQUENCY_FLOOR` so that words the
list does not know are not infinitely distinctive). Terms among the
language's :data:`COMMON_WORDS` most frequent words are never keywords, nor
are stop words, verbs of speech (``replied``, ``reprit``: how any novel
tells its dialogue, not what this one is about), numbers, words of fewer
than 3 letters (CJK: 2 characters), words seen fewer than :data:`MIN_COUNT`
times, and names (words written capitalised most of the time, and the
character names reported apart).

Latin script: words are case-folded, a possessive ``’s`` and French elisions
(``l’``, ``d’``…) are removed, and a plural is merged into its singular when the
book uses both (``whales`` → ``whale``; ``-ies`` → ``-y``, ``-es``, ``-s``,
French ``-x``). Chinese and Japanese: the words of a real segmenter
(:mod:`.segmentation`). Languages without a frequency list fall back to the
most frequent non-stop words.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from wordfreq import available_languages, get_frequency_dict, top_n_list

from app.processors.analyze.characters import SPEECH_VERBS
from app.processors.analyze.language import stop_words
from app.processors.analyze.text import CJK, HAN_CHAR_RE

KEYWORDS = 20
COMMON_WORDS = 1000
"""The language's most frequent words: never keywords."""
FREQUENCY_FLOOR = 1e-7
MIN_COUNT = 4
CAPITALISED_SHARE = 0.5
"""A word capitalised at least this share of the time is a name, not a keyword."""

_CJK_CHAR = re.compile(f"[{CJK}]")
_MIXED = re.compile(r"\d[^\W\d_]|[^\W\d_]\d")
_POSSESSIVE = re.compile(r"['’]s$")
_ELISION = re.compile(r"^(?:[cdjlmnst]|qu|jusqu|lorsqu|puisqu|quoiqu)['’]")


@lru_cache(maxsize=8)
def frequency_table(language: str) -> dict[str, float]:
    """Word → frequency in the language in general (empty without a list)."""
    if language not in available_languages():
        return {}
    return get_frequency_dict(language)


@lru_cache(maxsize=16)
def common_words(language: str, size: int = COMMON_WORDS) -> frozenset[str]:
    """The language's ``size`` most frequent words (empty without a list)."""
    if language not in available_languages():
        return frozenset()
    return frozenset(top_n_list(language, size))


def frequency(term: str, language: str) -> float:
    """How often ``term`` occurs in the language in general (0 when unknown)."""
    return frequency_table(language).get(term, 0.0)


def _singular(term: str, terms: Counter[str], language: str) -> str:
    if language == "en" and term.endswith("ies") and term[:-3] + "y" in terms:
        return term[:-3] + "y"
    if term.endswith("es") and term[:-2] in terms and language == "en":
        return term[:-2]
    if term.endswith(("s", "x")) and term[:-1] in terms and len(term) > 3:
        return term[:-1]
    return term


def latin_keywords(
    words: Counter[str], language: str, names: Iterable[str], limit: int = KEYWORDS
) -> list[tuple[str, int]]:
    """Keywords from case-sensitive word counts (see the module docstring)."""
    stop = stop_words(language)
    folded: Counter[str] = Counter()
    capitalised: Counter[str] = Counter()
    for word, count in words.items():
        term = word.lower()
        if "'" in term or "’" in term:
            term = _ELISION.sub("", _POSSESSIVE.sub("", term))
            if "'" in term or "’" in term:
                continue
        if len(term) >= 3 and term not in stop and term.isalpha():
            folded[term] += count
            if word[0].isupper():
                capitalised[term] += count
    name_words = {part.lower() for name in names for part in name.split()}
    merged: Counter[str] = Counter()
    merged_caps: Counter[str] = Counter()
    for term, count in folded.items():
        base = _singular(term, folded, language)
        merged[base] += count
        merged_caps[base] += capitalised[term]
    candidates = {
        term: count
        for term, count in merged.items()
        if term not in name_words
        and term not in SPEECH_VERBS
        and merged_caps[term] < CAPITALISED_SHARE * count
    }
    return rank(candidates, sum(words.values()), language, limit)


def rank(
    terms: dict[str, int], total: int, language: str, limit: int = KEYWORDS
) -> list[tuple[str, int]]:
    """The ``limit`` most distinctive of ``terms`` (term → count in the book), best first,
    ties alphabetical."""
    common = common_words(language)
    frequencies = frequency_table(language)
    total = max(total, 1)
    minimum = max(MIN_COUNT, total // 50_000)
    scored: list[tuple[float, str, int]] = []
    for term, count in terms.items():
        if count < minimum or term in common or term.isdigit():
            continue
        if frequencies:
            reference = max(frequencies.get(term, 0.0), FREQUENCY_FLOOR)
            score = count * math.log2((count / total) / reference)
        else:
            score = float(count)
        if score > 0:
            scored.append((score, term, count))
    best = heapq.nsmallest(limit, scored, key=lambda item: (-item[0], item[1]))
    return [(term, count) for _, term, count in best]


def cjk_keywords(
    counts: Counter[str], total: int, language: str, names: Iterable[str], limit: int = KEYWORDS
) -> list[tuple[str, int]]:
    """Keywords from a segmenter's word counts (see the module docstring): words with a
    CJK character, not stop words, not a character's name nor holding one (寒月君)."""
    stop = stop_words(language)
    names = list(names)
    candidates = {
        term: count
        for term, count in counts.items()
        if term not in stop
        and _CJK_CHAR.search(term) is not None
        and not any(name in term or term in name for name in names)
    }
    return rank(candidates, total, language, limit)


@dataclass(slots=True)
class Unknown:
    """Words (CJK: Han characters) the language does not know."""

    count: int = 0
    checked: int = 0
    samples: list[str] = field(default_factory=list)


def unknown_latin_words(words: Counter[str], language: str) -> Unknown:
    """Lower-case words missing from the language's frequency list, and words mixing
    letters and digits. Capitalised words (names) and numbers are not looked up; a
    hyphenated word is known when each part is; elisions and possessives are removed."""
    table = frequency_table(language)
    out = Unknown()
    if not table:
        return out
    unknown: Counter[str] = Counter()
    for word, count in words.items():
        if word[0].isupper() or word.isdigit():
            continue
        out.checked += count
        if _MIXED.search(word):
            unknown[word] += count
            continue
        folded = _ELISION.sub("", word.lower().replace("’", "'"))
        for part in folded.split("-"):
            if part and part not in table and part.removesuffix("'s") not in table:
                unknown[word] += count
                break
    out.count = sum(unknown.values())
    out.samples = [w for w, _ in sorted(unknown.items(), key=lambda i: (-i[1], i[0]))[:5]]
    return out


def unknown_han_characters(texts: list[str], language: str) -> Unknown:
    """Han characters the language's frequency list does not know on their own."""
    table = frequency_table(language)
    out = Unknown()
    if not table:
        return out
    chars: Counter[str] = Counter()
    for text in texts:
        chars.update(HAN_CHAR_RE.findall(text))
    unknown = {c: n for c, n in chars.items() if c not in table}
    out.checked = sum(chars.values())
    out.count = sum(unknown.values())
    out.samples = [c for c, _ in sorted(unknown.items(), key=lambda i: (-i[1], i[0]))[:5]]
    return out
