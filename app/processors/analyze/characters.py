"""Main characters of a Latin-script text: people, with whole names and merged aliases.

The scan (:class:`LatinCast`) reads every chapter once with one regular
expression that finds runs of capitalised words (``Mr. Darcy``, ``Mock Turtle``,
``d’Emma``), and for each run looks at the few characters before and after it.
Each run is cut into a *title* (``Mr.``, ``Lady``, ``M.``, ``Madame``…; see
:data:`HONORIFICS`) and a *core* of one to three words; leading stop words
(``The Queen`` → ``Queen``) are context, not name.

What counts as evidence, per core
    person  the name is the subject or object of a verb of speech (``said
            Alice``, ``said the Gryphon``, ``Emma répondit``), is written after a
            title (``Lady Catherine``), follows ``with`` (company), or is
            followed by a verb that takes a person as its subject
            (``Elizabeth smiled``, ``Ahab stood``).
    place   the name follows a preposition of place (``at Longbourn``, ``in
            Nantucket``, ``à Rouen``, ``on board the Pequod``).
A core is a character when it is capitalised mid-sentence at least
:data:`MIN_MID_SENTENCE` times and :data:`CAPITALISED_SHARE` of the time (so
``Whale`` in "the White Whale" does not count), is not a stop word, a title,
a day, a month or a nationality, and its person evidence is at least
:data:`MIN_PERSON_SHARE` of its mentions and at least :data:`PERSON_OVER_PLACE`
times its place evidence.

Aliases and whole names
    ``Mr. Darcy`` and ``Darcy`` are one character (the title is dropped from the
    key); the elided and possessive forms count (``d’Emma``, ``qu’Emma``,
    ``Alice’s``). A two-word core that carries most uses of its words stays whole
    (``Mock Turtle``, ``Moby Dick``) and absorbs them; a full name used less
    than its first name (``Elizabeth Bennet``) is folded into it. A surname
    used with both male and female titles (``Mr. Bennet``, ``Mrs. Bennet``)
    gives one character per title group, each shown with its title (``Mr.
    Bingley`` beside ``Miss Bingley``, ``Madame Bovary`` beside ``M. Bovary``: a
    surname shared by several people does not say which one is meant, so it is
    never shown alone); the bare surname's uses go to the more titled one.
    A name written after a title at least :data:`TITLED_SHARE` of
    the time is shown with it (``Lady Catherine``).

In a text longer than :data:`CONTEXT_SAMPLE_CHARS`, the evidence is read around
every n-th capitalised run only (a regular sample), and the mentions, titles and
chapters of every run are counted once per distinct run and chapter (the runs
themselves counted in C): the Python work follows the sample, not the text.

Mentions are all of these occurrences; characters are sorted by mentions (ties
alphabetical), and each has its mentions per chapter.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from app.processors.analyze.language import STOP_WORDS, stop_words

CONTEXT_SAMPLE_CHARS = 1_500_000
"""Up to this size every mention's context is read; in a longer text, every n-th
capitalised run's (n = 1 + size // CONTEXT_SAMPLE_CHARS), its evidence counting n times.
Mentions, titles and chapters are always counted exactly."""
NOUN_ARTICLE_SHARE = 0.3
"""German: a word written after an article this often is a noun, not a name."""
MIN_MID_SENTENCE = 3
CAPITALISED_SHARE = 0.8
MIN_PERSON_SHARE = 0.03
"""Person evidence (speech, title, a person's verb) for at least this share of mentions."""
PERSON_OVER_PLACE = 0.5
"""...and at least this many times the place evidence."""
PAIR_SHARE = 0.5
"""A two-word name absorbs a word used alone fewer than twice as often as the pair."""
TITLED_SHARE = 0.8
"""A name written after a title this often is shown with it (``Lady Catherine``)."""
GENDER_SHARE = 0.2
"""A title group used for at least this share of a name's titled uses is its own person."""

_HONORIFICS = """mr mrs miss ms dr sir madam madame mademoiselle monsieur mme mlle messrs
lady lord captain capt colonel col general major lieutenant sergeant professor prof reverend
rev saint st uncle aunt father mother brother sister doctor master mistress dame don doña
señor señora herr frau fräulein signor signora m mm"""
HONORIFICS = frozenset(_HONORIFICS.split())
_ABBREVIATED = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "st",
        "mme",
        "mlle",
        "m",
        "mm",
        "messrs",
        "capt",
        "col",
        "gen",
        "lt",
        "sgt",
        "prof",
        "rev",
        "jr",
        "sr",
        "hon",
    ]
)
"""Titles written with a period."""
"""Titles written before a name: never names themselves."""
_MALE = frozenset(
    ["mr", "m", "monsieur", "sir", "lord", "herr", "señor", "signor", "don", "messrs"]
)
_FEMALE = frozenset(
    [
        "mrs",
        "miss",
        "ms",
        "mme",
        "mlle",
        "madam",
        "madame",
        "mademoiselle",
        "lady",
        "frau",
        "fräulein",
        "señora",
        "signora",
        "doña",
        "dame",
    ]
)
_NOT_NAMES = """monday tuesday wednesday thursday friday saturday sunday january
february march april may june july august september october november december lundi mardi
mercredi jeudi vendredi samedi dimanche janvier février mars avril mai juin juillet août
septembre octobre novembre décembre english french german dutch spanish italian american
british irish scotch scottish indian christian christians god heaven chapter book part
volume contents illustration project gutenberg ebook dieu"""
NOT_NAMES = frozenset(_NOT_NAMES.split())
"""Capitalised words that are not people: days, months, nationalities, book parts."""

