"""Writing metrics: readability, sentence lengths, overused words, repeated phrases, pacing.

Readability
    The language's Flesch-style formula from words per sentence (W/S) and
    syllables per word (Syl/W): English Flesch reading ease ``206.835 − 1.015
    W/S − 84.6 Syl/W``; French Kandel–Moles ``207 − 1.015 W/S − 73.6 Syl/W``;
    Spanish Fernández Huerta ``206.84 − 1.02 W/S − 60 Syl/W``; German Amstad
    ``180 − W/S − 58.5 Syl/W``; Italian Flesch–Vacca ``217 − 1.3 W/S − 60
    Syl/W``; Portuguese Flesch (Martins) ``248.835 − 1.015 W/S − 84.6 Syl/W``;
    Dutch Flesch–Douma ``206.835 − 0.93 W/S − 77 Syl/W``; Russian Oborneva
    ``206.835 − 1.3 W/S − 60.1 Syl/W``. Higher is easier (about 60–70: plain
    prose). Syllables come from ``pyphen``'s hyphenation dictionaries for the
    :data:`SYLLABLE_WORDS` most frequent words, and from vowel groups for the
    rest. No formula for Chinese, Japanese or an undetermined language (null).
Overused words
    Common words of the language (its 5,000 most frequent, not stop words)
    that the book uses at least :data:`OVERUSE_FACTOR` times as often as the
    language does, at least :data:`MIN_OVERUSE` times, and writes in lower case
    at least half the time (not names): the adverbs and stock
    words an editor would cut (``very``, ``suddenly``, ``indeed``).
Repeated phrases
    Three-word phrases (case-folded, not all stop words) that recur, counted
    with a bounded-memory pass (a counter pruned of single occurrences every
    :data:`PRUNE_EVERY` phrases, over a sample of the paragraphs of a long text:
    :data:`PHRASE_SAMPLE_CHARS`) and then counted exactly in the whole text, where
    they must occur at least :data:`MIN_PHRASE` times.
Where
    For each overused word and repeated phrase: its exact count, the first
    offset in the decoded text, and the chapters where it is most frequent.
"""

from __future__ import annotations

import math
import re
import statistics
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pyphen

from app.processors.analyze.keywords import common_words, frequency_table
from app.processors.analyze.language import stop_words
from app.processors.analyze.structure import Body

FORMULAS: dict[str, tuple[str, float, float, float]] = {
    "en": ("Flesch reading ease", 206.835, 1.015, 84.6),
    "fr": ("Kandel–Moles", 207.0, 1.015, 73.6),
    "es": ("Fernández Huerta", 206.84, 1.02, 60.0),
    "de": ("Amstad", 180.0, 1.0, 58.5),
    "it": ("Flesch–Vacca", 217.0, 1.3, 60.0),
    "pt": ("Flesch (Martins)", 248.835, 1.015, 84.6),
    "nl": ("Flesch–Douma", 206.835, 0.93, 77.0),
    "ru": ("Oborneva", 206.835, 1.3, 60.1),
}
"""Language → (name, constant, weight of W/S, weight of Syl/W)."""
SYLLABLE_WORDS = 2000
OVERUSE_FACTOR = 3.0
MIN_OVERUSE = 10
OVERUSED = 10
PHRASES = 10
MIN_PHRASE = 5
PRUNE_EVERY = 200_000
PHRASE_SAMPLE_CHARS = 1_000_000
"""Phrases are counted in every paragraph of a text up to this size, and in every
n-th paragraph of a longer one (n = 1 + size // PHRASE_SAMPLE_CHARS); the phrases
found are then counted exactly in the whole text."""
LENGTH_BUCKETS = (5, 10, 15, 20, 30, 40, 60)
"""Upper bounds of the sentence-length histogram's buckets (the last one is open)."""
_VOWELS = re.compile(r"[aeiouyàâäáãåæéèêëíìîïóòôöõøœúùûüÿаеёиоуыэюя]+", re.IGNORECASE)


@lru_cache(maxsize=8)
def _hyphenator(language: str) -> pyphen.Pyphen | None:
    return pyphen.Pyphen(lang=language) if language in pyphen.LANGUAGES else None


