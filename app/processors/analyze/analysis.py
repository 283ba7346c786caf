"""The analysis pass: one walk over segments → paragraphs → sentences → words.

Everything is gathered in that single pass (word counts, sentence and
paragraph counts, case-sensitive word frequencies,
lexical diversity windows, dialogue, quality counters, summary candidates),
so the cost stays linear and close to one tokenisation of the text.

Definitions
    words               :mod:`text` (CJK characters one each, Latin runs as tokens),
                        counted over the whole body, headings included.
    sentences           sentences (:mod:`sentences`) holding at least one word.
    paragraphs          non-empty paragraphs outside heading lines.
    average_sentence_length   words in sentences / sentences.
    dialogue_ratio      characters inside quotation marks (“…”, "…", «…», 「…」,
                        『…』, „…“; an opening mark left open runs to the end of
                        the paragraph), or in paragraphs opened by a dialogue
                        dash (``—``, ``–``, ``--``), over all paragraph characters.
    lexical_diversity   mean segmental type/token ratio: the mean, over
                        consecutive windows of about :data:`TTR_WINDOW` words
                        (each closed at the first paragraph end past it),
                        of distinct case-folded words / words (plain TTR for a
                        shorter text); independent of the text's length. Past
                        :data:`TTR_SAMPLE_CHARS` characters, the mean of every
                        n-th window (a regular sample).
    reading_time        words / :data:`READING_SPEED` for the language.

Summary
    Each chapter keeps its best :data:`PER_CHAPTER` sentences, in text order.
    A sentence's score is the mean weight of its words, a word's weight
    being ``log(1 + its count in the chapter)`` for content words (not stop
    words, 3+ letters, counted case-sensitively; for CJK: Han bigrams without
    stop characters, counted over the whole body) and 0
    otherwise, times ``min(1, words / 8)`` (short sentences say little).
    A synopsis is told in narration: a sentence with quotation marks weighs
    :data:`LOOSE_FACTOR` times less, and the summaries take the best-scored
    *synopsis-like* sentences (:func:`synopsis_like`: a whole declarative
    sentence, starting with a capital and ending with a period, without
    quotation marks, dialogue dashes, Markdown markup or a word repeated in a
    row), others only when a chapter has too few. At selection, a sentence naming main
    characters weighs more: times ``1 + CHARACTER_BONUS × the number of the
    :data:`MAIN_CHARACTERS` it names`` (a synopsis follows its people, and more
    than one of them). Markdown emphasis marks are removed from the sentences
    shown. Candidates have 3–60 words (CJK: 6–120). The
    overall summary splits the chapters into at most :data:`OVERALL` equal
    groups and takes each group's best chapter sentence; without chapters,
    the body is cut into :data:`OVERALL` slices of equal length instead. Ties go
    to the earlier sentence: the result is deterministic.
"""

from __future__ import annotations

import math
import operator
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import compress, repeat
from typing import Any

from app.processors.analyze.characters import HONORIFICS, Character, LatinCast
from app.processors.analyze.keywords import (
    Unknown,
    cjk_keywords,
    latin_keywords,
    unknown_han_characters,
    unknown_latin_words,
)
from app.processors.analyze.language import stop_words
from app.processors.analyze.names import cjk_names, cjk_stats
from app.processors.analyze.segmentation import segment as segment_words
from app.processors.analyze.sentences import split_sentences
from app.processors.analyze.structure import (
    AOZORA_MARKUP,
    Body,
    Heading,
    Segment,
    cjk_to_int,
    paragraphs,
)
from app.processors.analyze.text import (
    CJK_LANGUAGES,
    HAN,
    HAN_CHAR_RE,
    WORD_RE,
    bulk_word_finder,
    display,
)
from app.processors.analyze.writing import (
    MIN_PHRASE,
    OVERUSED,
    PHRASE_SAMPLE_CHARS,
    PHRASES,
    PhraseCounter,
    chapter_lengths,
    locate,
    overused_candidates,
    readability,
    sentence_lengths,
)

