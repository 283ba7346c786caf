"""Corpus texts re-encoded in each encoding they can be written in, cut where it hurts.

A :class:`Manuscript` is ``BOM + P + S + B`` in one encoding, where ``P`` is a
piece of a corpus text (from anywhere in it, with LF or CRLF line endings and
perhaps a leading newline), padded with spaces to an exact byte length so that
the upload check's cut at :data:`SNIFF_BYTES` falls *inside* the multi-byte
character ``S``; ``B`` is another piece of the same text. Single-byte encodings
(cp1252, Latin-1) have no character to split: their cut falls anywhere.

Which encodings a text "can be written in":

* every text: UTF-8 with and without a BOM, UTF-16 LE and BE with a BOM;
* the English and French texts: cp1252, and Latin-1 with the typographic
  characters it lacks (curly quotes, dashes, …) spelt in ASCII;
* 红楼梦: GB18030, and Big5 with the simplified-only characters Big5 lacks
  left out (the corpus has no traditional-Chinese work);
* 吾輩は猫である: Shift_JIS, EUC-JP and GB18030.

CJK code pages are not applied to the Latin texts: their only non-ASCII
characters would be punctuation, and nothing in the bytes says whether a
full-width quote came from Shift_JIS, EUC-JP, Big5 or GB18030.
"""

from __future__ import annotations

import codecs
import functools
import itertools
from bisect import bisect_right
from dataclasses import dataclass

from hypothesis import strategies as st

from app.processors.analyze.decoding import SNIFF_BYTES, canonical_encoding, normalise
from tests.conftest import CORPUS


@dataclass(frozen=True, slots=True)
class Encoding:
    """How a manuscript is written: a codec for the text, maybe a byte-order mark."""

    label: str
    codec: str
    bom: bytes = b""


UNICODE = [
    Encoding("utf-8", "utf-8"),
    Encoding("utf-8 with BOM", "utf-8", codecs.BOM_UTF8),
    Encoding("utf-16-le with BOM", "utf-16-le", codecs.BOM_UTF16_LE),
    Encoding("utf-16-be with BOM", "utf-16-be", codecs.BOM_UTF16_BE),
]
LATIN = [Encoding("cp1252", "cp1252"), Encoding("latin-1", "latin-1")]
CHINESE = [Encoding("gb18030", "gb18030"), Encoding("big5", "big5")]
JAPANESE = [
    Encoding("shift_jis", "shift_jis"),
    Encoding("euc-jp", "euc_jp"),
    Encoding("gb18030", "gb18030"),
]

FILES = {
    "pride_and_prejudice.en.utf8.txt": ("utf-8", UNICODE + LATIN),
    "alice_in_wonderland.en.utf8.txt": ("utf-8-sig", UNICODE + LATIN),
    "moby_dick.en.utf8.txt": ("utf-8-sig", UNICODE + LATIN),
    "alice_in_wonderland.en.md": ("utf-8", UNICODE + LATIN),
    "madame_bovary.fr.cp1252.txt": ("cp1252", UNICODE + LATIN),
    "hongloumeng.zh.utf8.txt": ("utf-8", UNICODE + CHINESE),
    "hongloumeng.zh.gb18030.txt": ("gb18030", UNICODE + CHINESE),
    "wagahai_wa_neko_de_aru.ja.sjis.txt": ("shift_jis", UNICODE + JAPANESE),
}
"""Every corpus file (see its MANIFEST.md): how it is stored, what it can be written in."""

PAIRS = [(name, encoding) for name, (_, encodings) in FILES.items() for encoding in encodings]

ASCII_SPELLING = str.maketrans(
    {"‘": "'", "’": "'", "“": '"', "”": '"', "—": "--", "–": "-", "…": "...", "™": "(TM)"}
    | {"•": "*", "œ": "oe", "Œ": "OE", "\ufeff": ""}
)
NON_BMP = "😀"
"""UTF-16 can only be cut inside a surrogate pair; the corpus has none, so one is added."""


