"""Words of Chinese and Japanese text, from real segmenters.

Chinese: ``jieba`` (its bundled dictionary, no HMM for unknown words: faster,
and the book's own frequent names are found by :mod:`.names`). Japanese:
``fugashi`` (MeCab) with the ``unidic-lite`` dictionary, both installed from
PyPI with their data: nothing is downloaded at run time.

A *word* is a token holding at least one letter or CJK character (punctuation,
spaces and symbols are not words).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from app.processors.analyze.text import CJK

MAX_PIECE = 2000
_WORDY = re.compile(rf"[{CJK}]|[^\W\d_]")
_JA_CONTENT = frozenset({"名詞"})
_JA_NOT_CONTENT = frozenset({"数詞", "副詞可能", "助数詞可能"})
"""Numerals and nouns used as adverbs (少々, 今度) are not content words."""


@dataclass(slots=True)
class Segmented:
    words: int = 0
    """Word tokens in the text."""
    counts: Counter[str] = field(default_factory=Counter)
    """Nouns of two or more characters → occurrences (Japanese: unidic's nouns, not
    numerals or adverbial nouns; Chinese: words jieba's dictionary tags as nouns, or
    does not know)."""


@lru_cache(maxsize=1)
def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


@lru_cache(maxsize=1)
def _tagger() -> Any:
    import fugashi

    return fugashi.Tagger()


def segment(texts: list[str], language: str) -> Segmented:
    """Segment ``texts`` (Chinese or Japanese) and count their words."""
    out = Segmented()
    wordy = _WORDY.search
    if language == "zh":
        cut = _jieba().lcut
        for text in texts:
            for piece in _pieces(text):
                words = [w for w in cut(piece, HMM=False) if wordy(w)]
                out.words += len(words)
                out.counts.update(w for w in words if len(w) >= 2)
    if language == "zh":
        tags = _posseg_tags()
        for word in [w for w in out.counts if not tags.get(w, "n").startswith("n")]:
            del out.counts[word]
    else:
        tagger = _tagger()
        for text in texts:
            for piece in _pieces(text):
                for token in tagger(piece):
                    surface = token.surface
                    if not wordy(surface):
                        continue
                    out.words += 1
                    if len(surface) >= 2:  # only then the (slower) part of speech
                        pos = token.pos.split(",")
                        if pos[0] in _JA_CONTENT and _JA_NOT_CONTENT.isdisjoint(pos[1:]):
                            out.counts[surface] += 1
    return out


def _pieces(text: str) -> list[str]:
    """``text`` cut at line breaks, and lines longer than :data:`MAX_PIECE` cut after a
    sentence mark or, without one, every MAX_PIECE characters: the segmenters' cost per
    call stays bounded, so segmentation is linear in the text."""
    out: list[str] = []
    for line in text.split("\n"):
        while len(line) > MAX_PIECE:
            cut = max(line.rfind(mark, 0, MAX_PIECE) for mark in "。！？")
            cut = cut + 1 if cut > 0 else MAX_PIECE
            out.append(line[:cut])
            line = line[cut:]
        if line:
            out.append(line)
    return out


def is_dictionary_person(word: str, language: str) -> bool:
    """True when the segmenter's dictionary knows ``word`` as a person's name."""
    if language == "zh":
        return _posseg_tags().get(word, "").startswith("nr")
    tokens = list(_tagger()(word))
    return len(tokens) == 1 and tokens[0].feature.pos3 == "人名"


_JA_POINTING = frozenset("彼此其何誰")
"""Roots of Japanese pronouns that point at someone rather than name them: the
demonstratives (ko-so-a-do: 此 this, 其 that, 彼 that one, he; 何 which) and 誰 who."""


def names_no_one(word: str, language: str) -> bool:
    """True when the segmenter's dictionary says ``word`` cannot be a person's name.

    Chinese: jieba tags it as a pronoun (``r``: 他们, 咱们, 自己). Japanese: unidic
    parses it as a pronoun (代名詞) followed by a suffix (a plural or group: 彼等,
    君達), or as a pronoun built on a pointing root (:data:`_JA_POINTING`: 彼女, 此奴),
    or as one verbal noun (サ変可能: 返事 "reply", an act, not a person). A
    first-person pronoun alone stays possible: a first-person narrator is named so
    (吾輩 in 吾輩は猫である)."""
    if language == "zh":
        return _posseg_tags().get(word, "") == "r"
    if language != "ja":
        return False
    tokens = list(_tagger()(word))
    if not tokens:
        return False
    first = tokens[0].feature
    if first.pos1 == "代名詞":
        if len(tokens) > 1 and all(t.feature.pos1 == "接尾辞" for t in tokens[1:]):
            return True
        return len(tokens) == 1 and word[0] in _JA_POINTING
    return len(tokens) == 1 and first.pos1 == "名詞" and first.pos3 == "サ変可能"


@lru_cache(maxsize=1)
def _posseg_tags() -> dict[str, str]:
    import jieba.posseg

    _jieba()
    tags: dict[str, str] = jieba.posseg.dt.word_tag_tab
    return tags
