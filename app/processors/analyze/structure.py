"""Body, headings, chapters and paragraphs of a decoded manuscript.

Boilerplate
    Project Gutenberg: the text strictly between the ``*** START OF …`` and
    ``*** END OF …`` lines (older files: ``*END*THE SMALL PRINT``), without a
    leading "Produced by" credit or a trailing "End of the Project Gutenberg
    EBook" line. Aozora Bunko: from after the dashed rule that closes the
    symbol legend to before the ``底本：`` colophon; ruby ``《…》``, ``｜`` and
    editor notes ``［＃…］`` are markup, not text.

Headings (a line on its own)
    chapter  ``Chapter 12``, ``CHAPTER XII.``, ``CHAPTER 1. Loomings.``,
             ``Chapter the Twelfth``, ``Chapitre premier``, ``第十二章``,
             ``第十二回　title`` (a space, an ideographic space or the end of
             the line after 回/章: ``第四回中…`` is prose), ``第12章``, Markdown
             ``#``…``######``, a Roman numeral alone between blank lines, an
             Aozora ``［＃「…」は中見出し］`` (大見出し when there is no 中見出し).
    part     ``BOOK II``, ``PART ONE``, ``Livre premier``, ``PREMIÈRE PARTIE``,
             ``第二卷``/``部``/``篇``, an Aozora 大見出し above 中見出し: parts
             divide the book but are not chapters.

Which headings are chapters
    1. Tables of contents: three or more headings in a row with fewer than
       :data:`TOC_GAP_WORDS` words between each and the next are a contents
       list, not chapters. The last of such a run is a contents entry too if
       the same heading (same style and number) comes again later, before any
       part heading (Moby-Dick's list ends with its last chapter).
    2. One style wins: the style with the most headings (ties: the order of
       :data:`STYLE_PRIORITY`); a single Markdown H1 is the book's title, not
       a chapter. Markdown headings of the winning level join chapter-word
       headings made with that level.

Paragraphs
    Blocks separated by blank lines, or single lines when the body has almost
    no blank lines (one paragraph per line, as Aozora files have).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from app.processors.analyze.text import count_words

# --------------------------------------------------------------------------- boilerplate

_PG_START = re.compile(
    # the marker ends at its closing asterisks, or its line (read no further: a text
    # that has lost its line breaks is one line)
    r"\*{3}\s*START OF (?:THE |THIS )?PROJECT GUTENBERG(?:[^\n*]{0,300}\*{3}[ \t]*)?"
    r"|\*END\*THE SMALL PRINT[^\n]{0,300}",
    re.IGNORECASE,
)
_PG_END = re.compile(r"\*{3}\s*END OF (?:THE |THIS )?PROJECT GUTENBERG", re.IGNORECASE)
_PG_END_LINE = re.compile(
    r"^[ \t]*End of (?:the |this )?Project Gutenberg", re.IGNORECASE | re.MULTILINE
)
_PG_PRODUCED = re.compile(
    r"\s*(?:Produced by|This eBook was produced by|E-text prepared by)[^\n]*(?:\n[^\n]+)*\n",
    re.IGNORECASE,
)
_AOZORA_RULE = re.compile(r"^-{20,}[ \t]*$", re.MULTILINE)
_COLOPHON = "底本："
_AOZORA_COLOPHON = re.compile(rf"^{_COLOPHON}", re.MULTILINE)
AOZORA_MARKUP = re.compile(r"《[^》\n]*》|［＃[^］\n]*］|｜")

BoilerplateKind = Literal["gutenberg", "aozora", "none"]
MARKER_LINE_CHARS = 300
HEADER_CHARS = 100_000
"""A Project Gutenberg START marker is looked for this far into the text."""
FOOTER_CHARS = 200_000
"""The END marker is looked for this far from the end first (then everywhere)."""


@dataclass(frozen=True, slots=True)
class Body:
    """The part of the text that is the work itself."""

    text: str
    offset: int
    """Character offset of ``text`` in the decoded text."""
    boilerplate: BoilerplateKind


def find_body(text: str) -> Body:
    """The text without Project Gutenberg or Aozora Bunko boilerplate."""
    start = _PG_START.search(text, 0, HEADER_CHARS)
    if start is not None:
        lo = _line_end(text, start.end())
        if lo - start.end() > MARKER_LINE_CHARS:  # no line break after the marker
            lo = start.end()
        # the last END marker (a file pasted twice holds two)
        end = _last(_PG_END.finditer(text, max(lo, len(text) - FOOTER_CHARS)))
        end = end or _PG_END.search(text, lo)
        hi = len(text)
        if end is not None:
            hi = _line_start(text, end.start())
            if end.start() - hi > MARKER_LINE_CHARS:  # no line break before the marker
                hi = end.start()
        trailer = _PG_END_LINE.search(text, max(lo, hi - 3000), hi)
        if trailer is not None:
            hi = trailer.start()
        produced = _PG_PRODUCED.match(text, lo, hi)
        if produced is not None:
            lo = produced.end()
        return Body(text[lo:hi], lo, "gutenberg")
    # the last (a file pasted twice); its literal looked for first with str.__contains__,
    # so a text without one is not scanned line by line by the engine
    colophon = _last(_AOZORA_COLOPHON.finditer(text)) if _COLOPHON in text else None
    rules = [m for m in _AOZORA_RULE.finditer(text, 0, colophon.start() if colophon else 20_000)]
    legend = len(rules) >= 2 and "記号" in text[rules[0].end() : rules[1].start()]
    if colophon is not None or legend:
        lo = _line_end(text, rules[1].end()) if legend else 0
        hi = colophon.start() if colophon is not None and colophon.start() > lo else len(text)
        return Body(text[lo:hi], lo, "aozora")
    return Body(text, 0, "none")


def _last(matches: Iterator[re.Match[str]]) -> re.Match[str] | None:
    found = None
    for found in matches:  # noqa: B007 (the loop keeps the last match)
        pass
    return found


def _line_end(text: str, pos: int) -> int:
    """The offset just after the newline that ends the line holding ``pos``."""
    newline = text.find("\n", pos)
    return len(text) if newline < 0 else newline + 1


def _line_start(text: str, pos: int) -> int:
    return text.rfind("\n", 0, pos) + 1


# --------------------------------------------------------------------------- numbers

_ROMAN = re.compile(r"M{0,3}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5,
    "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11,
    "twelfth": 12, "thirteenth": 13, "fourteenth": 14, "fifteenth": 15, "sixteenth": 16,
    "seventeenth": 17, "eighteenth": 18, "nineteenth": 19, "last": 0, "final": 0,
    "premier": 1, "première": 1, "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4,
    "cinq": 5, "deuxième": 2, "seconde": 2, "second_fr": 2, "troisième": 3,
    "quatrième": 4, "cinquième": 5, "sixième": 6, "septième": 7, "huitième": 8,
    "neuvième": 9, "dixième": 10,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90, "twentieth": 20, "thirtieth": 30, "fortieth": 40,
    "fiftieth": 50, "sixtieth": 60, "seventieth": 70, "eightieth": 80, "ninetieth": 90,
}  # fmt: skip
_CJK_DIGITS = {
    "〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5,
    "六": 6, "七": 7, "八": 8, "九": 9,
}  # fmt: skip
_CJK_UNITS = {"十": 10, "百": 100, "千": 1000}


def roman_to_int(token: str) -> int | None:
    """The value of a well-formed Roman numeral (any case), else None."""
    upper = token.upper()
    if not upper or _ROMAN.fullmatch(upper) is None:
        return None
    total = 0
    for char, following in zip(upper, [*upper[1:], ""], strict=True):
        value = _ROMAN_VALUES[char]
        total += -value if following and _ROMAN_VALUES[following] > value else value
    return total


def words_to_int(phrase: str) -> int | None:
    """``twelfth`` → 12, ``twenty-first`` → 21, ``the Second`` → 2; None if not a number."""
    parts = [p for p in re.split(r"[\s\-]+", phrase.lower()) if p and p != "the"]
    if not parts or len(parts) > 2:
        return None
    if len(parts) == 2:
        tens, unit = _TENS.get(parts[0]), _UNITS.get(parts[1])
        if tens is None or unit is None or not 0 < unit < 10:
            return None
        return tens + unit
    return _UNITS.get(parts[0], _TENS.get(parts[0]))


def cjk_to_int(token: str) -> int | None:
    """``十二`` → 12, ``一百二十`` → 120, ``１２`` → 12."""
    token = token.translate(_FULLWIDTH_DIGITS)
    if token.isdigit():
        return int(token)
    total = current = 0
    for char in token:
        if char in _CJK_DIGITS:
            current = current * 10 + _CJK_DIGITS[char] if current else _CJK_DIGITS[char]
        elif char in _CJK_UNITS:
            total += (current or 1) * _CJK_UNITS[char]
            current = 0
        else:
            return None
    return total + current


_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")


def parse_number(token: str) -> int | None:
    token = token.strip().rstrip(".")
    if token.isdigit():
        return int(token)
    roman = roman_to_int(token) if token.isalpha() and token.isascii() else None
    return roman if roman is not None else words_to_int(token)


# --------------------------------------------------------------------------- headings

HeadingKind = Literal["chapter", "part"]

_NUMBER_WORDS = "|".join(sorted([*_UNITS, *_TENS], key=len, reverse=True))
_NUMBER = (
    rf"(?:\d{{1,4}}|[IVXLCDM]{{1,8}}|(?:the\s+)?(?:{_NUMBER_WORDS})(?:[\s\-](?:{_NUMBER_WORDS}))?)"
)
_CHAPTER_WORD = r"(?:chapter|chap\.|chapitre|capítulo|capitulo|capitolo|kapitel|hoofdstuk|глава)"
_PART_WORD = r"(?:book|part|volume|vol\.|livre|partie|tome|teil|buch|parte|libro)"
_TITLE_TAIL = r"(?:(?:\s*[.:—–\-]\s*|\s+)(?P<title>\S.{0,99}?))?[\s.:]*"
_CHAPTER_LINE = re.compile(
    rf"{_CHAPTER_WORD}\s+(?P<num>{_NUMBER})(?![\w’'])(?:{_TITLE_TAIL})", re.IGNORECASE
)
_PART_LINE = re.compile(
    rf"{_PART_WORD}\s+(?P<num>{_NUMBER})(?![\w’'])(?:{_TITLE_TAIL})", re.IGNORECASE
)
_FRENCH_PART = re.compile(
    r"(?P<num>première|premiere|deuxième|deuxieme|seconde|troisième|troisieme|quatrième"
    r"|cinquième|sixième|septième|huitième|neuvième|dixième)\s+partie[\s.]*",
    re.IGNORECASE,
)
_CJK_HEADING = re.compile(
    r"第(?P<num>[0-9０-９〇零一二两兩三四五六七八九十百千]{1,8})"
    r"(?P<unit>[章回节節卷部篇集])(?:[ \t\u3000:：、.．]+(?P<title>.*))?"
)
_MARKDOWN = re.compile(r"(?P<hashes>#{1,6})[ \t]+(?P<title>.+?)[ \t#]*")
_AOZORA_HEADING = re.compile(
    r"［＃「(?P<title>[^」「\n]{1,200})」は(?P<size>[大中小])見出し］"
    r"|［＃(?P<size2>[大中小])見出し］(?P<title2>[^［]+)［＃[大中小]見出し終わり］"
)
_BARE_ROMAN = re.compile(r"(?P<num>[IVXLC]{1,7})\.?")
_HEADING_LINE = (
    rf"[ \t\u3000]*(?:#|［＃|第|[IVXLC]{{1,7}}\.?[ \t]*$"
    rf"|(?i:{_CHAPTER_WORD}|{_PART_WORD})\s"
    r"|(?i:première|premiere|deuxième|deuxieme|seconde|troisième|troisieme|quatrième"
    r"|cinquième|sixième|septième|huitième|neuvième|dixième)\s+(?i:partie))"
)
_HEADING_START = re.compile(rf"^{_HEADING_LINE}", re.MULTILINE)
_AFTER_NEWLINE = re.compile(rf"\n(?={_HEADING_LINE})", re.MULTILINE)
"""``_HEADING_START`` found from the newline before it: a literal first character
lets the engine skip between line ends in C instead of trying every position."""


def _heading_starts(body: str) -> Iterator[int]:
    """Where the lines that may be headings begin (``_HEADING_START``), in order."""
    if _HEADING_START.match(body):
        yield 0
    for match in _AFTER_NEWLINE.finditer(body):
        yield match.start() + 1


_MAX_HEADING_CHARS = 120
_MAX_AOZORA_HEADING_CHARS = 400
"""Longer lines are prose (or an attack), never headings: no heading pattern reads them."""

STYLE_PRIORITY = (
    "chapter-word",
    "cjk",
    "aozora",
    "md2",
    "md1",
    "md3",
    "md4",
    "md5",
    "md6",
    "roman",
)
TOC_GAP_WORDS = 12
"""Fewer words than this between two headings: they may belong to a table of contents."""
TOC_RUN = 3


@dataclass(slots=True)
class Heading:
    """One heading line of the body."""

    kind: HeadingKind
    style: str
    key: str
    """What identifies it within its style (its number), for spotting contents entries."""
    title: str
    start: int
    """Offset of the heading's first character in the body."""
    line_end: int
    """Offset just after the heading line (and the title line it took, if any)."""
    level: int = 0
    """Markdown level, 0 for other headings."""
    toc: bool = False


