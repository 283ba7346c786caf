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
    gives one character per title group (the bare surname goes to the more
    titled one, and is shown bare when it is used so at least
    :data:`BARE_SHARE` as often as the title: ``Bingley`` beside ``Miss
    Bingley``). A name written after a title at least :data:`TITLED_SHARE` of
    the time is shown with it (``Lady Catherine``).

In a text longer than :data:`CONTEXT_SAMPLE_CHARS`, the evidence is read around
a regular sample of the mentions (linear cost, bounded per character).

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
mention's (n = 1 + size // CONTEXT_SAMPLE_CHARS), its evidence counting n times.
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
BARE_SHARE = 0.5
"""Of two persons sharing a surname, the one named bare this often (against its titled
uses) is shown bare (``Bingley`` beside ``Miss Bingley``)."""
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

    def feed(self, text: str, chapter: int) -> None:
        """Read one stretch of text belonging to chapter ``chapter``."""
        skip, cores, stride = self.skip, self.cores, self.stride
        for match in _RUN.finditer(text):
            run = match.group()
            if run in skip:  # a lone stop word ("The", "But"): nothing to learn from it
                continue
            base = match.start()
            if " " not in run and "\n" not in run:  # one word, the common case
                if stride > 1 and (self.seen + 1) % stride:
                    # not in the sample: count the mention, read no context
                    self.seen += 1
                    folded = run.lower()
                    if len(run) > 1 and folded not in self.stop and folded not in HONORIFICS:
                        core = cores[(run,)]
                        core.mentions += 1
                        core.groups[""][chapter] += 1
                    continue
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
        stop = self.stop
        start = piece[0][0]
        prev, prev2, at_start = "", "", True
        self.seen += 1
        sampled = not self.seen % self.stride
        if first and sampled:
            back = text[max(0, start - _CONTEXT) : start][::-1]
            before = _BEFORE.match(back)
            at_start = start == 0 or (before is not None and before.group(2) is not None)
            if before is not None and before.group(1):
                prev = before.group(1)[::-1].lower()
                earlier = _BEFORE2.match(back, before.end())
                prev2 = earlier.group(1)[::-1].lower() if earlier is not None else ""
        words = [word for _, _, word in piece]
        title = ""
        index = 0
        while index < len(words):
            bare = words[index].rstrip(".")
            folded = bare.lower()
            if folded in HONORIFICS or (_is_title(bare) and words[index].endswith(".")):
                title = words[index]
            elif folded in stop or folded in _ARTICLES:
                if title:
                    return
                prev2, prev = prev, folded
            else:
                break
            at_start = False
            index += 1
        core_words: list[str] = []
        for word in words[index:]:
            bare = word.rstrip(".")
            folded = bare.lower()
            if folded in stop or folded in HONORIFICS or len(bare) < 2:
                break
            core_words.append(bare)
        if not core_words:
            return
        core = self.cores[tuple(core_words)]
        core.mentions += 1
        if sampled:  # evidence, weighted by the sampling stride
            weight = self.stride
            core.sampled += weight
            if prev in _ARTICLES:
                core.article += weight
            last = index + len(core_words)
            if last < len(words):
                nxt = words[last].rstrip(".").lower()
            else:
                after = _AFTER.match(text, piece[-1][1])
                nxt = after.group(1).lower() if after is not None else ""
            if not at_start:
                core.mid += weight
            speech = prev in SPEECH_VERBS or (prev in _ARTICLES and prev2 in SPEECH_VERBS)
            if title or speech or prev in _COMPANY or nxt in SPEECH_VERBS or nxt in AGENT_VERBS:
                core.person += weight
            if prev in PLACE_PREPOSITIONS or (prev in _ARTICLES and prev2 in PLACE_PREPOSITIONS):
                core.place += weight
        if title:
            core.titles[title] += 1
        core.groups[_group(title)][chapter] += 1

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
                # untitled uses go to the more titled person, unless they outnumber it
                # (then the bare surname is a character of its own)
                major = max(("male", "female"), key=lambda g: (groups.get(g, 0), g))
                rest = [g for g in core.groups if g not in ("male", "female")]
                untitled: Counter[int] = Counter()
                for group in rest:
                    untitled.update(core.groups[group])
                out = []
                bare = sum(untitled.values())
                if bare > groups.get(major, 0):
                    out.append(Character(name, bare, dict(untitled)))
                    untitled = Counter()
                for group in ("male", "female"):
                    titles = Counter({t: n for t, n in core.titles.items() if _group(t) == group})
                    title = min(titles.items(), key=lambda item: (-item[1], item[0]))[0]
                    counts = Counter(core.groups[group])
                    shown = f"{title} {name}"
                    if group == major and untitled:
                        counts.update(untitled)
                        if bare >= BARE_SHARE * groups.get(major, 0):
                            shown = name  # "Bingley" beside "Miss Bingley"
                    out.append(Character(shown, sum(counts.values()), dict(counts)))
                return out
        chapters: Counter[int] = Counter()
        for counts in core.groups.values():
            chapters.update(counts)
        if titled >= TITLED_SHARE * core.mentions:
            title = min(core.titles.items(), key=lambda item: (-item[1], item[0]))[0]
            name = f"{title} {name}"
        return [Character(name, core.mentions, dict(chapters))]


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