_SPEECH = """said says say cried replied asked answered exclaimed continued added returned
observed remarked whispered shouted muttered murmured repeated called interrupted rejoined
resumed inquired enquired screamed roared sighed laughed growled began thought
dit répondit reprit demanda écria cria murmura ajouta répliqua continua pensa fit
s'écria s’écria interrompit sagte fragte rief antwortete flüsterte meinte dachte schrie
dijo preguntó respondió exclamó gritó
disse chiese rispose esclamò perguntou respondeu
сказал сказала спросил спросила ответил ответила крикнул крикнула прошептал прошептала
подумал подумала воскликнул воскликнула"""
SPEECH_VERBS = frozenset(_SPEECH.split())
_AGENT = """looked smiled laughed felt knew saw turned took went came sat stood heard wished
wanted tried walked ran nodded shook opened rose paused hesitated spoke told gave wrote read
felt seemed listened waited hastened smiled frowned sighed wept kissed
regarda sourit sentit savait vit tourna prit alla vint assit leva entendit voulait marchait
pleurait écrivit lut embrassa restait songeait sah ging kam stand saß vio fue vino miró
guardò andò venne olhou foi veio lächelte nickte lachte weinte
улыбнулся улыбнулась посмотрел посмотрела вошёл вошел
вошла пошёл пошел пошла встал встала сидел сидела"""
AGENT_VERBS = frozenset(_AGENT.split())
"""Past-tense verbs whose subject is nearly always a person (or a personified creature)."""
_PLACE = """in at into near towards toward within inside outside from aboard board
à dans vers en chez près im nach bei zu en hacia desde nel nella verso
em para"""
PLACE_PREPOSITIONS = frozenset(_PLACE.split()) - {"from"}
_COMPANY = frozenset(["with", "avec", "mit", "con", "com"])
"""``with X``: company is kept with people."""
_ARTICLES = frozenset(
    [
        "the",
        "a",
        "an",
        "le",
        "la",
        "les",
        "l",
        "un",
        "une",
        "der",
        "die",
        "das",
        "den",
        "el",
        "la",
        "los",
        "las",
        "il",
        "lo",
        "o",
    ]
)

