"""Main character names, from counts the analysis pass already made.

Latin-script names are found by :mod:`.characters`.

Chinese and Japanese
    Candidates are Han bigrams and trigrams. A name is frequent, begins a run
    of Han characters (follows punctuation or kana, not the middle of a
    word), and is often followed by what follows people: a speech or action
    verb in Chinese (``宝玉道``, ``凤姐笑``), a particle or an honorific in
    Japanese (``主人は``, ``寒月君``). Score = count × share starting a run ×
    share followed so (= starts × followed / count); an n-gram overlapping a
    better-scored one (夫人 inside 王夫人, 凤姐儿 beside 凤姐) is dropped. So is
    one of the language's :data:`COMMON_CJK_WORDS` most frequent words (人間,
    学校, 今度: ``wordfreq``'s list), unless the segmenter's dictionary tags it
    as a person's name, one the segmenter's dictionary says names no one in
    particular (a pronoun or a verbal noun: :func:`.segmentation.names_no_one`;
    彼等 "they", 他们, 返事 "reply"), and, in Chinese, a collective noun: an n-gram followed
    by 都/皆/俱/齐 ("all") at least :data:`COLLECTIVE_SHARE` of the time (众人,
    "everyone"; a person's name is, about 2 % of the time).
    Mentions are the n-gram's count; the names are sorted by mentions.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from app.processors.analyze.keywords import common_words
from app.processors.analyze.language import STOP_WORDS, stop_words
from app.processors.analyze.segmentation import is_dictionary_person, names_no_one
from app.processors.analyze.text import HAN

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
COMMON_CJK_WORDS = 2000
"""A name candidate among the language's most frequent words is a common noun (人間,
学校, 今度), unless the segmenter's dictionary tags it as a person's name."""
_ALL_ADVERBS = "都皆俱齐"
COLLECTIVE_SHARE = 0.1
"""Chinese: an n-gram followed this often by 都/皆/俱/齐 ("all") names a group (众人)."""
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
        if not _is_person(gram, count, texts, language):
            continue
        chosen.append((gram, count))
        if len(chosen) == limit:
            break
    chosen.sort(key=lambda item: (-item[1], item[0]))
    return chosen


def _is_person(gram: str, count: int, texts: list[str], language: str) -> bool:
    """Not a common word of the language (unless the segmenter's dictionary knows it as
    a person's name), not a pronoun or a verbal noun, and in Chinese not a collective
    noun (see the module docstring)."""
    if names_no_one(gram, language):
        return False
    if gram in common_words(language, COMMON_CJK_WORDS) and not is_dictionary_person(
        gram, language
    ):
        return False
    if language == "zh":
        together = sum(text.count(gram + adverb) for text in texts for adverb in _ALL_ADVERBS)
        if together >= COLLECTIVE_SHARE * count:
            return False
    return True
