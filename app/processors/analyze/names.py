"""Main character names, from counts the analysis pass already made.

Latin script
    A name is a capitalised word (``Elizabeth``, ``Léon``; a possessive ``’s``
    folded in) that is *capitalised where it is not sentence-initial* at least
    :data:`MIN_MID_SENTENCE` times, and at least
    :data:`CAPITALISED_SHARE` of the time it appears mid-sentence (so
    ``Whale`` in "the White Whale" does not count, "whale" being common). Stop
    words, honorifics (:data:`HONORIFICS`: Mr, Mrs, Lady, Captain, Madame, …)
    and calendar or nationality words (:data:`NOT_NAMES`) are excluded.
    Mentions are the capitalised occurrences, sentence starts included.

Chinese and Japanese
    Candidates are Han bigrams and trigrams. A name is frequent, begins a run
    of Han characters (follows punctuation or kana, not the middle of a
    word), and is often followed by what follows people: a speech or action
    verb in Chinese (``宝玉道``, ``凤姐笑``), a particle or an honorific in
    Japanese (``主人は``, ``寒月君``). Score = count × share starting a run ×
    share followed so (= starts × followed / count); an n-gram overlapping a
    better-scored one (夫人 inside 王夫人, 凤姐儿 beside 凤姐) is dropped.
    Mentions are the n-gram's count.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from app.processors.analyze.language import STOP_WORDS, stop_words
from app.processors.analyze.text import HAN

MIN_MID_SENTENCE = 3
CAPITALISED_SHARE = 0.8
_HONORIFICS = """mr mrs miss ms dr sir madam madame mademoiselle monsieur mme mlle messrs
lady lord captain capt colonel col general major lieutenant sergeant professor prof reverend
rev saint st uncle aunt father mother brother sister doctor master mistress dame don doña
señor señora herr frau fräulein signor signora"""
HONORIFICS = frozenset(_HONORIFICS.split())
"""Titles written before a name: never names themselves."""
_NOT_NAMES = """monday tuesday wednesday thursday friday saturday sunday january
february march april may june july august september october november december lundi mardi
mercredi jeudi vendredi samedi dimanche janvier février mars avril mai juin juillet août
septembre octobre novembre décembre english french german dutch spanish italian american
british irish scotch scottish indian christian christians god heaven chapter book part
volume contents illustration project gutenberg ebook dieu"""
NOT_NAMES = frozenset(_NOT_NAMES.split())
"""Capitalised words that are not people: days, months, nationalities, book parts."""

_POSSESSIVE = re.compile(r"['’]s$")
_ZH_FOLLOWERS = "道说笑听忙便问叹哭看走想答喝劝骂拉"
_JA_FOLLOWERS = "はがのもとにをへで君様氏さ"
_CJK_MIN_COUNT = 5
_BIGRAMS = re.compile(rf"(?=([{HAN}]{{2}}))")
_RUN_STARTS = {size: re.compile(rf"(?<![{HAN}])([{HAN}]{{{size}}})") for size in (2, 3)}
_FOLLOWED = {
    (language, size): re.compile(rf"(?=([{HAN}]{{{size}}})[{followers}])")
    for language, followers in (("zh", _ZH_FOLLOWERS), ("ja", _JA_FOLLOWERS))
    for size in (2, 3)
}
TRIGRAM_CANDIDATES = 150
"""Trigrams counted in full: the most often followed ones that also start runs."""


@dataclass(slots=True)
class CjkStats:
    """Han n-gram counts gathered over the body (see :func:`cjk_stats`)."""

    bigrams: Counter[str] = field(default_factory=Counter)
    starts: Counter[str] = field(default_factory=Counter)
    followed: Counter[str] = field(default_factory=Counter)


def cjk_stats(texts: list[str], language: str) -> CjkStats:
    """Count every Han bigram, and the bigrams and trigrams that start a Han run or are
    followed by a name's usual follower (see the module docstring), over ``texts``.

    Overlapping matches come from zero-width look-aheads, so the counting runs in
    the regular-expression engine and ``Counter``'s C loop, not in Python.
    """
    stats = CjkStats()
    key = "ja" if language == "ja" else "zh"
    for text in texts:
        stats.bigrams.update(_BIGRAMS.findall(text))
        for size in (2, 3):
            stats.starts.update(_RUN_STARTS[size].findall(text))
            stats.followed.update(_FOLLOWED[key, size].findall(text))
    return stats


def cjk_names(
    stats: CjkStats, texts: list[str], language: str, limit: int
) -> list[tuple[str, int]]:
    """The ``limit`` best-scored names with their counts (see the module docstring)."""
    stop = stop_words(language)
    stop_chars = (
        frozenset(w for w in STOP_WORDS["zh"] if len(w) == 1) if language == "zh" else frozenset()
    )

    def usable(gram: str, count: int) -> bool:
        return count >= _CJK_MIN_COUNT and gram not in stop and stop_chars.isdisjoint(gram)

    counts = {g: c for g, c in stats.bigrams.items() if usable(g, c)}
    trigrams = sorted(
        (g for g, c in stats.followed.items() if len(g) == 3 and stats.starts[g] and usable(g, c)),
        key=lambda g: (-min(stats.followed[g], stats.starts[g]), g),
    )[:TRIGRAM_CANDIDATES]
    for gram in trigrams:
        counts[gram] = sum(text.count(gram) for text in texts)
    scored: list[tuple[float, str, int]] = []
    for gram, count in counts.items():
        score = stats.starts[gram] * stats.followed[gram] / count
        if score > 0:
            scored.append((score, gram, count))
    scored.sort(key=lambda item: (-item[0], item[1]))
    chosen: list[tuple[str, int]] = []
    for _, gram, count in scored:
        if any(gram in name or name in gram for name, _ in chosen):
            continue
        chosen.append((gram, count))
        if len(chosen) == limit:
            break
    return chosen


def latin_names(
    words: Counter[str], initial: Counter[str], language: str, limit: int
) -> list[tuple[str, int]]:
    """Names from case-sensitive word counts and sentence-initial word counts."""
    capitalised: Counter[str] = Counter()
    at_start: Counter[str] = Counter()
    for word, count in words.items():
        if not word[0].isupper():
            continue
        base = _POSSESSIVE.sub("", word) if word[-1] in "sS" else word
        if "'" in base or "’" in base:
            continue  # a contraction (I’ve, O’er) or an elision (L'abbé), not a name
        if base[1:].islower():
            capitalised[base] += count
            at_start[base] += initial.get(word, 0)
    stop = stop_words(language) | STOP_WORDS["en"]
    found: list[tuple[str, int]] = []
    for name, count in capitalised.items():
        folded = name.lower()
        if len(name) < 2 or folded in stop or folded in HONORIFICS or folded in NOT_NAMES:
            continue
        mid = count - at_start[name]
        lower = words.get(folded, 0) + words.get(f"{folded}’s", 0) + words.get(f"{folded}'s", 0)
        if mid < MIN_MID_SENTENCE or mid < CAPITALISED_SHARE * (mid + lower):
            continue
        found.append((name, count))
    found.sort(key=lambda item: (-item[1], item[0]))
    return found[:limit]