@functools.cache
def text_of(name: str) -> str:
    """The corpus file's text, LF line endings, no BOM."""
    stored = FILES[name][0]
    return (CORPUS / name).read_bytes().decode(stored).replace("\r\n", "\n")


@functools.cache
def writable(name: str, codec: str) -> str:
    """The text as it can be written in ``codec`` (see the module docstring)."""
    text = text_of(name)
    if codec == "latin-1":
        text = text.translate(ASCII_SPELLING)
    missing = "".join(ch for ch in set(text) if not _encodable(ch, codec))
    return text.translate(str.maketrans("", "", missing)) if missing else text


def _encodable(ch: str, codec: str) -> bool:
    try:
        ch.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


@functools.cache
def straddlers(name: str, codec: str) -> tuple[str, ...]:
    """Characters of the text (or the added non-BMP one) that take 2+ bytes in ``codec``."""
    if codec.startswith("utf-16"):
        return (NON_BMP,)
    chosen = sorted(ch for ch in set(writable(name, codec)) if len(ch.encode(codec)) >= 2)
    return tuple(chosen[:: max(1, len(chosen) // 40)])  # a spread of at most ~40


def split_points(straddler: str, codec: str) -> list[int]:
    """Offsets inside ``straddler``'s bytes where a cut splits it (code units in UTF-16)."""
    size = len(straddler.encode(codec))
    step = 2 if codec.startswith("utf-16") else 1
    return list(range(step, size, step))


@dataclass(frozen=True, slots=True, repr=False)
class Manuscript:
    name: str
    encoding: Encoding
    data: bytes
    text: str
    """What decoding ``data`` must give, before normalisation."""
    split: bool
    """The cut at SNIFF_BYTES falls inside a character."""

    def __repr__(self) -> str:
        cut = self.data[SNIFF_BYTES - 8 : SNIFF_BYTES + 8]
        return (
            f"Manuscript({self.name!r}, {self.encoding.label!r}, {len(self.data)} bytes, "
            f"around the cut: {cut!r})"
        )

    @property
    def expected(self) -> str:
        return normalise(self.text)

    def is_right_encoding(self, reported: str) -> bool:
        """``reported`` names this encoding (or an equivalent that reads the same text)."""
        if canonical_encoding(reported) == canonical_encoding(self.encoding.codec):
            return True
        body = self.data[len(self.encoding.bom) :]
        try:
            return body.decode(reported) == body.decode(self.encoding.codec)
        except (UnicodeDecodeError, LookupError):
            return False


def build(
    name: str,
    encoding: Encoding,
    *,
    prefix_start: int,
    body_start: int,
    body_chars: int,
    crlf: bool,
    leading_newline: bool,
    straddler: str,
    split_at: int,
) -> Manuscript:
    """``BOM + P + S + B`` with the cut at SNIFF_BYTES ``split_at`` bytes into ``S``.

    ``straddler`` empty (single-byte encodings): ``P`` simply fills the first
    SNIFF_BYTES - ``split_at`` bytes.
    """
    codec = encoding.codec
    text = writable(name, codec)
    newline = "\r\n" if crlf else "\n"
    unit = len(" ".encode(codec))
    target = SNIFF_BYTES - len(encoding.bom) - split_at
    head = (text[prefix_start:] + text)[:target].replace("\n", newline)  # wraps around
    head = _fit((newline if leading_newline else "") + head, codec, target // unit * unit)
    head += " " * ((target - len(head.encode(codec))) // unit)
    body = text[body_start : body_start + body_chars].replace("\n", newline)
    whole = head + straddler + body
    data = encoding.bom + whole.encode(codec)
    start = len(encoding.bom) + len(head.encode(codec))
    split = bool(straddler) and start < SNIFF_BYTES < start + len(straddler.encode(codec))
    if straddler:
        assert split, (name, encoding, straddler, split_at)
    return Manuscript(name, encoding, data, whole, split)


def _fit(head: str, codec: str, limit: int) -> str:
    """The longest start of ``head`` that encodes to at most ``limit`` bytes."""
    ends = list(itertools.accumulate(len(ch.encode(codec)) for ch in head))
    return head[: bisect_right(ends, limit)]


@st.composite
def manuscripts(draw: st.DrawFn, max_body_chars: int = 120_000) -> Manuscript:
    """Any corpus file in any encoding it can be written in, cut inside a character."""
    name, encoding = draw(st.sampled_from(PAIRS))
    text = writable(name, encoding.codec)
    choices = straddlers(name, encoding.codec)
    straddler = draw(st.sampled_from(choices)) if choices else ""
    points = split_points(straddler, encoding.codec) if straddler else [0]
    body_chars = draw(st.integers(min_value=1, max_value=max_body_chars))
    return build(
        name,
        encoding,
        prefix_start=draw(st.integers(min_value=0, max_value=len(text) - 1)),
        body_start=draw(st.integers(min_value=0, max_value=max(0, len(text) - body_chars))),
        body_chars=body_chars,
        crlf=draw(st.booleans()),
        leading_newline=draw(st.booleans()),
        straddler=straddler,
        split_at=draw(st.sampled_from(points)),
    )


ISSUE_FILES = {
    "sjis": "shift_jis",
    "gb18030-crlf": "gb18030",
    "gb18030-leading-newline": "gb18030",
    "utf16-surrogate": "utf-16-le",
}
"""The files issue 12 found refused, with the encoding each is in."""


def issue_files() -> dict[str, bytes]:
    """Each cut at SNIFF_BYTES inside a character: a Shift_JIS pair, a GB18030 pair, a
    UTF-16 surrogate pair. 吾輩は猫である is whole; 红楼梦 stops at the first line end
    after 300 KB (its first SNIFF_BYTES, all the upload check reads, are the issue's
    bytes exactly; the whole novel would only make the analysis slower)."""
    sjis = (CORPUS / "wagahai_wa_neko_de_aru.ja.sjis.txt").read_bytes()
    gb18030 = (CORPUS / "hongloumeng.zh.gb18030.txt").read_bytes()
    gb18030 = gb18030[: gb18030.index(b"\n", 300_000) + 1]
    return {
        "sjis": sjis,
        "gb18030-crlf": gb18030.replace(b"\n", b"\r\n"),
        "gb18030-leading-newline": b"\n" + gb18030,
        "utf16-surrogate": codecs.BOM_UTF16_LE
        + ("a" * 32766 + "😀" + " tail text." * 100).encode("utf-16-le"),
    }


SIGNATURES = {
    "pdf": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document"),
    "png": (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    "jpeg": (b"\xff\xd8\xff\xe0", "a JPEG image"),
    "gif": (b"GIF89a", "a GIF image"),
    "zip": (b"PK\x03\x04\x14\x00", "a ZIP archive (DOCX, EPUB, ODT, …)"),
    "docx": (
        b"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml",
        "a ZIP archive (DOCX, EPUB, ODT, …)",
    ),
    "epub": (
        b"PK\x03\x04\x0a\x00\x00\x00mimetypeapplication/epub+zip",
        "a ZIP archive (DOCX, EPUB, ODT, …)",
    ),
    "gzip": (b"\x1f\x8b\x08\x00", "a gzip archive"),
    "bzip2": (b"BZh91AY&SY", "a bzip2 archive"),
    "xz": (b"\xfd7zXZ\x00", "an xz archive"),
    "7z": (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    "elf": (b"\x7fELF\x02\x01\x01", "an ELF executable"),
    "ole2": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an OLE2 document (DOC, XLS, …)"),
    "sqlite": (b"SQLite format 3\x00", "an SQLite database"),
    "tar": (b"chapter1.txt".ljust(257, b"\x00") + b"ustar\x0000", "a tar archive"),
    "exe": (
        b"MZ".ljust(0x3C, b"\x90") + (0x40).to_bytes(4, "little") + b"PE\x00\x00",
        "a Windows executable",
    ),
}
"""Signatures and the format name the refusal gives (text follows each in the tests)."""