TTR_WINDOW = 1000
TTR_SAMPLE_CHARS = 2_500_000
"""Up to this size every type-token window is read; in a longer text every n-th
(n = 1 + size // TTR_SAMPLE_CHARS): the mean of a regular sample of windows."""
PER_CHAPTER = 3
OVERALL = 10
KEYWORDS = 20
NAMES = 20
READING_SPEED = {"zh": 300, "ja": 400, "ko": 250}
"""Words (CJK: characters) per minute; 238 for every other language (Brysbaert 2019)."""
DEFAULT_READING_SPEED = 238
LONG_PARAGRAPH_WORDS = 5000
RUN_ON_WORDS = 1000
"""A paragraph longer than this has lost its paragraph breaks (novels' longest run ~500)."""
RUN_ON_CJK = 5000
LONG_PARAGRAPH_CJK = 15000
"""The same for Chinese and Japanese, whose words are characters."""
SAMPLES = 3
DUPLICATE_MIN_CHARS = 40
LOOSE_FACTOR = 0.02
"""Weight of a sentence that is not synopsis-like (dialogue, a fragment, markup)."""
CHARACTER_BONUS = 0.3
MAIN_CHARACTERS = 10
MAX_CANDIDATES = 4000
_MAX_BONUS = 1.001 * (1 + CHARACTER_BONUS * MAIN_CHARACTERS)
"""Above the largest factor of :func:`_favour_characters` (a margin for rounding)."""
COUNT_BATCH = 65536
SHARE_PAST = 262_144
"""A stretch's word list longer than this shares its strings (see :class:`_Shared`),
then again every COUNT_BATCH words."""
WIDEN_SHARE = 0.75
"""Summary candidates kept per unit; past it, every other one is dropped (deterministic)."""

_QUOTED = re.compile(
    r"“[^”]*(?:”|\Z)|\"[^\"]*(?:\"|\Z)|«[^»]*(?:»|\Z)|「[^」]*(?:」|\Z)|『[^』]*(?:』|\Z)|„[^“”]*(?:[“”]|\Z)"
)
_DIALOGUE_DASH = ("—", "–", "--", "―")
_HAS_QUOTE = re.compile(r"[“”\"«»「」『』„]")


def _has_quote(text: str) -> bool:
    """Whether ``text`` holds a quotation mark (``_HAS_QUOTE``); in an ASCII text (known
    in O(1)) only ``"`` can be one, found by ``str.__contains__`` in C."""
    if text.isascii():
        return '"' in text
    return _HAS_QUOTE.search(text) is not None


_POSSESSIVE = re.compile(r"['’]s$")
_ELISION = re.compile(r"^(?:[cdjlmnst]|qu|jusqu|lorsqu|puisqu|quoiqu)['’]")


@dataclass(slots=True)
class ChapterResult:
    index: int
    title: str
    offset: int
    part: str | None
    words: int
    sentences: int
    paragraphs: int
    summary: list[str]
    dialogue_ratio: float = 0.0


@dataclass(slots=True)
class Analysis:
    """Everything the report needs from the text itself."""

    words: int = 0
    sentences: int = 0
    sentence_words: int = 0
    paragraphs: int = 0
    chapters: list[ChapterResult] = field(default_factory=list)
    dialogue_chars: int = 0
    paragraph_chars: int = 0
    ttr_values: list[float] = field(default_factory=list)
    keywords: list[tuple[str, int]] = field(default_factory=list)
    names: list[tuple[str, int]] = field(default_factory=list)
    characters: list[Character] = field(default_factory=list)
    segmented_words: int | None = None
    """Chinese and Japanese: words found by the segmenter (``words`` counts characters)."""
    summary: list[str] = field(default_factory=list)
    duplicate_paragraphs: int = 0
    broken_paragraphs: int = 0
    long_paragraphs: int = 0
    empty_chapters: int = 0
    run_on_words: int = 0
    """Words in paragraphs of more than RUN_ON_WORDS words (missing paragraph breaks)."""
    unknown: Unknown = field(default_factory=Unknown)
    """Words (CJK: characters) the language's frequency list does not know (gibberish)."""
    last_paragraph: str = ""
    chapter_numbers: list[tuple[int | None, str | None]] = field(default_factory=list)
    """Each chapter's number (None when its heading has none) and part."""
    sentence_lengths: Counter[int] = field(default_factory=Counter)
    """Words per sentence → sentences."""
    samples: dict[str, list[str]] = field(default_factory=dict)
    writing: dict[str, Any] = field(default_factory=dict)
    """Writing metrics (:mod:`.writing`), as they go into the report."""
    """Quality check name → up to SAMPLES paragraphs where the problem was seen."""

    @property
    def average_sentence_length(self) -> float:
        return round(self.sentence_words / self.sentences, 2) if self.sentences else 0.0

    @property
    def dialogue_ratio(self) -> float:
        if not self.paragraph_chars:
            return 0.0
        return round(self.dialogue_chars / self.paragraph_chars, 4)

    @property
    def lexical_diversity(self) -> float:
        if not self.ttr_values:
            return 0.0
        return round(sum(self.ttr_values) / len(self.ttr_values), 4)