def _classify(line: str, aozora: bool) -> tuple[HeadingKind, str, str, str, int] | None:
    """(kind, style, key, title, markdown level) of a heading line, or None."""
    stripped = line.strip(" \t\u3000")
    if aozora and "見出し" in stripped and len(stripped) <= _MAX_AOZORA_HEADING_CHARS:
        match = _AOZORA_HEADING.search(stripped)
        if match is None:
            return None
        title = match.group("title") or match.group("title2") or ""
        size = match.group("size") or match.group("size2") or "中"
        return "chapter", f"aozora{size}", title, title, 0
    if len(stripped) > _MAX_HEADING_CHARS:
        return None
    level = 0
    markdown = _MARKDOWN.fullmatch(stripped)
    if markdown is not None:
        level = len(markdown.group("hashes"))
        stripped = markdown.group("title")
    if match := _CHAPTER_LINE.fullmatch(stripped):
        number = parse_number(match.group("num"))
        if number is not None:
            return "chapter", "chapter-word", str(number), _title(stripped), level
    if match := _PART_LINE.fullmatch(stripped):
        number = parse_number(match.group("num"))
        if number is not None:
            return "part", "part", str(number), _title(stripped), level
    if match := _FRENCH_PART.fullmatch(stripped):
        return "part", "part", match.group("num").lower(), _title(stripped), level
    if match := _CJK_HEADING.fullmatch(stripped):
        number = cjk_to_int(match.group("num"))
        if number is not None:
            kind: HeadingKind = "chapter" if match.group("unit") in "章回节節" else "part"
            return kind, "cjk", f"{match.group('unit')}{number}", _title(stripped), level
    if level:
        return "chapter", f"md{level}", stripped.casefold(), _title(stripped), level
    if match := _BARE_ROMAN.fullmatch(stripped):
        number = roman_to_int(match.group("num"))
        if number is not None:
            return "chapter", "roman", str(number), match.group("num"), level
    return None