def _syllables(word: str, hyphenator: pyphen.Pyphen | None) -> int:
    if hyphenator is not None:
        return len(hyphenator.positions(word)) + 1
    return max(1, len(_VOWELS.findall(word)))


def readability(
    words: Counter[str], sentences: int, sentence_words: int, language: str
) -> dict[str, Any] | None:
    """The language's readability formula (see the module docstring), or None."""
    formula = FORMULAS.get(language)
    if formula is None or not sentences or not words:
        return None
    name, constant, per_sentence, per_syllable = formula
    hyphenator = _hyphenator(language)
    folded: Counter[str] = Counter()
    for word, count in words.items():
        if not word.isdigit():
            folded[word.lower()] += count
    total_words = sum(folded.values())
    if not total_words:
        return None
    syllables = 0
    for rank, (word, count) in enumerate(folded.most_common()):
        precise = hyphenator if rank < SYLLABLE_WORDS else None
        syllables += count * _syllables(word, precise)
    words_per_sentence = sentence_words / sentences
    syllables_per_word = syllables / total_words
    score = constant - per_sentence * words_per_sentence - per_syllable * syllables_per_word
    return {
        "formula": name,
        "score": round(score, 1),
        "words_per_sentence": round(words_per_sentence, 2),
        "syllables_per_word": round(syllables_per_word, 3),
    }


def sentence_lengths(lengths: Counter[int]) -> dict[str, Any]:
    """Mean, median, 90th percentile, longest and a histogram of words per sentence."""
    total = sum(lengths.values())
    if not total:
        return {"mean": 0.0, "median": 0, "p90": 0, "max": 0, "histogram": []}
    ordered = sorted(lengths.items())

    def percentile(share: float) -> int:
        seen = 0
        for length, count in ordered:
            seen += count
            if seen >= share * total:
                return length
        return ordered[-1][0]

    histogram = []
    low = 1
    for high in (*LENGTH_BUCKETS, None):
        count = sum(c for n, c in ordered if n >= low and (high is None or n <= high))
        histogram.append({"min": low, "max": high, "sentences": count})
        low = (high or 0) + 1
    mean = sum(n * c for n, c in ordered) / total
    return {
        "mean": round(mean, 2),
        "median": percentile(0.5),
        "p90": percentile(0.9),
        "max": ordered[-1][0],
        "histogram": histogram,
    }


def chapter_lengths(words: list[int]) -> dict[str, Any] | None:
    """Pacing: the spread of chapter lengths in words (None without chapters)."""
    if not words:
        return None
    return {
        "min": min(words),
        "max": max(words),
        "mean": round(statistics.fmean(words), 1),
        "stdev": round(statistics.pstdev(words), 1),
    }