_UPPER = "A-ZÀ-ÖØ-ÞĀ-ŽА-ЯЁΑ-Ω"
_RUN = re.compile(
    # an elision (d’, qu’) may stand before the first word; words are joined by one space
    # or line break, a title may end with a period (M. Homais); every quantifier is
    # possessive, so the scan is linear
    # (the capital comes first so that the engine skips to candidates in C; the
    # look-behinds then check what stands before it)
    rf"[{_UPPER}](?:(?<![\w'’\-].)|(?<=(?<!\w)[dDlLjJmMnNsStTcC]['’].)|(?<=[qQ]u['’].))"
    rf"[^\W\d_]*+(?:\.?[ \n][{_UPPER}][^\W\d_]*+){{0,3}}"
)
_BEFORE = re.compile(
    # read on the reversed text before a name: the word before it (across at most one
    # line break), or a sentence end or blank line
    r"[^\w.!?;:…\n]{0,3}(?:\n[^\w.!?;:…\n]{0,3})?([^\W\d_]+)|[^\w]{0,4}([.!?;:…]|\n[ \t]*\n)"
)
_TOKEN = re.compile(r"\S+")
_BEFORE2 = re.compile(r"[^\w\n]{0,3}([^\W\d_]+)")
_AFTER = re.compile(r"(?:['’]s\b)?[ ,]{0,2}([^\W\d_]+)")
_CONTEXT = 30


@dataclass(slots=True)
class _Core:
    mentions: int = 0
    sampled: int = 0
    """Mentions whose context was read (weighted like the evidence)."""
    article: int = 0
    """Mentions right after an article (``the``, ``der``)."""
    mid: int = 0
    person: int = 0
    place: int = 0
    titles: Counter[str] = field(default_factory=Counter)
    """Title as written (``Mr.``, ``Lady``) → uses."""
    groups: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    """Title group (``male``, ``female`` or ``""``) → mentions per chapter."""


@dataclass(frozen=True, slots=True)
class Character:
    name: str
    mentions: int
    chapters: dict[int, int]
    """Chapter index (0 for text outside chapters) → mentions."""