def _title(text: str) -> str:
    return " ".join(text.split()).strip(" \t\u3000")


def _blank_around(body: str, start: int, end: int) -> bool:
    """True when the lines before and after the line [start, end) are blank (or absent)."""
    before = body[max(0, start - 200) : start]
    after = body[end : end + 200]
    prev_ok = start == 0 or re.search(r"\n[ \t\u3000]*\n[ \t\u3000]*\Z", "\n" + before) is not None
    next_ok = re.match(r"\n?[ \t\u3000]*(?:\n|\Z)", after) is not None
    return prev_ok and next_ok


def find_headings(body: str, *, aozora: bool = False, by_line: bool = False) -> list[Heading]:
    """Every heading line of ``body``, in order, with contents entries flagged ``toc``.

    With blank-line paragraphs (``by_line`` false) a plain-text heading stands
    alone: a blank line follows it, or follows the one short title line after
    it (``CHAPTER I.`` / ``Down the Rabbit-Hole``). That keeps out contents
    lines written one under the other and wrapped prose that happens to begin
    with ``BOOK I.``. With one paragraph per line, a heading must just not be
    the first line of a wrapped sentence. Markdown, ``第…章``/``第…回`` and
    Aozora headings are unambiguous and need neither.
    """
    headings: list[Heading] = []
    for start in _heading_starts(body):
        end = _eol(body, start)
        line = body[start:end]
        found = _classify(line, aozora)
        if found is None:
            continue
        kind, style, key, title, level = found
        if style == "roman" and not _blank_around(body, start, end):
            continue
        line_end = end
        if not level and style != "cjk" and not style.startswith("aozora"):
            placed = _placement(body, end, title, by_line=by_line)
            if placed is None:
                continue
            if placed[0]:
                # a title on the next line, or the rest of a title wrapped onto it
                own = len(title.split()) > 2
                title = f"{title} {placed[0]}" if own else f"{title.rstrip('.')}. {placed[0]}"
                line_end = placed[1]
        first = start + len(line) - len(line.lstrip(" \t\u3000"))
        headings.append(Heading(kind, style, key, title, first, line_end, level))
    _flag_contents(body, headings)
    return headings