@dataclass(slots=True)
class _Candidate:
    position: int
    text: str
    size: int
    """Its number of words."""
    start: int
    """Latin: where its words start in its stretch's word list, until it is scored
    (then -1); CJK: -1."""
    loose: bool
    """Not synopsis-like (see the module docstring)."""
    score: float = 0.0


@dataclass(slots=True)
class _Unit:
    """What a summary is chosen from: a chapter, or a slice of a body without chapters."""

    candidates: list[_Candidate] = field(default_factory=list)
    stride: int = 1
    seen: int = 0

    def keep(self, candidate: _Candidate) -> None:
        """Keep an offered candidate (every ``stride``-th one: the caller counts ``seen``)."""
        self.candidates.append(candidate)
        if len(self.candidates) > MAX_CANDIDATES:
            self.candidates = self.candidates[::2]
            self.stride *= 2


class _Pass:
    def __init__(self, language: str, by_line: bool, aozora: bool, text: str) -> None:
        self.find_words = bulk_word_finder(text)
        self.language = language
        self.cjk = language in CJK_LANGUAGES
        self.by_line = by_line
        self.aozora = aozora
        self.stop = stop_words(language)
        self.run_on = RUN_ON_CJK if self.cjk else RUN_ON_WORDS
        self.long_paragraph = LONG_PARAGRAPH_CJK if self.cjk else LONG_PARAGRAPH_WORDS
        self.result = Analysis()
        self.words: Counter[str] = Counter()
        self.window: set[str] = set()
        self.window_words = 0
        self.windows = 0
        self.window_stride = 1 + len(text) // TTR_SAMPLE_CHARS
        self.window_read = True
        """Whether the current window is in the sample (every ``window_stride``-th)."""
        self.seen_paragraphs: set[int] = set()
        self.previous_end = ""
        self.position = 0
        self.clean_texts: list[str] = []
        self.text_chapters: list[int] = []
        """The chapter (index, 0 outside chapters) of each of ``clean_texts``."""
        self.cast = None if self.cjk else LatinCast(language, len(text))
        self.phrases = None if self.cjk else PhraseCounter(language)
        self.phrase_candidates: list[str] = []
        """The phrases to locate, once the walk is over (the counter is then dropped)."""
        self.phrase_stride = 1 + len(text) // PHRASE_SAMPLE_CHARS
        self.function_words: set[str] = set()
        self.log_counts: list[float] = []
        """``math.log1p`` of each count, by count (see :meth:`_logs`)."""
        """The words seen so far that are not content words (see the module docstring)."""
        stop_chars = "".join(sorted(w for w in self.stop if len(w) == 1 and HAN_CHAR_RE.match(w)))
        skip = f"(?![{re.escape(stop_chars)}])" if stop_chars else ""
        self.content_bigrams = re.compile(rf"(?=({skip}[{HAN}]{skip}[{HAN}]))")

    # -- one paragraph at a time -------------------------------------------------------
    def paragraph(
        self, text: str, units: list[_Unit], words_out: list[str], start: int = 0, total: int = 1
    ) -> int:
        """Count one paragraph; its sentences are offered to ``units``, which share the
        ``total`` characters of a stretch evenly (``start``: where this paragraph begins).

        Its words (Latin scripts) are appended to ``words_out``, counted by the caller
        in batches: a ``Counter.update`` per paragraph costs more than the counting."""
        result = self.result
        result.paragraphs += 1
        result.paragraph_chars += len(text)
        has_quotes = _has_quote(text)
        if text.startswith(_DIALOGUE_DASH):
            result.dialogue_chars += len(text)
        elif has_quotes:
            result.dialogue_chars += sum(map(len, _QUOTED.findall(text)))
        if len(text) >= DUPLICATE_MIN_CHARS:
            key = hash(text)
            if key in self.seen_paragraphs:
                result.duplicate_paragraphs += 1
                _sample(result, "duplicate_paragraphs", text)
            else:
                self.seen_paragraphs.add(key)
        if _broken(self.previous_end, text):
            result.broken_paragraphs += 1
            _sample(result, "broken_lines", text)
        self.previous_end = text[-1]
        words = 0
        low, high = (6, 120) if self.cjk else (3, 60)
        latin = not self.cjk
        # the hot loop of the analysis: attributes and methods read into locals once
        single, count_units, span = len(units) == 1, len(units), max(1, total)
        unit = units[0]
        consumed = start
        position = self.position
        lengths = result.sentence_lengths
        find_words = self.find_words
        paragraph_tokens: list[str] = []  # counted once per paragraph: fewer calls
        base = len(words_out)  # where this paragraph's words start in the stretch's list
        for sentence in split_sentences(text):
            if not single:
                unit = units[min(count_units - 1, consumed * count_units // span)]
                consumed += len(sentence) + 1
            tokens = find_words(sentence)
            count = len(tokens)
            if not count:
                continue
            position += 1
            lengths[count] += 1
            if low <= count <= high:
                unit.seen += 1  # _Unit.offer, inlined: keep every stride-th candidate
                if not (unit.seen - 1) % unit.stride:
                    loose = has_quotes and _has_quote(sentence)
                    # Latin: its words are found again in the stretch's word list at
                    # scoring; CJK scoring reads the text itself
                    at = base + words if latin else -1
                    unit.keep(_Candidate(position, sentence, count, at, loose))
            words += count
            paragraph_tokens += tokens
        self.position = position
        # the type-token window grows a paragraph at a time (one set update per paragraph)
        if self.window_read:
            self.window.update(paragraph_tokens)
        self.window_words += words
        if self.window_words >= TTR_WINDOW:
            self._close_window()
        if latin:  # CJK counts bigrams of the whole text instead
            words_out += paragraph_tokens
            if self.phrases is not None and not result.paragraphs % self.phrase_stride:
                self.phrases.add(paragraph_tokens)
        result.sentence_words += words
        if words > self.run_on:
            result.run_on_words += words
            _sample(result, "missing_paragraph_breaks", text)
            if words > self.long_paragraph:
                result.long_paragraphs += 1
                _sample(result, "long_paragraphs", text)
        result.last_paragraph = text
        return words

    def _count(self, tokens: list[str]) -> tuple[Counter[str], list[str]]:
        """The stretch's word counts, added to the whole text's by a merge in C (one
        step per distinct word: counting every word again into the text's large
        ``Counter`` costs three times more, and ``Counter.update`` merges in Python);
        and the words no earlier stretch had."""
        counter = Counter(tokens)
        total = self.words
        keys = list(counter)
        before = list(map(total.get, keys, repeat(0)))
        dict.update(total, zip(keys, map(operator.add, before, counter.values()), strict=True))
        return counter, list(compress(keys, map(operator.not_, before)))

    def _close_window(self) -> None:
        if self.window_read:
            types = set(map(str.lower, self.window)) if not self.cjk else self.window
            self.result.ttr_values.append(len(types) / self.window_words)
            self.window = set()
        self.window_words = 0
        self.windows += 1
        self.window_read = not self.windows % self.window_stride

    # -- summaries ----------------------------------------------------------------------
    def score_latin(
        self, units: list[_Unit], counted: tuple[Counter[str], list[str]], tokens: list[str]
    ) -> None:
        """Score with the chapter's own word counts (see the module docstring);
        ``counted``: :meth:`_count`'s answer (its counts are spent here: function words
        are set to 0); ``tokens``: the stretch's words, where each candidate's ``start``
        points."""
        counter, new = counted
        function, stop = self.function_words, self.stop
        for word in new:  # words not seen in earlier chapters
            lower = word.lower()
            if len(lower) < 3 or lower in stop or lower.isdigit():
                function.add(word)
        # a function word counts 0 here, and log1p(0) = 0.0: no weight
        dict.update(counter, zip(function.intersection(counter.keys()), repeat(0)))
        logs = self._logs(max(counter.values(), default=0))
        # every word's weight, in text order, in C: its count, then that count's log1p
        # from a table (not a weight dict built per chapter: one entry per distinct
        # word); a sentence's sum is then a slice's (the same additions in the same
        # order as summing its own words' weights)
        values = list(map(logs.__getitem__, map(counter.__getitem__, tokens)))
        for unit in units:
            # the candidates that may be synopsis-like first: only when fewer than
            # PER_CHAPTER of them are can a summary reach the others (see _prune)
            deferred = _score(unit.candidates, values, True)
            if _prune(unit, self.find_words):
                if deferred:  # never chosen: PER_CHAPTER synopsis-like ones outrank them
                    unit.candidates = [c for c in unit.candidates if c.start < 0]
            elif deferred:  # too few synopsis-like candidates: the others count too
                _score(unit.candidates, values, False)
                _prune(unit, self.find_words)

    def _logs(self, largest: int) -> list[float]:
        """``math.log1p(n)`` at index ``n``, for every count up to ``largest``."""
        logs = self.log_counts
        if len(logs) <= largest:
            logs.extend(map(math.log1p, range(len(logs), largest + 1)))
        return logs

    def score_cjk(self, units: list[_Unit], bigrams: Counter[str]) -> None:
        """Score with the body's content-bigram counts (see the module docstring)."""
        grams = self.content_bigrams
        weights = {g: math.log1p(c) for g, c in bigrams.items()}
        for unit in units:
            for cand in unit.candidates:
                total = sum(map(weights.get, grams.findall(cand.text), repeat(0.0)))
                cand.score = self._adjust(total / cand.size, cand.size / 2, cand)

    @staticmethod
    def _adjust(mean: float, size: float, cand: _Candidate) -> float:
        return mean * min(1.0, size / 8) * (LOOSE_FACTOR if cand.loose else 1.0)

    # -- the whole body ---------------------------------------------------------------
    def run(
        self,
        body: Body,
        parts_of_body: list[Segment],
        progress: Callable[[float], None],
    ) -> tuple[Analysis, list[_Unit]]:
        """Walk the segments; returns the analysis and the summary units, one per chapter
        (or per slice of a body without chapters), their candidates scored for Latin."""
        result = self.result
        text = body.text
        units: list[_Unit] = []
        has_chapters = any(
            s.heading is not None and s.heading.kind == "chapter" for s in parts_of_body
        )
        for segment in parts_of_body:
            heading = segment.heading
            content_start = heading.line_end if heading is not None else segment.start
            head = text[segment.start : content_start]
            content = text[content_start : segment.end]
            if self.aozora:
                head = AOZORA_MARKUP.sub("", head)
                content = AOZORA_MARKUP.sub("", content)
            is_chapter = heading is not None and heading.kind == "chapter"
            chapter_number = len(result.chapters) + 1 if is_chapter else 0
            if self.cjk:
                self.clean_texts.append(head)
                self.clean_texts.append(content)
                self.text_chapters += [chapter_number, chapter_number]
            elif self.cast is not None:
                self.cast.feed(content, chapter_number)
            head_words = len(WORD_RE.findall(head))
            paras = paragraphs(content, by_line=self.by_line)
            sentences_before = self.position
            chars_before, dialogue_before = result.paragraph_chars, result.dialogue_chars
            tokens: list[str] = []  # the stretch's words (Latin), in order
            shared = _Shared()
            words = head_words
            if has_chapters:
                slices = [_Unit()]
                for para in paras:
                    words += self.paragraph(para, slices, tokens)
                    if len(tokens) >= shared.next:
                        shared.dedupe(tokens)
            else:
                # no chapters: OVERALL equal slices by characters (a single giant line too)
                slices = [_Unit() for _ in range(OVERALL)]
                total = sum(len(para) + 1 for para in paras)
                consumed = 0
                for para in paras:
                    words += self.paragraph(para, slices, tokens, consumed, total)
                    consumed += len(para) + 1
                    if len(tokens) >= shared.next:
                        shared.dedupe(tokens)
            if not self.cjk:
                self.score_latin(slices, self._count(tokens), tokens)
            del tokens
            result.words += words
            result.sentences = self.position
            if is_chapter and heading is not None:
                if words == head_words:
                    result.empty_chapters += 1
                chars = result.paragraph_chars - chars_before
                dialogue = result.dialogue_chars - dialogue_before
                result.chapters.append(
                    ChapterResult(
                        index=len(result.chapters) + 1,
                        title=heading.title,
                        offset=body.offset + heading.start,
                        part=segment.part,
                        words=words,
                        sentences=self.position - sentences_before,
                        paragraphs=len(paras),
                        summary=[],
                        dialogue_ratio=round(dialogue / chars, 4) if chars else 0.0,
                    )
                )
                result.chapter_numbers.append((_heading_number(heading), segment.part))
                units.append(slices[0])
            elif not has_chapters:
                units.extend(slices)
            progress(segment.end / max(1, len(text)))
        if self.window_words and (not result.ttr_values or self.window_words >= TTR_WINDOW // 2):
            self._close_window()
        return result, units


class _Shared:
    """Keeps a long stretch's word list small: past :data:`SHARE_PAST` words, each word
    is replaced by the first string of the same text (the list then holds references
    to a few thousand strings instead of one string per word)."""

    def __init__(self) -> None:
        self.next = SHARE_PAST
        self.done = 0
        self.canonical: dict[str, str] = {}

    def dedupe(self, tokens: list[str]) -> None:
        fresh = tokens[self.done :]
        tokens[self.done :] = map(self.canonical.setdefault, fresh, fresh)
        self.done = len(tokens)
        self.next = self.done + COUNT_BATCH


def _heading_number(heading: Heading) -> int | None:
    """The number a chapter heading carries (``12`` of ``CHAPTER XII``, ``第十二回``)."""
    digits = re.sub(r"\D", "", heading.key)
    if digits:
        return int(digits)
    return cjk_to_int(heading.key.strip("章回节節卷部篇")) if heading.key else None


def _sample(result: Analysis, check: str, text: str) -> None:
    found = result.samples.setdefault(check, [])
    if len(found) < SAMPLES:
        found.append(text)


_SYNOPSIS_END = re.compile(r"[^.!?…:;,][.。][)）]?\Z")
_MARKUP = re.compile(r"[#|\[\]<>{}*]|^\s*[-*+>]\s|(?<!\w)[_*]{1,2}\w|\w[_*]{1,2}(?!\w)")
_MARKUP_LEADS = re.compile(r"[#|\[\]<>{}*_]")
"""The characters without which only a leading ``-`` or ``+`` can start ``_MARKUP``'s
match: a search for them costs a tenth of ``_MARKUP``'s, which tries its four branches
at every position."""
_DIALOGUE_START = re.compile(r"^\s*(?:[—–―-]|[‘'])")


_SYNOPSIS_ENDS = (".", "。", ")", "）")


def synopsis_like(sentence: str, find_words: Callable[[str], list[str]], cjk: bool) -> bool:
    """A whole declarative sentence told in narration (see the module docstring);
    ``find_words`` finds ``WORD_RE``'s words in it (read for a Latin sentence only,
    once every other test has passed)."""
    text = sentence.strip()
    if not text.endswith(_SYNOPSIS_ENDS) or text.endswith(".."):
        return False  # the cheap test first: most sentences are rejected or kept here
    # _SYNOPSIS_END ends at the end and is at most 3 characters long: searched there only
    if _SYNOPSIS_END.search(text, max(0, len(text) - 3)) is None or _DIALOGUE_START.match(text):
        return False
    if _has_quote(text):
        return False
    # text is stripped: ^\s*[-*+>]\s can only match at a leading - or + (or > and *,
    # which _MARKUP_LEADS holds)
    if (_MARKUP_LEADS.search(text) is not None or text.startswith(("-", "+"))) and (
        _MARKUP.search(text) is not None
    ):
        return False
    if not cjk and not text[0].isupper():
        return False
    if cjk:
        return len(set(text)) >= 0.3 * len(text)
    folded = list(map(str.lower, find_words(text)))
    if any(map(operator.eq, folded, folded[1:])):
        return False  # "caw! caw!", "no, no"
    return len(set(folded)) >= 0.5 * len(folded)


def _broken(previous_end: str, text: str) -> bool:
    """A paragraph break inside a sentence: a letter or comma, then a lower-case letter."""
    if not previous_end:
        return False
    first = text[0]
    return (previous_end.isalpha() or previous_end in ",，、") and first.islower()


_SCORE = operator.attrgetter("score")


def _ranked(candidates: list[_Candidate]) -> list[_Candidate]:
    """Best score first, ties to the earlier sentence: ``candidates`` are always in text
    order, and a stable sort by score alone keeps that order among equals (a key read
    in C, no tuple per candidate)."""
    return sorted(candidates, key=_SCORE, reverse=True)


def _score(candidates: list[_Candidate], values: list[float], first: bool) -> bool:
    """Score the Latin candidates not scored yet (``start`` ≥ 0: in this stretch) from
    ``values``, their stretch's word weights in text order. With ``first``, only
    those that may be synopsis-like (:func:`_may_be_synopsis`); returns whether others
    were left unscored."""
    deferred = False
    for cand in candidates:
        start = cand.start
        if start < 0:  # scored already (here, or with an earlier stretch)
            continue
        if first and (cand.loose or not _may_be_synopsis(cand.text)):
            deferred = True
            continue
        size = cand.size  # _adjust, inlined (the same operations, in order)
        mean = sum(values[start : start + size]) / size
        cand.score = mean * min(1.0, size / 8) * (LOOSE_FACTOR if cand.loose else 1.0)
        cand.start = -1
    return deferred


def _may_be_synopsis(text: str) -> bool:
    """:func:`synopsis_like`'s cheap first tests for a Latin sentence (already stripped):
    False only for a sentence it rejects."""
    return text.endswith(_SYNOPSIS_ENDS) and not text.endswith("..") and text[0].isupper()


def _prune(unit: _Unit, find_words: Callable[[str], list[str]]) -> bool:
    """Drop the scored (Latin) candidates of ``unit`` that no summary can choose, to free
    their memory: those that :data:`PER_CHAPTER` synopsis-like candidates outscore even
    when only they get the largest bonus for naming main characters (see
    :func:`_favour_characters`); :func:`_best` would never reach them. Unscored
    candidates are left as they are. Returns whether PER_CHAPTER synopsis-like
    candidates were found (or, for PER_CHAPTER candidates or fewer, all are scored)."""
    candidates = unit.candidates
    if len(candidates) <= PER_CHAPTER:
        return all(c.start < 0 for c in candidates)
    good = 0
    for cand in _ranked([c for c in candidates if c.start < 0]):
        if not cand.loose and synopsis_like(cand.text, find_words, False):
            good += 1
            if good == PER_CHAPTER:
                threshold = cand.score / _MAX_BONUS
                unit.candidates = [c for c in candidates if c.start >= 0 or c.score >= threshold]
                return True
    return False


def _best(
    candidates: list[_Candidate], count: int, cjk: bool, find_words: Callable[[str], list[str]]
) -> list[_Candidate]:
    """The ``count`` best synopsis-like candidates (others only when there are too few
    of them), in text order. Whether a candidate is synopsis-like is only read for the
    best-scored ones, until enough are found: not for every sentence of the text."""
    ranked = _ranked(candidates)
    good: list[_Candidate] = []
    rest: list[_Candidate] = []
    for cand in ranked:
        if len(good) == count:
            break
        if not cand.loose and synopsis_like(cand.text, find_words, cjk):
            good.append(cand)
        elif len(rest) < count:
            rest.append(cand)
    chosen = good + rest[: count - len(good)]
    return sorted(chosen, key=lambda c: c.position)


def analyse(
    body: Body,
    parts_of_body: list[Segment],
    *,
    language: str,
    by_line: bool,
    progress: Callable[[float], None],
    summarising: Callable[[], None] = lambda: None,
) -> Analysis:
    """Run the pass over ``parts_of_body`` (see the module docstring).

    ``progress(fraction)`` follows the walk through the body; ``summarising()`` is
    called when the walk is over and names, keywords and summaries are chosen.
    """
    walk = _Pass(language, by_line, body.boilerplate == "aozora", body.text)
    result, units = walk.run(body, parts_of_body, progress)
    summarising()
    # what the walk no longer needs goes before the language's word list is loaded
    walk.function_words = set()
    walk.seen_paragraphs, walk.window = set(), set()
    if walk.phrases is not None:
        walk.phrase_candidates = walk.phrases.candidates(PHRASES)
        walk.phrases = None
    if walk.cjk:
        stats = cjk_stats(walk.clean_texts, language)
        walk.score_cjk(units, stats.bigrams)
        result.names = cjk_names(stats, walk.clean_texts, language, NAMES)
        result.characters = _cjk_presence(result.names, walk.clean_texts, walk.text_chapters)
        segmented = segment_words(walk.clean_texts, language)
        result.segmented_words = segmented.words
        result.unknown = unknown_han_characters(walk.clean_texts, language)
        result.keywords = cjk_keywords(
            segmented.counts, segmented.words, language, [n for n, _ in result.names]
        )
    else:
        assert walk.cast is not None
        result.characters = walk.cast.characters(walk.words, NAMES)
        walk.cast = None  # its evidence, before the language's word list is loaded
        result.names = [(c.name, c.mentions) for c in result.characters]
        result.keywords = latin_keywords(walk.words, language, [n for n, _ in result.names])
        result.unknown = unknown_latin_words(walk.words, language)
    result.writing = _writing(walk, result, body, language)
    _favour_characters(units, [name for name, _ in result.names[:MAIN_CHARACTERS]])
    if result.chapters:
        picked = [_best(u.candidates, PER_CHAPTER, walk.cjk, walk.find_words) for u in units]
        for chapter, best in zip(result.chapters, picked, strict=True):
            chapter.summary = [_shown(c.text) for c in best]
        units = [_Unit(best) for best in picked]
    result.summary = [_shown(text) for text in _overall(units, walk.cjk, walk.find_words)]
    return result


_EMPHASIS = re.compile(r"(?<!\w)[_*]{1,2}(?=\w)|(?<=\w)[_*]{1,2}(?!\w)")


def _shown(text: str) -> str:
    """A summary sentence as shown: on one line, without Markdown emphasis marks."""
    return display(_EMPHASIS.sub("", text))


def _favour_characters(units: list[_Unit], names: list[str]) -> None:
    """Weigh sentences naming main characters more (see the module docstring)."""
    keys = [_without_title(name) for name in names]
    if not keys:
        return
    for unit in units:
        for cand in unit.candidates:
            named = sum(map(cand.text.__contains__, keys))
            if named:
                cand.score *= 1 + CHARACTER_BONUS * named


def _without_title(name: str) -> str:
    """``Mr. Darcy`` → ``Darcy``; ``Lady Catherine`` → ``Catherine``; ``宝玉`` stays."""
    first, _, rest = name.partition(" ")
    if rest and (first.endswith(".") or first.lower() in HONORIFICS):
        return rest
    return name


def _writing(walk: _Pass, result: Analysis, body: Body, language: str) -> dict[str, Any]:
    """The writing metrics of the report (see :mod:`.writing`)."""
    offsets = [c.offset for c in result.chapters]
    overused: list[dict[str, Any]] = []
    phrases: list[dict[str, Any]] = []
    readable = None
    if not walk.cjk:
        readable = readability(walk.words, result.sentences, result.sentence_words, language)
        total = max(1, result.words)
        words = overused_candidates(walk.words, total, language)
        overused = [
            {
                "term": found.text,
                "count": found.count,
                "per_10k_words": round(found.count * 10_000 / total, 1),
                "first_offset": found.offset,
                "chapters": found.chapters,
            }
            for found in locate(words, body, offsets, OVERUSED)
        ]
        if walk.phrase_candidates:
            candidates = walk.phrase_candidates
            phrases = [
                {
                    "phrase": found.text,
                    "count": found.count,
                    "first_offset": found.offset,
                    "chapters": found.chapters,
                }
                for found in locate(candidates, body, offsets, PHRASES, MIN_PHRASE)
            ]
    return {
        "readability": readable,
        "sentence_lengths": sentence_lengths(result.sentence_lengths),
        "chapter_lengths": chapter_lengths([c.words for c in result.chapters]),
        "overused_words": overused,
        "repeated_phrases": phrases,
    }


def _cjk_presence(
    names: list[tuple[str, int]], texts: list[str], chapters: list[int]
) -> list[Character]:
    """Each name's mentions per chapter (one ``str.count`` per name and stretch)."""
    out: list[Character] = []
    for name, mentions in names:
        per: Counter[int] = Counter()
        for text, chapter in zip(texts, chapters, strict=True):
            found = text.count(name)
            if found:
                per[chapter] += found
        out.append(Character(name, mentions, dict(per)))
    return out


def _overall(units: list[_Unit], cjk: bool, find_words: Callable[[str], list[str]]) -> list[str]:
    """The best sentence of each of at most OVERALL equal groups of units, in text order."""
    if not units:
        return []
    groups = min(OVERALL, len(units))
    chosen: list[_Candidate] = []
    for g in range(groups):
        members = units[g * len(units) // groups : (g + 1) * len(units) // groups]
        pool = [c for unit in members for c in unit.candidates]
        chosen += _best(pool, 1, cjk, find_words)
    return [c.text for c in sorted(chosen, key=lambda c: c.position)]


def _by_count(item: tuple[str, int]) -> tuple[int, str]:
    """Most frequent first, then alphabetical: a total, deterministic order."""
    return -item[1], item[0]