class LatinCast:
    """Collects name evidence chapter by chapter (see the module docstring)."""

    def __init__(self, language: str, size: int = 0) -> None:
        """``size``: the text's length in characters, which sets the sampling stride."""
        self.stride = 1 + size // CONTEXT_SAMPLE_CHARS
        # German capitalises every noun: there a capital says nothing of a name, and a
        # word written after an article most of the time (der Mann) is a noun
        self.nouns_capitalised = language == "de"
        self.seen = 0
        self.stop = stop_words(language) | STOP_WORDS["en"]
        self.skip = frozenset(word.capitalize() for word in self.stop) | {"I"}
        """Capitalised stop words, which the scan passes over at once."""
        self.cores: dict[tuple[str, ...], _Core] = defaultdict(_Core)
        self.parsed: dict[tuple[str, ...], object] = {}
        """Words of a piece → :meth:`_parse`'s answer."""
        self.names: dict[str, list[tuple[tuple[str, ...], str, str]]] = {}
        """A run → :meth:`_names`' answer."""

    def feed(self, text: str, chapter: int) -> None:
        """Read one stretch of text belonging to chapter ``chapter``."""
        if self.stride > 1:
            self._feed_sampled(text, chapter)
            return
        skip = self.skip
        for match in _RUN.finditer(text):
            run = match.group()
            if run in skip:  # a lone stop word ("The", "But"): nothing to learn from it
                continue
            base = match.start()
            if " " not in run and "\n" not in run:  # one word, the common case
                self._observe(text, [(base, match.end(), run)], True, chapter)
                continue
            piece: list[tuple[int, int, str]] = []
            first = True
            for token in _TOKEN.finditer(run):
                word = token.group()
                piece.append((base + token.start(), base + token.end(), word))
                if word.endswith(".") and not _is_title(word[:-1]):
                    self._observe(text, piece, first, chapter)  # a sentence ends here
                    piece, first = [], False
            if piece:
                self._observe(text, piece, first, chapter)

    def _observe(
        self, text: str, piece: list[tuple[int, int, str]], first: bool, chapter: int
    ) -> None:
        start = piece[0][0]
        prev, prev2, at_start = "", "", True
        self.seen += 1
        sampled = not self.seen % self.stride
        if first and sampled:
            prev, prev2, at_start = self._before(text, start)
        words = tuple(word for _, _, word in piece)
        parsed = self._parse(words)
        if parsed is None:
            return
        title, leading, key, nxt = parsed
        core = self.cores[key]
        core.mentions += 1
        if sampled:  # evidence, weighted by the sampling stride
            if leading:
                at_start = False
                for folded in leading:
                    if folded:
                        prev2, prev = prev, folded
            self._evidence(core, text, piece[-1][1], title, prev, prev2, at_start, nxt)
        if title:
            core.titles[title] += 1
        core.groups[_group(title)][chapter] += 1

    def _evidence(
        self,
        core: _Core,
        text: str,
        end: int,
        title: str,
        prev: str,
        prev2: str,
        at_start: bool,
        nxt: str | None,
    ) -> None:
        """Add one mention's evidence to ``core``, weighted by the sampling stride
        (``end``: where the run ends; ``nxt``: the word after the name inside the run)."""
        weight = self.stride
        core.sampled += weight
        if prev in _ARTICLES:
            core.article += weight
        if nxt is None:
            after = _AFTER.match(text, end)
            nxt = after.group(1).lower() if after is not None else ""
        if not at_start:
            core.mid += weight
        speech = prev in SPEECH_VERBS or (prev in _ARTICLES and prev2 in SPEECH_VERBS)
        if title or speech or prev in _COMPANY or nxt in SPEECH_VERBS or nxt in AGENT_VERBS:
            core.person += weight
        if prev in PLACE_PREPOSITIONS or (prev in _ARTICLES and prev2 in PLACE_PREPOSITIONS):
            core.place += weight

    def _parse(
        self, words: tuple[str, ...]
    ) -> tuple[str, tuple[str, ...], tuple[str, ...], str | None] | None:
        """A piece's title, leading words (each stop word or article case-folded, ""
        for a title), name (its core's key) and the word after the name inside the
        piece (None when the name ends it); None when the piece names no one. Depends
        on the words alone: cached."""
        parsed = self.parsed.get(words, _UNPARSED)
        if parsed is not _UNPARSED:
            return parsed  # type: ignore[return-value]
        stop = self.stop
        title = ""
        index = 0
        leading: list[str] = []
        result: tuple[str, tuple[str, ...], tuple[str, ...], str | None] | None = None
        while index < len(words):
            bare = words[index].rstrip(".")
            folded = bare.lower()
            if folded in HONORIFICS or (_is_title(bare) and words[index].endswith(".")):
                title = words[index]
                leading.append("")
            elif folded in stop or folded in _ARTICLES:
                if title:
                    self.parsed[words] = None
                    return None
                leading.append(folded)
            else:
                break
            index += 1
        core_words: list[str] = []
        for word in words[index:]:
            bare = word.rstrip(".")
            folded = bare.lower()
            if folded in stop or folded in HONORIFICS or len(bare) < 2:
                break
            core_words.append(bare)
        if core_words:
            last = index + len(core_words)
            nxt = words[last].rstrip(".").lower() if last < len(words) else None
            result = (title, tuple(leading), tuple(core_words), nxt)
        self.parsed[words] = result
        return result

    def _feed_sampled(self, text: str, chapter: int) -> None:
        """:meth:`feed` for a long text: every run's mentions, titles and chapter are
        counted once per distinct run (in C, then one step per distinct run), and the
        context is read around every ``stride``-th run only."""
        matches = list(_RUN.finditer(text))
        cores, names = self.cores, self.names
        for run, count in Counter(map(_GROUP, matches)).items():
            named = names.get(run)
            if named is None:
                named = names[run] = self._names(run)
            for key, title, group in named:
                core = cores[key]
                core.mentions += count
                if title:
                    core.titles[title] += count
                core.groups[group][chapter] += count
        stride = self.stride
        first_sampled = (stride - 1 - self.seen) % stride
        self.seen += len(matches)
        for match in matches[first_sampled::stride]:
            run = match.group()
            if run in self.skip:
                continue
            base = match.start()
            for words, start, end in _pieces(run):
                parsed = self._parse(words)
                if parsed is None:
                    continue
                title, leading, key, nxt = parsed
                prev, prev2, at_start = "", "", True
                if start == 0:  # the run's first piece: its context
                    prev, prev2, at_start = self._before(text, base)
                if leading:
                    at_start = False
                    for folded in leading:
                        if folded:
                            prev2, prev = prev, folded
                self._evidence(cores[key], text, base + end, title, prev, prev2, at_start, nxt)

    def _names(self, run: str) -> list[tuple[tuple[str, ...], str, str]]:
        """The names a run holds: each one's key, title and title group."""
        if run in self.skip:
            return []
        out = []
        for words, _, _ in _pieces(run):
            parsed = self._parse(words)
            if parsed is not None:
                out.append((parsed[2], parsed[0], _group(parsed[0])))
        return out

    @staticmethod
    def _before(text: str, start: int) -> tuple[str, str, bool]:
        """The word before ``start``, the one before it, and whether a sentence starts."""
        back = text[max(0, start - _CONTEXT) : start][::-1]
        before = _BEFORE.match(back)
        at_start = start == 0 or (before is not None and before.group(2) is not None)
        prev = prev2 = ""
        if before is not None and before.group(1):
            prev = before.group(1)[::-1].lower()
            earlier = _BEFORE2.match(back, before.end())
            prev2 = earlier.group(1)[::-1].lower() if earlier is not None else ""
        return prev, prev2, at_start

    def characters(self, lower_counts: Counter[str], limit: int) -> list[Character]:
        """The ``limit`` most mentioned characters (``lower_counts``: case-folded word
        counts of the whole text, for the capitalised-share test)."""
        kept = {key: core for key, core in self.cores.items() if self._is_person(key, core)}
        kept = self._merge_pairs(kept, lower_counts)
        found: list[Character] = []
        for key, core in kept.items():
            found.extend(self._split_by_title(key, core))
        found.sort(key=lambda c: (-c.mentions, c.name))
        return found[:limit]

    def _is_person(self, key: tuple[str, ...], core: _Core) -> bool:
        folded = " ".join(key).lower()
        if len(key) == 1 and (folded in self.stop or folded in HONORIFICS or folded in NOT_NAMES):
            return False
        if self.nouns_capitalised and core.article >= NOUN_ARTICLE_SHARE * core.sampled:
            return False
        return (
            core.mid >= MIN_MID_SENTENCE
            and core.person >= max(2.0, MIN_PERSON_SHARE * core.mentions)
            and core.person >= PERSON_OVER_PLACE * core.place
        )

    def _merge_pairs(
        self, kept: dict[tuple[str, ...], _Core], lower_counts: Counter[str]
    ) -> dict[tuple[str, ...], _Core]:
        # the capitalised-share test, on the last word (the head of "White Whale")
        out: dict[tuple[str, ...], _Core] = {}
        for key, core in kept.items():
            lower = lower_counts.get(key[-1].lower(), 0)
            if core.mid >= CAPITALISED_SHARE * (core.mid + lower):
                out[key] = core
        singles = {key[0]: core for key, core in self.cores.items() if len(key) == 1}
        folded: set[tuple[str, ...]] = set()
        for key in sorted((k for k in out if len(k) > 1), key=lambda k: -out[k].mentions):
            pair = out[key]
            parts = [singles.get(word) for word in key]
            known = [(word, core) for word, core in zip(key, parts, strict=True) if core]
            big = max((core.mentions for _, core in known), default=0)
            if big and pair.mentions < PAIR_SHARE * big:
                # a full name used less than its parts: fold into the first kept part
                for word, _ in known:
                    target = out.get((word,))
                    if target is not None:
                        _absorb(target, pair)
                        break
                del out[key]
                folded.add(key)
                continue
            for word, _ in known:  # the pair carries its words: "Turtle" is "Mock Turtle"
                single = out.pop((word,), None) or self.cores.get((word,))
                if single is not None and single is not pair:
                    _absorb(pair, single)
                    self.cores.pop((word,), None)
        # runs that are no character themselves ("Perhaps Darcy" at a sentence start,
        # a rare "Jane Bennet") count for the character among their words
        for key, core in self.cores.items():
            if len(key) > 1 and key not in out and key not in folded:
                target = out.get(key[:1]) or out.get(key[-1:])
                if target is not None and target is not core:
                    _absorb(target, core)
        return out

    @staticmethod
    def _split_by_title(key: tuple[str, ...], core: _Core) -> list[Character]:
        name = " ".join(key)
        titled = sum(core.titles.values())
        groups = {g: sum(c.values()) for g, c in core.groups.items()}
        if titled:
            shares = {g: groups.get(g, 0) / titled for g in ("male", "female")}
            if min(shares.values()) >= GENDER_SHARE:
                # a surname several people share: untitled uses go to the more titled
                # person, and each is shown with a title, as a bare surname would not
                # say which of them is meant ("Bovary": Charles, Emma, his mother)
                major = max(("male", "female"), key=lambda g: (groups.get(g, 0), g))
                rest = [g for g in core.groups if g not in ("male", "female")]
                untitled: Counter[int] = Counter()
                for group in rest:
                    untitled.update(core.groups[group])
                out = []
                for group in ("male", "female"):
                    titles = Counter({t: n for t, n in core.titles.items() if _group(t) == group})
                    title = min(titles.items(), key=lambda item: (-item[1], item[0]))[0]
                    counts = Counter(core.groups[group])
                    shown = f"{title} {name}"
                    if group == major:
                        counts.update(untitled)
                    out.append(Character(shown, sum(counts.values()), dict(counts)))
                return out
        chapters: Counter[int] = Counter()
        for counts in core.groups.values():
            chapters.update(counts)
        if titled >= TITLED_SHARE * core.mentions:
            title = min(core.titles.items(), key=lambda item: (-item[1], item[0]))[0]
            name = f"{title} {name}"
        return [Character(name, core.mentions, dict(chapters))]


