"""Bytes to normalised text, and the upload check that agrees with it.

This is the one place that decides whether bytes are a text file and in which
encoding: the ``analyze`` processor decodes whole files with :func:`decode`,
and the upload check asks :func:`sniff` about the first :data:`SNIFF_BYTES`
of an upload, so an upload is never refused when the analyzer would decode it.

Order of the attempts in :func:`decode` (first success wins):

0. a known binary signature (PDF, PNG, ZIP/DOCX/EPUB, gzip, ELF, …) refuses the
   file, whatever text may follow it (:func:`binary_format`);
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

:func:`sniff` runs the same steps on a prefix. When the prefix is the whole
file its verdict is exactly :func:`decode`'s. Otherwise the prefix may end in
the middle of a character (a Shift_JIS pair, a GB18030 sequence, a UTF-16
surrogate pair), so every decode is incremental and tolerates an incomplete
last sequence, charset-normalizer sees the prefix cut at a character boundary,
and the verdict leans towards acceptance: the prefix is refused only when it
starts with a binary signature, holds a NUL byte where :func:`decode` refuses
one, or no encoding that :func:`decode` could choose reads it with no more
control characters than the whole file would be allowed. Each means that
:func:`decode` would refuse the whole file too, whatever follows the prefix
(tests/processors/test_decoding.py checks this property on random mixtures).
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from charset_normalizer import from_bytes

from app.processors.analyze.text import count_controls
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

DETECTABLE = tuple(
    dict.fromkeys(
        [codec for name in PLAUSIBLE for codec in SUPERSETS.get(name, (name,))]
        + [codec for codecs_ in SUPERSETS.values() for codec in codecs_]
    )
)
"""Every codec detection (step 4) can end with, most likely first."""

DISPLAY_NAMES = {
    "utf_8": "utf-8",
    "utf_8_sig": "utf-8",
    "shift_jis": "shift_jis",
    "iso8859_15": "iso-8859-15",
    "iso8859_1": "iso-8859-1",
    "latin_1": "iso-8859-1",
}

FAMILIES = {
    "utf-8-sig": "utf-8",
    "cp932": "shift_jis",
    "shift_jis_2004": "shift_jis",
    "shift_jisx0213": "shift_jis",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "cp950": "big5",
    "big5hkscs": "big5",
    "cp949": "euc_kr",
    "latin-1": "cp1252",
    "iso8859-1": "cp1252",
    "ascii": "utf-8",
}
"""Codecs that name the same encoding for a manuscript, mapped to one of them: a vendor
superset and its standard (cp932 and Shift_JIS, cp950 and Big5, GBK and GB18030), and
ISO-8859-1, which decodes every real text as cp1252 does (C1 controls are never text;
WHATWG's Encoding Standard maps the label the same way). ASCII is a subset of UTF-8."""

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
SAMPLE_BYTES = 256 * 1024
"""How much of the file charset-normalizer sees (it is slow on whole novels)."""
PROBE_BYTES = 2048
"""charset-normalizer's chunk size (512 by default). It first measures the chaos of a few
chunks cut at byte offsets; in Big5, Shift_JIS and EUC-JP a cut inside a character leaves a
trail byte that reads as ASCII, and with 512-byte chunks that noise alone made it give up
on about 1 % of real Big5 and EUC-JP files (tests/processors/test_decoding.py)."""
PROBE_STEPS = 5
"""How many chunks charset-normalizer probes (its default)."""
SNIFF_BYTES = 64 * 1024
"""How much of an upload the upload check reads and gives to :func:`sniff`."""
MAX_CONTROL_RATIO = 0.001
"""More C0/C1 control characters than this share of the text means binary data."""
_CONTROL_BYTES = bytes([*range(0x09), *range(0x0E, 0x20), 0x7F])
"""The control characters below 0x80 that count against a text (tab, line and page
breaks do not), with the C1 controls U+0080–U+009F: :func:`.text.count_controls`."""
_LINE_BREAKS = re.compile(r"\r\n?")
_UTF16_HEAD = 4096
_NOT_A_BOUNDARY = bytes(range(0x30, 0x100))
"""Bytes that may continue a character in an ASCII-compatible candidate encoding: trail
bytes of Shift_JIS, Big5 and GB18030 pairs are >= 0x40, GB18030's four-byte sequences
use 0x30-0x39, EUC and UTF-8 never go below 0x80. A cut after any lower byte is a
character boundary in every one of them."""

_SIGNATURES = tuple(
    (re.compile(pattern, re.DOTALL), kind)
    for pattern, kind in (
        (rb"%PDF-", "a PDF document"),
        (rb"\x89PNG\r\n\x1a\n", "a PNG image"),
        (rb"\xff\xd8\xff", "a JPEG image"),
        (rb"GIF8[79]a", "a GIF image"),
        (rb"II\*\x00|MM\x00\*", "a TIFF image"),
        (rb"RIFF....WEBP", "a WebP image"),
        (rb"RIFF....(?:WAVE|AVI )", "a WAV or AVI file"),
        (rb"\x00\x00..ftyp", "an MP4 or QuickTime file"),
        (rb"ID3[\x02-\x04]\x00|fLaC\x00\x00\x00\x22|OggS\x00", "an audio file"),
        (rb"PK(?:\x03\x04|\x05\x06|\x07\x08)", "a ZIP archive (DOCX, EPUB, ODT, …)"),
        (rb"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an OLE2 document (DOC, XLS, …)"),
        (rb"\x1f\x8b", "a gzip archive"),
        (rb"BZh[1-9]1AY&SY", "a bzip2 archive"),
        (rb"\xfd7zXZ\x00", "an xz archive"),
        (rb"\x28\xb5\x2f\xfd", "a Zstandard archive"),
        (rb"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
        (rb"Rar!\x1a\x07", "a RAR archive"),
        (rb".{257}ustar(?:\x00|  )", "a tar archive"),
        (rb"\x7fELF", "an ELF executable"),
        (rb"(?:\xfe\xed\xfa[\xce\xcf]|[\xce\xcf]\xfa\xed\xfe)[\x00-\x1f]", "a Mach-O executable"),
        (rb"\xca\xfe\xba\xbe\x00\x00", "a Java class or Mach-O executable"),
        (rb"\x00asm", "a WebAssembly module"),
        (rb"SQLite format 3\x00", "an SQLite database"),
    )
)
"""Signatures at the start of a file, each long enough or binary enough that no text
starts with it ("%PDF-" aside, which the format requires). Two-byte magic numbers that
begin ordinary words ("MZ", "BM") are not listed; DOS/Windows executables are
recognised by their "PE" header instead (:func:`binary_format`)."""


@dataclass(frozen=True, slots=True)
class Decoded:
    """The decoded, normalised text and how it was obtained."""

    text: str
    encoding: str
    confidence: float
    bom: bool


@dataclass(frozen=True, slots=True)
class Sniffed:
    """What :func:`sniff` concluded from a prefix.

    ``complete``: the prefix was the whole file, so ``encoding`` is exactly what
    :func:`decode` will report. Otherwise ``encoding`` is the first encoding (in
    :func:`decode`'s order) that reads the prefix; the analyzer, which sees the
    whole file, has the last word.
    """

    encoding: str
    bom: bool
    complete: bool


def decode(data: bytes) -> Decoded:
    """Decode ``data`` (see the module docstring); PermanentError when it is not text."""
    text, encoding, confidence, bom = _decode_checked(data)
    return Decoded(normalise(text), encoding, confidence, bom)


def sniff(prefix: bytes, size: int | None = None, *, has_nul: bool = False) -> Sniffed:
    """Could :func:`decode` read a file of ``size`` bytes that starts with ``prefix``?

    ``size`` is the whole file's (``len(prefix)`` when omitted); ``has_nul`` says
    whether a NUL byte occurs anywhere in the file. Raises PermanentError, with
    :func:`decode`'s message, only when :func:`decode` would refuse every file
    that starts with ``prefix`` and has that size (see the module docstring).
    """
    size = len(prefix) if size is None else size
    if len(prefix) >= size:
        _, encoding, _, bom = _decode_checked(prefix)
        return Sniffed(encoding, bom, complete=True)
    _refuse_binary(prefix)
    allowance = _control_allowance(size)
    noisy: str | None = None
    for text, encoding, bom in _prefix_readings(prefix, has_nul):
        if _controls(text) <= allowance:
            return Sniffed(encoding, bom, complete=False)
        noisy = noisy or encoding
    if noisy is not None:
        raise _control_error(noisy)
    raise _undecodable()


def binary_format(data: bytes) -> str | None:
    """The binary format ``data`` starts with ("a PDF document", …), or None."""
    for pattern, kind in _SIGNATURES:
        if pattern.match(data):
            return kind
    if data.startswith(b"MZ") and len(data) >= 0x40:
        header = int.from_bytes(data[0x3C:0x40], "little")
        if data[header : header + 4] == b"PE\x00\x00":
            return "a Windows executable"
    return None


def canonical_encoding(name: str) -> str:
    """One name per encoding, for comparing encoding names (``cp932`` → ``shift_jis``).

    Any name Python knows (``sjis``, ``Shift-JIS``, ``latin1``, ``UTF_16LE``, …)
    becomes its codec's name, then :data:`FAMILIES` maps supersets and
    equivalents to one member. Unknown names are only lower-cased.
    """
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        return name.strip().lower()
    return FAMILIES.get(codec, codec)


def normalise(text: str) -> str:
    """NFC, ``\\n`` line endings, no leading U+FEFF."""
    if "\r" in text:
        text = _LINE_BREAKS.sub("\n", text)
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text.removeprefix("\ufeff")


def _decode_checked(data: bytes) -> tuple[str, str, float, bool]:
    """:func:`decode` without the normalisation: the raw text, or PermanentError."""
    _refuse_binary(data)
    text, encoding, confidence, bom = _decode_raw(data)
    if text and _controls(text) > _control_allowance(len(text)):
        raise _control_error(encoding)
    return text, encoding, confidence, bom


def _refuse_binary(data: bytes) -> None:
    kind = binary_format(data)
    if kind is not None:
        raise PermanentError(f"The file does not look like text: it is {kind}.")


def _controls(text: str) -> int:
    return count_controls(text, _CONTROL_BYTES)


def _control_allowance(length: int) -> float:
    return max(2, length * MAX_CONTROL_RATIO)


def _control_error(encoding: str) -> PermanentError:
    return PermanentError(
        f"The file does not look like text: decoded as {encoding} it is full of "
        "control characters (binary data?)."
    )


def _nul_error() -> PermanentError:
    return PermanentError("The file does not look like text: it contains NUL bytes.")


def _undecodable() -> PermanentError:
    return PermanentError(
        "The file could not be decoded: it is not valid UTF-8 and no common encoding "
        "(GB18030, Big5, Shift_JIS, EUC-KR, cp1252, …) decodes it."
    )


def _display(codec: str) -> str:
    return DISPLAY_NAMES.get(codec, codec.replace("_", "-"))


def _decode_raw(data: bytes) -> tuple[str, str, float, bool]:
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec), codec, 1.0, True
            except UnicodeDecodeError:
                break  # a false mark (e.g. cp1252 "ÿþ"): detect as if it were not there
    utf16 = _utf16_guess(data)
    if utf16 is not None:
        try:
            return data.decode(utf16), utf16, 0.9, False
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8"), "utf-8", 1.0, False
    except UnicodeDecodeError:
        pass
    if b"\x00" in data:
        raise _nul_error()
    return _detect(data)


def _utf16_guess(data: bytes) -> str | None:
    """``utf-16-le`` or ``-be`` when NUL bytes sit on one side of (nearly) every pair."""
    head = data[:_UTF16_HEAD]
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
            return codec
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


def _proposals(sample: bytes) -> Iterator[tuple[str, float]]:
    """Codecs to verify, best first, with charset-normalizer's confidence in each."""
    tried: set[str] = set()
    # charset-normalizer probes chunks at range(0, len, len // steps): unless the length is
    # a multiple of ``steps`` that adds a last chunk of 1-4 bytes, whose chaos alone (1.0
    # for "éé") can outweigh the other five and let cp1251 win over French cp1252.
    # Newlines pad it to a multiple: they end a line in every candidate encoding.
    sample += b"\n" * (-len(sample) % PROBE_STEPS)
    matches = from_bytes(sample, steps=PROBE_STEPS, chunk_size=PROBE_BYTES, cp_isolation=PLAUSIBLE)
    for match in matches:
        confidence = round(max(0.0, min(1.0, 1.0 - match.chaos)), 3)
        for codec in SUPERSETS.get(match.encoding, (match.encoding,)):
            if codec not in tried:
                tried.add(codec)
                yield codec, confidence


def _detect(data: bytes) -> tuple[str, str, float, bool]:
    for codec, confidence in _proposals(_sample(data)):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        return text, _display(codec), confidence, False
    raise _undecodable()


def _decode_prefix(prefix: bytes, codec: str) -> str | None:
    """The prefix decoded strictly, an incomplete last character left out; None if invalid."""
    try:
        text: str = codecs.getincrementaldecoder(codec)().decode(prefix, final=False)
    except UnicodeDecodeError:
        return None
    return text


def _prefix_readings(prefix: bytes, has_nul: bool) -> Iterator[tuple[str, str, bool]]:
    """Every way :func:`_decode_raw` could read a file starting with ``prefix``, in its
    order: ``(text of the prefix, display name, bom)``. Each encoding that could decode
    the whole file reads the prefix, so it is among them."""
    for bom, codec in _BOMS:
        if prefix.startswith(bom):
            text = _decode_prefix(prefix[len(bom) :], codec)
            if text is not None:
                yield text, codec, True
            break
    # the guess looks at the first 4 KiB: a shorter prefix cannot tell, so both may apply
    guess = _utf16_guess(prefix) if len(prefix) >= _UTF16_HEAD else None
    for utf16 in ("utf-16-le", "utf-16-be"):
        if guess == utf16 or len(prefix) < _UTF16_HEAD:
            text = _decode_prefix(prefix, utf16)
            if text is not None:
                yield text, utf16, False
    text = _decode_prefix(prefix, "utf-8")
    if text is not None:
        yield text, "utf-8", False
    # from here on the whole file is not UTF-8 either: decode() refuses any NUL byte
    if has_nul or b"\x00" in prefix:
        raise _nul_error()
    tried: set[str] = set()
    trimmed = prefix.rstrip(_NOT_A_BOUNDARY)
    sample = trimmed if len(trimmed) >= len(prefix) // 2 else prefix
    for codec, _ in _proposals(sample):
        tried.add(codec)
        text = _decode_prefix(prefix, codec)
        if text is not None:
            yield text, _display(codec), False
    for codec in DETECTABLE:
        if codec not in tried:
            text = _decode_prefix(prefix, codec)
            if text is not None:
                yield text, _display(codec), False