class PhraseCounter:
    """Three-word phrases, counted with bounded memory (see the module docstring)."""

    def __init__(self, language: str) -> None:
        self.stop = stop_words(language)
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self.added = 0

    def add(self, tokens: list[str]) -> None:
        if len(tokens) < 3:
            return
        lower = list(map(str.lower, tokens))
        self.counts.update(zip(lower, lower[1:], lower[2:], strict=False))
        self.added += len(lower) - 2
        if self.added >= PRUNE_EVERY:
            self.added = 0
            for key in [k for k, c in self.counts.items() if c == 1]:
                del self.counts[key]

    def candidates(self, limit: int) -> list[str]:
        stop = self.stop
        found = [
            (count, phrase)
            for phrase, count in self.counts.items()
            if count >= 2
            and sum(1 for w in phrase if w not in stop and len(w) > 2) >= 2
            and all(w.isalpha() for w in phrase)
        ]
        found.sort(key=lambda item: (-item[0], item[1]))
        return [" ".join(phrase) for _, phrase in found[: limit + limit // 2]]


def overused_candidates(words: Counter[str], total: int, language: str) -> list[str]:
    """Common words used at least OVERUSE_FACTOR times as often as in the language."""
    table = frequency_table(language)
    if not table or not total:
        return []
    common = common_words(language, 5000)
    stop = stop_words(language)
    folded: Counter[str] = Counter()
    for word, count in words.items():
        folded[word.lower()] += count
    found = []
    for word in common:
        count = folded.get(word, 0)
        if count < max(MIN_OVERUSE, total // 20_000) or word in stop or len(word) < 3:
            continue
        if words.get(word, 0) < 0.5 * count:  # capitalised most of the time: a name
            continue
        ratio = (count / total) / table[word]
        if ratio >= OVERUSE_FACTOR and word.isalpha():
            found.append((count * math.log2(ratio), word))
    found.sort(key=lambda item: (-item[0], item[1]))
    return [word for _, word in found[:OVERUSED]]


@dataclass(frozen=True, slots=True)
class Located:
    text: str
    count: int
    offset: int
    chapters: list[int]


def locate(
    terms: list[str], body: Body, chapter_offsets: list[int], limit: int, minimum: int = 1
) -> list[Located]:
    """Exact counts (whole words, lower-case or capitalised) and where: first offset,
    top chapters.

    Each term is looked for as written and capitalised, its words joined by a space
    or a line break. Its longest word is searched with ``str.find`` (far faster than
    the regular-expression engine's scan); each hit gives the one place where the
    term would start (its words are joined by one character), which a pattern then
    checks, with the word boundaries around it, inside its chapter's span (as a
    ``findall`` over each span would: matches do not overlap, none crosses a chapter
    boundary)."""
    text = body.text
    bounds = [0, *(min(len(text), max(0, o - body.offset)) for o in chapter_offsets), len(text)]
    out: list[Located] = []
    for term in terms:
        per_chapter: Counter[int] = Counter()
        first = -1
        variants = list(dict.fromkeys((term, term[:1].upper() + term[1:])))
        for start in _occurrences(variants, text, bounds):
            per_chapter[bisect_right(bounds, start) - 1] += 1
            if first < 0 or start < first:
                first = start
        total = sum(per_chapter.values())
        if total < max(1, minimum):
            continue
        top = sorted((c for c in per_chapter if c), key=lambda c: (-per_chapter[c], c))[:3]
        out.append(Located(term, total, body.offset + first, top))
    out.sort(key=lambda item: (-item.count, item.text))
    return out[:limit]


def _occurrences(variants: list[str], text: str, bounds: list[int]) -> list[int]:
    """Where the ``variants`` of a term (the same words, the first one's initial in
    another case) start, each one counted per span of ``bounds`` without overlaps (see
    :func:`locate`). One ``str.find`` scan serves every variant: the longest word's, or
    when it is the first word, the same word without its initial."""
    if len({len(variant) for variant in variants}) > 1:  # "ß" → "SS": scan each apart
        return [s for variant in variants for s in _occurrences([variant], text, bounds)]
    words = variants[0].split()
    anchor = max(range(len(words)), key=lambda i: len(words[i]))  # the first longest
    if anchor == 0 and len(variants) > 1:
        if len(words[0]) < 4:  # a short first word: one scan per variant
            return [s for variant in variants for s in _occurrences([variant], text, bounds)]
        needle, shift = words[0][1:], 1
    else:
        needle = words[anchor]
        shift = sum(len(word) + 1 for word in words[:anchor])
    matchers = []
    for variant in variants:
        literal = r"[ \n]".join(map(re.escape, variant.split()))
        matchers.append(re.compile(rf"{literal}(?<=(?<![\w'’]){literal})(?![\w'’])").match)
    initials = [variant[0] for variant in variants]
    ends = [-1] * len(variants)  # where each variant's last match ends (no overlaps)
    starts: list[int] = []
    find = text.find
    span = 0
    hit = find(needle, shift)
    while hit >= 0:
        start = hit - shift
        initial = text[start]
        for which, match in enumerate(matchers):
            if initial != initials[which] or start < ends[which]:
                continue
            while bounds[span + 1] <= start:
                span += 1
            found = match(text, start, bounds[span + 1])
            if found is not None:
                starts.append(start)
                ends[which] = found.end()
        hit = find(needle, hit + 1)
    return starts
