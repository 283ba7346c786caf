"""How clean the text is: explainable checks, each saying what and where, and a score.

Each check counts something, passes when the count is within its tolerance,
and costs ``penalty = weight × min(1, count / scale)``; ``scale`` is the count at
which a problem is as bad as it gets (it grows with the text). The score is
the product of ``1 − penalty`` over the checks: a clean text scores 1, each
problem takes its share of what is left, and one serious problem (a weight of
0.2 to 0.5) is enough to lower the score clearly. Every failing check gives up
to three examples: the chapter, the character offset in the decoded text and a
short sample.

=========================  ==============================================  ==============  ======
check                      counts                                          passes when     weight
=========================  ==============================================  ==============  ======
replacement_chars          U+FFFD (bytes the decoder could not map)        0               0.50
control_chars              C0/C1 control characters (not tab/newline)      0               0.30
mojibake                   UTF-8 read as cp1252 (``Ã©``, ``â€™``…), and    ≤ 0.01 % of     0.50
                           kana/Cyrillic amid Chinese text                 characters
gibberish                  words the language's frequency list does not    ≤ 3 % of        0.50
                           know (names and numbers aside), letters mixed   words
                           with digits (OCR noise); CJK: unknown Han
                           characters
duplicate_paragraphs       repeats of a paragraph of 40+ characters        ≤ 1 % of paras  0.40
broken_lines               paragraph breaks inside a sentence              ≤ 2 % of paras  0.30
empty_chapters             chapters with no words after the heading        0               0.20
long_paragraphs            paragraphs of more than 5,000 words             0               0.20
missing_paragraph_breaks   words in paragraphs of more than 1,000 words    ≤ 5 % of words  0.40
truncated                  the text ends inside a sentence                 0               0.20
chapter_numbering          chapters whose number does not follow the       0               0.20
                           previous one (a gap, a repeat, a restart
                           outside a new part)
=========================  ==============================================  ==============  ======
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from app.processors.analyze.analysis import Analysis
from app.processors.analyze.structure import Body
from app.processors.analyze.text import CJK_LANGUAGES, HAN, HAN_CHAR_RE, count_controls

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_BYTES = bytes([*range(0x09), *range(0x0B, 0x20), 0x7F])
"""``_CONTROL`` below 0x80, for :func:`.text.count_controls` (which adds C1's)."""
_MOJIBAKE = re.compile(
    r"Ã[\u0080-\u00bf€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ]|â€[\u0080-\u00bf™œ\u009d“”˜¦¢¡]|Â[\u00a0-\u00bf]"
)
_MOJIBAKE_LEADS = ("Ã", "â€", "Â")
"""What every match of ``_MOJIBAKE`` starts with."""
_REPLACEMENT = re.compile("\ufffd")
_ALIEN = "\u3040-\u30ff\u0400-\u04ff"
_ALIEN_IN_CHINESE = re.compile(
    # whole runs only (possessive, from the run's first character): linear on any input
    rf"(?<![{_ALIEN}])(?:(?<=[{HAN}])[{_ALIEN}]++|[{_ALIEN}]++(?=[{HAN}]))"
)
_SENTENCE_END = re.compile(r"[.!?…。！？」』”’\"»)\]）】*_~\-—]\s*\Z")
"""A text may end with a sentence mark, a closing quote or bracket, or a rule."""
SAMPLE_CHARS = 60
SIGNATURE_WORDS = 8
"""A last paragraph shorter than this that ends in a capital or digit is a signature."""
MAX_EXAMPLES = 3


@dataclass(frozen=True, slots=True)
class Example:
    chapter: int | None
    """Chapter index (None before the first chapter, or without chapters)."""
    offset: int
    sample: str


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    count: int
    passed: bool
    weight: float
    penalty: float
    examples: list[Example] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Quality:
    score: float
    checks: list[Check]


class _Locator:
    """Chapter and decoded-text offset of places in the body."""

    def __init__(self, body: Body, analysis: Analysis) -> None:
        self.body = body
        self.offsets = [c.offset for c in analysis.chapters]

    def at(self, body_offset: int, length: int = SAMPLE_CHARS) -> Example:
        offset = self.body.offset + body_offset
        index = bisect.bisect_right(self.offsets, offset)
        sample = " ".join(self.body.text[body_offset : body_offset + length].split())
        return Example(index if index else None, offset, sample[:SAMPLE_CHARS])

    def find(self, paragraph: str, occurrence: int = 1) -> Example | None:
        """Where the ``occurrence``-th copy of ``paragraph`` starts."""
        position = -1
        for _ in range(occurrence):
            position = self.body.text.find(paragraph, position + 1)
            if position < 0:
                return None
        return self.at(position)


def _check(
    name: str,
    count: int,
    tolerance: float,
    weight: float,
    scale: float,
    examples: list[Example] | None = None,
) -> Check:
    penalty = weight * min(1.0, count / max(scale, 1.0))
    passed = count <= tolerance
    shown = [] if passed else (examples or [])[:MAX_EXAMPLES]
    return Check(name, count, passed, weight, round(penalty, 4), shown)


def _matches(
    pattern: re.Pattern[str], text: str, where: _Locator, needles: tuple[str, ...] = ()
) -> tuple[int, list[Example]]:
    """Every match of ``pattern``, with examples; ``needles``: literals one of which
    every match holds, looked for first with ``str.find`` (far faster than a scan by
    the regular-expression engine), so a clean text is not scanned at all."""
    if needles and not any(needle in text for needle in needles):
        return 0, []
    count = 0
    examples: list[Example] = []
    for match in pattern.finditer(text):
        count += 1
        if len(examples) < MAX_EXAMPLES:
            examples.append(where.at(max(0, match.start() - 20), 40))
    return count, examples


def _numbering(analysis: Analysis) -> tuple[int, list[int]]:
    """Chapters whose number does not follow the previous chapter's (1-based indexes)."""
    wrong: list[int] = []
    previous: int | None = None
    previous_part: str | None = None
    for index, (number, part) in enumerate(analysis.chapter_numbers, start=1):
        if number is None:
            previous = None
            continue
        new_part = part != previous_part
        expected = {previous + 1} if previous is not None else {1}
        if previous is None or new_part:
            expected |= {1}
        if (previous is not None and number not in expected) or (
            previous is None and index == 1 and number != 1
        ):
            wrong.append(index)
        previous, previous_part = number, part
    return len(wrong), wrong


def _truncated(analysis: Analysis, language: str) -> bool:
    last = analysis.last_paragraph.rstrip()
    if not last:
        return False
    if _SENTENCE_END.search(last):
        return False
    tail = last[-1]
    if language in CJK_LANGUAGES:
        return HAN_CHAR_RE.match(tail) is not None or "\u3040" <= tail <= "\u30ff"
    # a lower-case letter or a comma ends no book; a last line in capitals ("THE END")
    # or a short signature ("Paris, 1857") may
    if tail.islower() or tail in ",;:":
        return True
    last_line = last.rsplit("\n", 1)[-1]
    return tail.isalnum() and not last_line.isupper() and len(last.split()) >= SIGNATURE_WORDS


def assess(body: Body, analysis: Analysis, language: str) -> Quality:
    """Run every check over the body and the pass's counters."""
    text = body.text
    unknown = analysis.unknown
    where = _Locator(body, analysis)
    chars = max(1, len(text))
    paragraphs = max(1, analysis.paragraphs)
    words = max(1, analysis.words)
    chapters = max(1, len(analysis.chapters))
    replacement, replacement_at = _matches(_REPLACEMENT, text, where, ("\ufffd",))
    # counted in C first: a clean text is not scanned by the engine at all
    has_controls = count_controls(text, _CONTROL_BYTES) > 0
    control, control_at = _matches(_CONTROL, text, where) if has_controls else (0, [])
    mojibake, mojibake_at = _matches(_MOJIBAKE, text, where, _MOJIBAKE_LEADS)
    if language == "zh":
        alien = 0
        for match in _ALIEN_IN_CHINESE.finditer(text):
            alien += len(match.group())
            if len(mojibake_at) < MAX_EXAMPLES:
                mojibake_at.append(where.at(max(0, match.start() - 20), 40))
        mojibake += alien

    def located(check: str, occurrence: int = 1) -> list[Example]:
        found = [where.find(p, occurrence) for p in analysis.samples.get(check, [])]
        return [example for example in found if example is not None]

    gibberish_at = [
        example for example in (where.find(word) for word in unknown.samples) if example
    ]
    checked = max(1, unknown.checked)
    numbering, wrong = _numbering(analysis)
    numbering_at = [
        where.at(analysis.chapters[i - 1].offset - body.offset)
        for i in wrong[:MAX_EXAMPLES]
        if i <= len(analysis.chapters)
    ]
    truncated = _truncated(analysis, language)
    end_at = [where.at(max(0, len(text.rstrip()) - SAMPLE_CHARS))] if truncated else []
    checks = [
        _check("replacement_chars", replacement, 0, 0.50, chars * 0.001, replacement_at),
        _check("control_chars", control, 0, 0.30, chars * 0.001, control_at),
        _check("mojibake", mojibake, chars * 0.0001, 0.50, chars * 0.002, mojibake_at),
        _check(
            "duplicate_paragraphs",
            analysis.duplicate_paragraphs,
            paragraphs * 0.01,
            0.40,
            paragraphs * 0.10,
            located("duplicate_paragraphs", 2),
        ),
        _check(
            "broken_lines",
            analysis.broken_paragraphs,
            paragraphs * 0.02,
            0.30,
            paragraphs * 0.25,
            located("broken_lines"),
        ),
        _check("empty_chapters", analysis.empty_chapters, 0, 0.20, chapters * 0.25),
        _check(
            "long_paragraphs",
            analysis.long_paragraphs,
            0,
            0.20,
            paragraphs * 0.05,
            located("long_paragraphs"),
        ),
        _check(
            "missing_paragraph_breaks",
            analysis.run_on_words,
            words * 0.05,
            0.40,
            words * 0.5,
            located("missing_paragraph_breaks"),
        ),
        _check("gibberish", unknown.count, checked * 0.03, 0.50, checked * 0.2, gibberish_at),
        _check("truncated", int(truncated), 0, 0.20, 1, end_at),
        _check("chapter_numbering", numbering, 0, 0.20, chapters * 0.1, numbering_at),
    ]
    score = 1.0
    for check in checks:
        score *= 1.0 - check.penalty
    return Quality(round(max(0.0, min(1.0, score)), 4), checks)