def _eol(body: str, pos: int) -> int:
    end = body.find("\n", pos)
    return len(body) if end < 0 else end


def _placement(body: str, end: int, title: str, *, by_line: bool) -> tuple[str, int] | None:
    """Whether the heading line ending at ``end`` stands alone: ("", end); with the
    title line that follows it: (that title, its end); None when it is running text."""
    nxt_start = end + 1
    nxt_end = _eol(body, nxt_start)
    nxt = body[nxt_start:nxt_end].strip() if nxt_start < len(body) else ""
    if not nxt:
        return "", end
    if by_line:
        wrapped = title[-1:].islower() or title.endswith(",")
        return None if wrapped and nxt[0].islower() else ("", end)
    after_start = nxt_end + 1
    after = body[after_start : _eol(body, after_start)].strip() if after_start < len(body) else ""
    title_like = (
        len(nxt) <= 80
        and len(nxt.split()) <= 14
        and not nxt.endswith((",", ";", ":"))
        and _HEADING_START.match(nxt) is None
    )
    if title_like and not after:
        return _title(nxt), nxt_end
    return None


def _flag_contents(body: str, headings: list[Heading]) -> None:
    """Flag the contents entries among ``headings`` (see the module docstring).

    Linear in the number of headings: whether a heading "comes again later" is
    read from right-to-left passes, never by scanning the rest of the list for
    each heading (thousands of ``BOOK n`` lines used to take minutes)."""
    # a part heading that comes again later is a contents entry (parts never repeat)
    later_parts: set[str] = set()
    for heading in reversed(headings):
        if heading.kind == "part":
            if heading.key in later_parts:
                heading.toc = True
            later_parts.add(heading.key)
    live = [h for h in headings if not h.toc]
    empty = [
        _few_words(body, h.line_end, live[i + 1].start) if i + 1 < len(live) else False
        for i, h in enumerate(live)
    ]
    # a run of TOC_RUN+ headings with (almost) nothing between them is a contents list;
    # its last entry is one too if its number comes again later (nothing in live is
    # flagged yet, so recurrence is read on the unflagged list)
    recurs = _recurrences(live)
    i = 0
    while i < len(live):
        j = i
        while j < len(live) and empty[j]:
            j += 1
        last = min(j, len(live) - 1)
        if last - i + 1 >= TOC_RUN:
            for k in range(i, last):
                live[k].toc = True
            if recurs[last]:
                live[last].toc = True
        i = last + 1
    # an empty heading whose number comes again later: a contents entry (the flags of
    # the runs above count; this pass only flags headings before the ones it reads)
    recurs = _recurrences(live)
    for index, heading in enumerate(live):
        if empty[index] and not heading.toc and recurs[index]:
            heading.toc = True


