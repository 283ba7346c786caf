"""How clean the text is: explainable checks and a score in [0, 1].

Each check counts something, passes when the count is within its tolerance,
and costs ``weight × min(1, count / scale)`` from a perfect 1.0; the weights
add up to 1, so a text failing every check completely scores 0. ``scale`` is
the count at which a problem is as bad as it gets (it grows with the text).

=====================  ===========================================  ================  ========
check                  counts                                       passes when       weight
=====================  ===========================================  ================  ========
replacement_chars      U+FFFD (bytes the decoder could not map)     0                 0.25
control_chars          C0/C1 control characters (not tab/newline)   0                 0.15
mojibake               UTF-8 read as cp1252 (``Ã©``, ``â€™``…),      ≤ 0.01 % of       0.20
                       and kana/Cyrillic amid Chinese text           characters
duplicate_paragraphs   repeats of a paragraph of 40+ characters     ≤ 1 % of paras    0.10
broken_lines           paragraph breaks inside a sentence (hard-    ≤ 2 % of paras    0.15
                       wrapped lines taken for paragraphs)
empty_chapters         chapters with no words after the heading     0                 0.05
long_paragraphs        paragraphs of more than 5,000 words          0                 0.10
=====================  ===========================================  ================  ========
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.processors.analyze.analysis import Analysis
from app.processors.analyze.text import HAN

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_MOJIBAKE = re.compile(
    r"Ã[\u0080-\u00bf€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ]|â€[\u0080-\u00bf™œ\u009d“”˜¦¢¡]|Â[\u00a0-\u00bf]"
)
_ALIEN = "\u3040-\u30ff\u0400-\u04ff"
_ALIEN_IN_CHINESE = re.compile(
    # whole runs only (possessive, from the run's first character): linear on any input
    rf"(?<![{_ALIEN}])(?:(?<=[{HAN}])[{_ALIEN}]++|[{_ALIEN}]++(?=[{HAN}]))"
)


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    count: int
    passed: bool
    weight: float
    penalty: float


@dataclass(frozen=True, slots=True)
class Quality:
    score: float
    checks: list[Check]


def _check(name: str, count: int, tolerance: float, weight: float, scale: float) -> Check:
    penalty = weight * min(1.0, count / max(scale, 1.0))
    return Check(name, count, count <= tolerance, weight, round(penalty, 4))


def assess(text: str, analysis: Analysis, language: str) -> Quality:
    """Run every check over the body ``text`` and the pass's counters."""
    chars = max(1, len(text))
    paragraphs = max(1, analysis.paragraphs)
    mojibake = len(_MOJIBAKE.findall(text))
    if language == "zh":
        mojibake += sum(len(m) for m in _ALIEN_IN_CHINESE.findall(text))
    checks = [
        _check("replacement_chars", text.count("\ufffd"), 0, 0.25, chars * 0.001),
        _check("control_chars", len(_CONTROL.findall(text)), 0, 0.15, chars * 0.001),
        _check("mojibake", mojibake, chars * 0.0001, 0.20, chars * 0.002),
        _check(
            "duplicate_paragraphs",
            analysis.duplicate_paragraphs,
            paragraphs * 0.01,
            0.10,
            paragraphs * 0.10,
        ),
        _check(
            "broken_lines", analysis.broken_paragraphs, paragraphs * 0.02, 0.15, paragraphs * 0.25
        ),
        _check(
            "empty_chapters",
            analysis.empty_chapters,
            0,
            0.05,
            max(1, len(analysis.chapters)) * 0.25,
        ),
        _check("long_paragraphs", analysis.long_paragraphs, 0, 0.10, paragraphs * 0.05),
    ]
    score = max(0.0, min(1.0, 1.0 - sum(c.penalty for c in checks)))
    return Quality(round(score, 4), checks)
