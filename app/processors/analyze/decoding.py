"""Bytes to normalised text: BOM, strict UTF-8, then charset-normalizer on a curated list.

Order of the attempts (first success wins):

1. a byte-order mark (UTF-32 before UTF-16, whose mark is a prefix of UTF-32-LE's);
2. UTF-16 without a mark, recognised by its NUL bytes on one side of every pair;
3. strict UTF-8 (ASCII included), the common case and by far the cheapest;
4. charset-normalizer on a *sample* (the lines that hold non-ASCII bytes, from
   the whole file), restricted to :data:`PLAUSIBLE` (``cp_isolation``): left
   free it takes cp1252 French for cp1257/cp1250; each proposal is then
   verified by a strict decode of the *whole* file.

The text is then NFC-normalised and its line endings turned into ``\\n``. A
file that nothing decodes, or that decodes into something full of control
characters (binary data), raises :class:`PermanentError`.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass

from charset_normalizer import from_bytes

from app.processors.base import PermanentError

PLAUSIBLE = [
    "utf_8",
    "gb18030",
    "big5",
    "cp932",
    "euc_jp",
    "euc_kr",
    "cp1252",
    "iso8859_15",
    "cp1251",
    "koi8_r",
    "cp1250",
    "iso8859_7",
]
"""Encodings a manuscript plausibly uses, in the order charset-normalizer may try them."""

SUPERSETS = {
    "big5": ("big5", "cp950", "big5hkscs"),
    "euc_kr": ("euc_kr", "cp949"),
    "cp932": ("shift_jis", "cp932"),
    "gb2312": ("gb18030",),
    "gbk": ("gb18030",),
    "iso8859_1": ("cp1252", "iso8859_1"),
    "latin_1": ("cp1252", "latin_1"),
    "iso8859_15": ("cp1252", "iso8859_15"),
    "cp1250": ("cp1252", "cp1250"),
    "cp1257": ("cp1252", "cp1257"),
    "iso8859_2": ("cp1252", "iso8859_2"),
}
"""Codecs to try, in order, for a detected one: the stricter standard name first when it
decodes (Shift_JIS before cp932), the wider superset when it does not (cp950 for Big5),
and cp1252 before any other single-byte Latin page (see ECOSYSTEM.md §10)."""

DISPLAY_NAMES = {
    "utf_8": "utf-8",
    "utf_8_sig": "utf-8",
    "shift_jis": "shift_jis",
    "iso8859_15": "iso-8859-15",
    "iso8859_1": "iso-8859-1",
    "latin_1": "iso-8859-1",
}

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
SAMPLE_BYTES = 256 * 1024
"""How much of the file charset-normalizer sees (it is slow on whole novels)."""
MAX_CONTROL_RATIO = 0.001
"""More C0/C1 control characters than this share of the text means binary data."""
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_LINE_BREAKS = re.compile(r"\r\n?")


@dataclass(frozen=True, slots=True)
class Decoded:
    """The decoded, normalised text and how it was obtained."""

    text: str
    encoding: str
    confidence: float
    bom: bool


def decode(data: bytes) -> Decoded:
    """Decode ``data`` (see the module docstring); PermanentError when it is not text."""
    text, encoding, confidence, bom = _decode_raw(data)
    if text and len(_CONTROL.findall(text)) > max(2, len(text) * MAX_CONTROL_RATIO):
        raise PermanentError(
            f"The file does not look like text: decoded as {encoding} it is full of "
            "control characters (binary data?)."
        )
    return Decoded(normalise(text), encoding, confidence, bom)


def normalise(text: str) -> str:
    """NFC, ``\\n`` line endings, no leading U+FEFF."""
    if "\r" in text:
        text = _LINE_BREAKS.sub("\n", text)
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text.removeprefix("\ufeff")


def _decode_raw(data: bytes) -> tuple[str, str, float, bool]:
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec), codec, 1.0, True
            except UnicodeDecodeError:
                break  # a false mark (e.g. cp1252 "ÿþ"): detect as if it were not there
    utf16 = _utf16_without_bom(data)
    if utf16 is not None:
        return utf16
    try:
        return data.decode("utf-8"), "utf-8", 1.0, False
    except UnicodeDecodeError:
        pass
    if b"\x00" in data:
        raise PermanentError("The file does not look like text: it contains NUL bytes.")
    return _detect(data)


def _utf16_without_bom(data: bytes) -> tuple[str, str, float, bool] | None:
    head = data[:4096]
    if len(head) < 4 or len(head) % 2:
        return None
    even_nuls = head[0::2].count(0)
    odd_nuls = head[1::2].count(0)
    pairs = len(head) // 2
    for codec, nuls, other in (
        ("utf-16-le", odd_nuls, even_nuls),
        ("utf-16-be", even_nuls, odd_nuls),
    ):
        if nuls > 0.4 * pairs and other < 0.05 * pairs:
            try:
                return data.decode(codec), codec, 0.9, False
            except UnicodeDecodeError:
                return None
    return None


def _sample(data: bytes) -> bytes:
    """The lines holding non-ASCII bytes, from all over the file, up to SAMPLE_BYTES."""
    if len(data) <= SAMPLE_BYTES:
        return data
    parts: list[bytes] = []
    size = 0
    for line in data.split(b"\n"):
        if line.isascii():
            continue
        if len(line) > SAMPLE_BYTES:
            line = _cut(line, SAMPLE_BYTES - size)
        parts.append(line)
        size += len(line) + 1
        if size >= SAMPLE_BYTES:
            break
    return b"\n".join(parts) if parts else data[:SAMPLE_BYTES]


def _cut(line: bytes, limit: int) -> bytes:
    """Cut at a space or tab (never a trail byte of a CJK double-byte encoding)."""
    limit = max(limit, 1024)
    cut = max(line.rfind(b" ", 0, limit), line.rfind(b"\t", 0, limit))
    return line[: cut if cut > 0 else limit]


def _detect(data: bytes) -> tuple[str, str, float, bool]:
    matches = from_bytes(_sample(data), cp_isolation=PLAUSIBLE)
    tried: set[str] = set()
    for match in matches:
        for codec in SUPERSETS.get(match.encoding, (match.encoding,)):
            if codec in tried:
                continue
            tried.add(codec)
            try:
                text = data.decode(codec)
            except UnicodeDecodeError:
                continue
            confidence = round(max(0.0, min(1.0, 1.0 - match.chaos)), 3)
            return text, DISPLAY_NAMES.get(codec, codec.replace("_", "-")), confidence, False
    raise PermanentError(
        "The file could not be decoded: it is not valid UTF-8 and no common encoding "
        "(GB18030, Big5, Shift_JIS, EUC-KR, cp1252, …) decodes it."
    )