def _recurrences(headings: list[Heading]) -> list[bool]:
    """For each heading: whether the same heading (style and number), not flagged as a
    contents entry, comes again before the next unflagged part heading. One pass from
    the end; each heading enters and leaves the set of what follows at most once."""
    out = [False] * len(headings)
    following: set[tuple[str, str]] = set()
    for index in range(len(headings) - 1, -1, -1):
        heading = headings[index]
        out[index] = heading.kind != "part" and (heading.style, heading.key) in following
        if heading.toc:
            continue
        if heading.kind == "part":
            following.clear()
        else:
            following.add((heading.style, heading.key))
    return out


def _few_words(body: str, start: int, end: int) -> bool:
    if end - start > TOC_GAP_WORDS * 40:
        return False
    return count_words(body[start:end]) < TOC_GAP_WORDS


def select_chapters(headings: list[Heading]) -> tuple[list[Heading], list[Heading]]:
    """(chapters, parts): the winning style's headings, and the part headings."""
    live = [h for h in headings if not h.toc]
    parts = [h for h in live if h.kind == "part"]
    counts = Counter(h.style for h in live if h.kind == "chapter")
    has_middle = counts.get("aozora中", 0) > 0
    for heading in live:
        if heading.style == "aozora大" and has_middle:
            heading.kind = "part"
            parts.append(heading)
        elif heading.style.startswith("aozora"):
            heading.style = "aozora"
    parts.sort(key=lambda h: h.start)
    counts = Counter(h.style for h in live if h.kind == "chapter")
    if counts.get("md1", 0) == 1:
        del counts["md1"]  # a single H1 is the book's title
    if counts.get("roman", 0) == 1:
        del counts["roman"]  # one lone numeral is not a chapter sequence
    if not counts:
        return [], parts
    style = max(counts, key=lambda s: (counts[s], -STYLE_PRIORITY.index(s)))
    chosen = [h for h in live if h.kind == "chapter" and h.style == style]
    levels = {h.level for h in chosen}
    if style == "chapter-word" and len(levels) == 1 and 0 not in levels:
        level_style = f"md{levels.pop()}"
        chosen = [h for h in live if h.kind == "chapter" and h.style in {style, level_style}]
    return chosen, parts