_UNPARSED = object()
_GROUP = re.Match.group


def _pieces(run: str) -> list[tuple[tuple[str, ...], int, int]]:
    """A run cut into pieces at sentence ends (a period after a word that is not a
    title: ``Alice. The``), as :meth:`LatinCast.feed` cuts it: each piece's words,
    its start and end inside the run."""
    out: list[tuple[tuple[str, ...], int, int]] = []
    words: list[str] = []
    start = 0
    for token in _TOKEN.finditer(run):
        word = token.group()
        if not words:
            start = token.start()
        words.append(word)
        if word.endswith(".") and not _is_title(word[:-1]):
            out.append((tuple(words), start, token.end()))
            words = []
    if words:
        out.append((tuple(words), start, len(run)))
    return out


def _group(title: str) -> str:
    bare = title.rstrip(".").lower()
    return "male" if bare in _MALE else "female" if bare in _FEMALE else ""


def _absorb(target: _Core, other: _Core) -> None:
    target.mentions += other.mentions
    target.mid += other.mid
    target.sampled += other.sampled
    target.article += other.article
    target.person += other.person
    target.place += other.place
    target.titles.update(other.titles)
    for group, counts in other.groups.items():
        target.groups[group].update(counts)


def _is_title(bare: str) -> bool:
    """An abbreviated title (``Mr``, ``Mme``) or an initial (``M``): its period ends no
    sentence (after a whole word, ``Lady.`` or ``Frau.``, it does)."""
    return bare.lower() in _ABBREVIATED or len(bare) == 1
