"""Sentence splitting for Latin and CJK text, in one regular expression.

A sentence ends:

- after ``。！？`` (and any closing quotes or brackets), unless a quotation
  particle or comma follows (``「…！」と言った`` is one sentence);
- after ``.``, ``!``, ``?`` or ``…`` (and closing quotes) followed by white
  space and then something that is not a lower-case letter (``“Oh!” said
  Alice`` is one sentence), except after the abbreviations of
  :data:`ABBREVIATIONS` or a single capital (an initial: ``M. Homais``);
- at the end of the paragraph.

Paragraph breaks always end a sentence; the splitter works on one paragraph.
"""

from __future__ import annotations

import re

ABBREVIATIONS = (
    "Mr", "Mrs", "Ms", "Dr", "St", "Mme", "Mlle", "Messrs", "Jr", "Sr", "Prof", "Rev",
    "Capt", "Col", "Gen", "Lt", "Sgt", "Hon", "Gov", "Mt", "vs", "cf", "etc",
)  # fmt: skip
"""Words whose period does not end a sentence."""

_BY_LENGTH: dict[int, list[str]] = {}
for _word in ABBREVIATIONS:
    _BY_LENGTH.setdefault(len(_word), []).append(re.escape(_word))
_NOT_AFTER = "".join(rf"(?<!\b(?:{'|'.join(words)})\.)" for _, words in sorted(_BY_LENGTH.items()))
"""Not after an abbreviation: one look-behind per length (an alternation of words of one
length is a fixed-width look-behind), 4 for the 23 words instead of one per word."""
_CLOSERS = '”’"»)\\]」』）】》〉'
_LOWER = "a-zß-öø-ÿ"

_MARKS = "。！？!?…."
SENTENCE_END = re.compile(
    # one character class first, so the engine skips ahead to candidates in C; then
    # only the first mark of a run of marks may start a match (the look-behind), and
    # every quantifier over the run is possessive: each run is read a bounded number
    # of times whatever its length, so the splitter is linear (``'.' * 30_000 + 'x'``
    # used to take seconds).
    rf"[{_MARKS}](?<![{_MARKS}].)"
    rf"(?:(?:(?<=[。！？])|[!?….]*+[。！？])[。！？!?]*+[{_CLOSERS}]*+(?![と、，,{_CLOSERS}])"
    rf"|(?<![。！？]){_NOT_AFTER}(?<!\b[A-Z]\.)[!?….]*+[{_CLOSERS}]*+(?=\s+[^\s{_LOWER}]|\s*\Z))"
)


def split_sentences(paragraph: str) -> list[str]:
    """The sentences of ``paragraph``, stripped, in order."""
    ends = [m.end() for m in SENTENCE_END.finditer(paragraph)]
    if not ends:
        return [paragraph] if paragraph.strip() else []
    starts = [0, *ends]
    ends.append(len(paragraph))
    # cut, stripped and the empty ones dropped in C (no Python step per sentence)
    return list(filter(None, map(str.strip, map(paragraph.__getitem__, map(slice, starts, ends)))))