# --------------------------------------------------------------------------- segments


@dataclass(slots=True)
class Segment:
    """A stretch of the body: the front matter, a part's opening, or a chapter."""

    start: int
    end: int
    heading: Heading | None
    part: str | None = None
    paragraphs: list[str] = field(default_factory=list)


def segments(body: str, chapters: list[Heading], parts: list[Heading]) -> list[Segment]:
    """The body cut at every chapter and part heading; the first segment is the front matter."""
    marks = sorted([*chapters, *parts], key=lambda h: h.start)
    out = [Segment(0, marks[0].start if marks else len(body), None)]
    part: str | None = None
    for index, heading in enumerate(marks):
        end = marks[index + 1].start if index + 1 < len(marks) else len(body)
        if heading.kind == "part":
            part = heading.title
        out.append(Segment(heading.start, end, heading, part))
    return out


_BLANK_SPLIT = re.compile(r"\n[ \t\u3000]*\n\s*")


def line_mode(body: str) -> bool:
    """True when paragraphs are single lines (almost no blank lines between them)."""
    lines = body.count("\n") + 1
    blank = len(re.findall(r"\n[ \t\u3000]*(?=\n)", body))
    return lines >= 3 and blank < 0.05 * (lines - blank)


def paragraphs(text: str, *, by_line: bool) -> list[str]:
    """Non-empty paragraphs of ``text``, stripped (inner line breaks kept)."""
    parts = text.split("\n") if by_line else _BLANK_SPLIT.split(text)
    return [p for p in (part.strip() for part in parts) if p]
